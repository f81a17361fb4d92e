"""The learner bundle holds what a learner needs and nothing of the solutions or hidden tests."""

from __future__ import annotations

import ast
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from grading import PROJECT_ROOT, release
from grading.release import ReleaseLeak, build_release, find_leaks
from tests.conftest import TEST_SOURCE


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build_release(tmp_path_factory.mktemp("release") / "learner", repository=TEST_SOURCE)


def test_bundle_has_what_a_learner_needs(bundle: Path) -> None:
    assert sorted(p.name for p in bundle.iterdir()) == [".course-release.json", "README.md", "course",
                                                        "environment.yml", "exercises", "pyproject.toml"]
    assert (bundle / "course" / "00_welcome.ipynb").exists()
    assert (bundle / "exercises" / "layers.py").exists()
    assert (bundle / "exercises" / "checks" / "layers.py").exists()
    assert "python -m exercises lab" in (bundle / "README.md").read_text()  # the whole folder, chapter 0 first
    with zipfile.ZipFile(bundle.with_suffix(".zip")) as z:
        names = {n.split("/", 1)[1] for n in z.namelist()}
    assert names == {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}


def test_bundle_leaks_nothing(bundle: Path) -> None:
    assert find_leaks(bundle) == []
    files = [p for p in bundle.rglob("*") if p.is_file()]
    assert not any(part in ("solutions", "grading", "tests") for p in files for part in p.relative_to(bundle).parts)
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, path
    # Every exercise function in the bundle is the stub: its body ends in the NotImplementedError
    # (private helpers such as argument checks are given code).
    tree = ast.parse((bundle / "exercises" / "layers.py").read_text())
    for func in (n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")):
        last = func.body[-1]
        assert isinstance(last, ast.Raise) and "NotImplementedError" in ast.unparse(last), func.name
    # No hidden test module ships, under any name.
    hidden_modules = {p.name for p in (PROJECT_ROOT / "grading" / "hidden").glob("*.py")} - {"__init__.py"}
    shipped_py = [p for p in files if p.suffix == ".py"]
    hidden_sources = {(PROJECT_ROOT / "grading" / "hidden" / m).read_text() for m in hidden_modules}
    assert not any(p.read_text(encoding="utf-8", errors="replace") in hidden_sources for p in shipped_py)


def test_notebooks_ship_without_outputs(bundle: Path) -> None:
    for nb_path in (bundle / "course").glob("*.ipynb"):
        for cell in json.loads(nb_path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None


def test_leak_detector_catches_planted_leaks(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    (copy / "exercises" / "layers.py").write_text((PROJECT_ROOT / "solutions" / "layers.py").read_text())
    leaks = find_leaks(copy)
    assert any("marker" in leak for leak in leaks)
    assert any("reference code" in leak for leak in leaks)

    copy2 = tmp_path / "bundle2"
    shutil.copytree(bundle, copy2)
    solution_body = "out = torch.where(x > 0, x, torch.zeros_like(x))\nreturn out, x\n"
    notebook = copy2 / "course" / "00_welcome.ipynb"
    nb = json.loads(notebook.read_text())
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                        "source": "def relu_forward(x):\n    " + solution_body.replace("\n", "\n    ")})
    notebook.write_text(json.dumps(nb))
    hidden_line = next(ln.strip() for ln in (PROJECT_ROOT / "grading/hidden/layers.py").read_text().splitlines()
                       if "seed=" in ln and "return" in ln)
    (copy2 / "exercises" / "notes.txt").write_text(hidden_line)
    (copy2 / "grading").mkdir()
    (copy2 / "grading" / "x.py").write_text("")
    leaks = find_leaks(copy2)
    assert any("00_welcome.ipynb: contains reference code" in leak for leak in leaks)
    assert any("hidden tests" in leak for leak in leaks)
    assert any("must not ship" in leak for leak in leaks)


def test_a_leaking_release_is_refused_and_deleted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(release, "find_leaks", lambda bundle, root=PROJECT_ROOT: ["planted"])
    with pytest.raises(ReleaseLeak, match="planted"):
        release.build_release(tmp_path / "out", repository=TEST_SOURCE)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.zip").exists()


def test_the_release_is_generated_from_solutions_never_from_the_working_copy(tmp_path: Path) -> None:
    """An instructor who tried an exercise in their checkout ships the stub, not their answer."""
    from grading.stubs import generate

    root = tmp_path / "checkout"
    for name in ("course", "exercises", "solutions", "grading"):
        shutil.copytree(PROJECT_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "environment.yml"):
        shutil.copy2(PROJECT_ROOT / name, root / name)
    layers = root / "exercises" / "layers.py"
    stub = layers.read_text()
    tried = stub.replace(stub[stub.index("def relu_forward"):stub.index("def relu_backward")],
                         "def relu_forward(x):\n    return torch.clamp(x, min=0), x\n\n\n")
    layers.write_text(tried)
    (root / "exercises" / "scratch_notes.py").write_text("# the instructor's own scratch file\n")
    bundle = release.build_release(tmp_path / "out", root=root, repository=TEST_SOURCE)
    shipped = (bundle / "exercises" / "layers.py").read_text()
    assert shipped == generate(root / "solutions")["layers.py"]
    assert "torch.clamp(x, min=0)" not in shipped and "relu_forward is not implemented yet" in shipped
    assert not (bundle / "exercises" / "scratch_notes.py").exists()


def test_a_release_needs_the_learners_address_and_refuses_the_courses_own(tmp_path: Path) -> None:
    import subprocess
    import sys

    from exercises.kit.colab import REPOSITORY

    for wrong in (None, "", REPOSITORY, REPOSITORY + ".git"):
        with pytest.raises(release.ReleaseError, match="make release REPOSITORY="):
            release.build_release(tmp_path / "out", repository=wrong)
    proc = subprocess.run([sys.executable, "-m", "grading", "release", "-o", str(tmp_path / "cli")],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 1 and "make release REPOSITORY=" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "cli").exists()


def test_the_release_notebooks_fetch_the_course_from_the_learners_address(bundle: Path) -> None:
    for path in sorted((bundle / "course").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        badge, setup = "".join(cells[0]["source"]), "".join(cells[1]["source"])
        assert TEST_SOURCE.removeprefix("https://github.com/") in badge, path.name
        assert f'COURSE = "{TEST_SOURCE}"' in setup and "deep-practice/deep-practice" not in setup + badge


def test_what_the_text_teaches_openly_is_not_a_leak_and_the_rest_still_is(bundle: Path, tmp_path: Path) -> None:
    # Given code may use a statement the reference also uses when a notebook's text spells it out
    # (chapter 4 teaches the GradScaler steps in words); a reference statement the text never shows is a leak.
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    given = copy / "exercises" / "kit" / "extra.py"
    given.write_text("def step(scaler, optimizer):\n    scaler.step(optimizer)\n")
    assert find_leaks(copy) == []
    notebook = copy / "course" / "04_training.ipynb"
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = "".join(cell["source"]).replace("scaler.step(optimizer)", "step the scaler")
    notebook.write_text(json.dumps(nb))
    assert any("exercises/kit/extra.py: contains reference code" in leak for leak in find_leaks(copy))
