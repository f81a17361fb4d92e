"""environment.yml installs the same dependency set, with the same lower bounds, as pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml

from grading import PROJECT_ROOT

CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _split(requirement: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", requirement)
    assert match, requirement
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    pip_deps = dict(_split(r) for r in project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pip_deps.update(_split(r) for r in extra)

    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    conda_deps, pip_section = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip_section = dep["pip"]
            continue
        name, spec = _split(dep)
        if name in ("python", "pip"):
            continue
        conda_deps[CONDA_NAMES.get(name, name)] = spec
    assert conda_deps == pip_deps
    assert pip_section == ["-e ."], "environment.yml should install the project itself with pip"
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python.replace("python", "") == project["requires-python"]


def test_torch_and_colab_packages_have_lower_bounds_only() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, spec = _split(requirement)
        assert spec.startswith(">="), f"{name} must have a lower bound only, got {spec!r}"
        assert "," not in spec and "<" not in spec.replace(">=", "")
