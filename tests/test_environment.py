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


# Import name -> the declared distribution(s) that provide it, where the names differ or a declared package
# guarantees it (traitlets is nbgrader's and JupyterLab's own configuration system).
PROVIDERS = {"PIL": {"pillow"}, "sklearn": {"scikit-learn"}, "yaml": {"pyyaml"}, "IPython": {"ipykernel", "ipython"},
             "traitlets": {"nbgrader", "jupyterlab"}}


def _third_party_imports(paths: list, notebook: bool = False) -> set[str]:
    import ast
    import json
    import sys

    found = set()
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if notebook:
            cells = json.loads(text)["cells"]
            code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
            text = "\n".join(ln for src in code for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(text)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            found |= {n.split(".")[0] for n in names}
    return {n for n in found if n not in sys.stdlib_module_names and n not in ("exercises", "solutions", "grading",
                                                                               "google", "tests")}


def test_every_package_the_course_imports_is_declared() -> None:
    """What the learner's side (notebooks, exercises, their checks) imports is a base dependency; what the
    instructor's tools import is declared in the base dependencies or an extra."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    base = {_split(r)[0] for r in project["dependencies"]}
    instructor = base | {_split(r)[0] for extra in project["optional-dependencies"].values() for r in extra}
    learner = _third_party_imports(sorted((PROJECT_ROOT / "exercises").rglob("*.py"))) | _third_party_imports(
        sorted((PROJECT_ROOT / "course").glob("*.ipynb")), notebook=True)
    grader = _third_party_imports(sorted((PROJECT_ROOT / "grading").rglob("*.py")))
    assert {"sklearn", "scipy", "PIL", "torch"} <= learner  # the reader sees them
    for module in sorted(learner):
        assert PROVIDERS.get(module, {module.lower()}) & base, f"the course imports {module}: declare it"
    for module in sorted(grader):
        assert PROVIDERS.get(module, {module.lower()}) & instructor, f"the grader imports {module}: declare it"


def test_the_packaging_raises_no_deprecation_warning(tmp_path) -> None:
    """setuptools reads pyproject.toml without a deprecation (a TOML-table licence was one)."""
    import shutil
    import warnings

    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "README.md").write_text("readme")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apply_configuration(Distribution(), tmp_path / "pyproject.toml")
    deprecations = [str(w.message)[:200] for w in caught if issubclass(w.category, DeprecationWarning)
                    or "Deprecat" in w.category.__name__]
    assert not deprecations, deprecations
