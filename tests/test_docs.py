"""What the README and the docs say about the tree is true of the tree."""

from __future__ import annotations

import re

from exercises.kit.catalogue import exercise_modules
from grading import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def _path_table() -> dict[str, str]:
    """The README's table of paths: ``{path: what it holds}``."""
    rows = re.findall(r"^\| `([^`]+)/` \| (.+) \|$", README, flags=re.MULTILINE)
    return dict(rows)


def test_the_readme_names_every_top_level_folder_and_only_those() -> None:
    table = _path_table()
    folders = {p.name for p in PROJECT_ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")
               and p.name not in ("build", "dist", "grading-output", "checkpoints")
               and not p.name.endswith(".egg-info") and (PROJECT_ROOT / ".git").exists() and _tracked(p.name)}
    assert set(table) == folders


def _tracked(folder: str) -> bool:
    import subprocess

    out = subprocess.run(["git", "ls-files", folder], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
    return bool(out.strip())


def test_every_file_the_table_names_exists_where_it_says() -> None:
    table = _path_table()
    for folder, text in table.items():
        for name in re.findall(r"`([\w/.-]+\.(?:py|md))`", text):
            candidates = [PROJECT_ROOT / folder / name, PROJECT_ROOT / folder / "kit" / name, PROJECT_ROOT / name,
                          PROJECT_ROOT / folder / "benchmarks" / name]
            assert any(c.exists() for c in candidates), f"README: {folder}/ row names {name}, which is not there"
    listed = re.findall(r"`(\w+)\.py`", table["exercises"].split("plus")[0])
    assert sorted(listed) == sorted(exercise_modules())


def test_the_learner_guides_say_how_to_get_a_cpu_only_torch() -> None:
    learner = (PROJECT_ROOT / "grading" / "learner_README.md").read_text(encoding="utf-8")
    for text in (README, learner):
        assert "https://download.pytorch.org/whl/cpu" in text
    assert "python -m exercises lab" in learner and "jupyter lab course/" not in learner + README
