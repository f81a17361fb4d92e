"""The Colab set-up cell, run in a simulated Colab (a fake `google.colab.drive`, git and pip): it fetches
the course once, from a git address or from the release zip in the learner's Drive; says in one line what
went wrong when it cannot; never touches torch; changes nothing when re-run, except to offer the update
command when a newer release is out; and says where the learner's own notebooks are."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from exercises.kit.colab import REPOSITORY, SETUP_CELL, colab_badge, setup_cell
from grading import PROJECT_ROOT, notebooks
from grading.release import build_release
from tests.conftest import TEST_SOURCE

FAKE_DRIVE = '''
import os
def mount(path, **kwargs):
    os.makedirs(os.path.join(path, "MyDrive"), exist_ok=True)
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(f"mount {path}\\n")
'''
# A stand-in for git: records each call; "clones" the course from a local release (or fails, as an unknown
# address does); answers ls-remote with the remote's head ($FAKE_HEAD) and rev-parse with the clone's.
FAKE_GIT = '''#!/bin/sh
echo "git $*" >> "$FAKE_LOG"
case "$1" in
  clone)
    for arg in "$@"; do src="$dest"; dest="$arg"; done
    if [ "$src" != "$FAKE_URL" ]; then
      echo "fatal: repository '$src' not found" >&2; exit 128
    fi
    mkdir -p "$dest" && cp -r "$FAKE_RELEASE"/. "$dest"/ && echo "$FAKE_HEAD" > "$dest/.fake-head" ;;
  ls-remote) printf '%s\\tHEAD\\n' "$FAKE_HEAD" ;;
  -C) cat "$2/.fake-head" ;;
esac
'''
FAKE_PIP = '''
import sys
with open(__import__("os").environ["FAKE_LOG"], "a") as log:
    log.write("pip " + " ".join(sys.argv[1:]) + "\\n")
'''


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> tuple[Path, Path]:
    """Release 1 and a release 2 that changes a notebook, as folders with their zips beside them."""
    base = tmp_path_factory.mktemp("releases")
    v1 = build_release(base / "v1" / "learner-release", repository=TEST_SOURCE)
    v2 = build_release(base / "v2" / "learner-release", repository=TEST_SOURCE)
    nb = json.loads((v2 / "course" / "00_welcome.ipynb").read_text())
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "New in release 2."})
    (v2 / "course" / "00_welcome.ipynb").write_text(json.dumps(nb))
    from exercises.kit.update import MANIFEST, write_manifest

    (v2 / MANIFEST).unlink()
    write_manifest(v2)
    shutil.make_archive(str(v2), "zip", v2.parent, v2.name)
    return v1, v2


@pytest.fixture
def colab(tmp_path: Path, releases):
    fake = tmp_path / "fake"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "drive.py").write_text(FAKE_DRIVE)
    (fake / "bin").mkdir()
    (fake / "bin" / "git").write_text(FAKE_GIT)
    (fake / "bin" / "git").chmod(0o755)
    (fake / "pip").mkdir()
    (fake / "pip" / "__main__.py").write_text(FAKE_PIP)  # `python -m pip` resolves here first
    (fake / "pip" / "__init__.py").write_text("")
    log = tmp_path / "log.txt"
    log.write_text("")
    env = {**os.environ, "PATH": f"{fake / 'bin'}{os.pathsep}{os.environ['PATH']}", "FAKE_LOG": str(log),
           "FAKE_RELEASE": str(releases[0]), "FAKE_URL": TEST_SOURCE, "FAKE_HEAD": "1111111",
           "COURSE_COLAB_ROOT": str(tmp_path / "content"), "PYTHONPATH": str(fake)}
    return env, log, tmp_path / "content"


def _run(env: dict[str, str], cell: str, times: int = 2, missing: tuple[str, ...] = (),
         after: str = "") -> subprocess.CompletedProcess[str]:
    """Run the set-up cell ``times`` times in one Python process, as re-running it in a kernel would; an
    error is shown the way IPython shows it (``_render_traceback_`` where the exception has one)."""
    script = textwrap.dedent(f"""
        import importlib.util, sys
        import google.colab  # what Colab's kernel has imported
        real_find_spec = importlib.util.find_spec
        # Packages in `missing` look uninstalled to the set-up code.
        importlib.util.find_spec = lambda name, *a: None if name in {missing!r} else real_find_spec(name, *a)
        for attempt in range({times}):
            try:
                exec(compile({cell!r}, "setup-cell", "exec"))
            except Exception as exc:
                render = getattr(exc, "_render_traceback_", None)
                print("SHOWN:", render() if render else f"Traceback ... {{type(exc).__name__}}: {{exc}}")
                sys.exit(3)
        print("cwd", __import__("os").getcwd())
        print("paths", sys.path.count(home))
        {after}
    """)
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)


def test_from_git_it_installs_once_keeps_torch_and_is_idempotent(colab) -> None:
    env, log, content = colab
    proc = _run(env, setup_cell(TEST_SOURCE), missing=("mlxtend",))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = log.read_text().splitlines()
    home = content / "drive/MyDrive/deep-practice"
    assert [c for c in calls if c.startswith("git clone")] == [f"git clone --depth 1 {TEST_SOURCE} {home}"]  # once
    pips = [c for c in calls if c.startswith("pip")]
    assert pips and all("--no-deps" in c and "mlxtend" in c for c in pips)
    assert not any("torch" in c for c in calls)
    assert f"cwd {home / 'course'}" in proc.stdout
    assert "paths 1" in proc.stdout  # re-running does not stack sys.path entries
    assert "no GPU is attached" in proc.stdout and "T4 GPU" in proc.stdout
    assert "File > Open notebook > Google Drive > deep-practice/course/" in proc.stdout  # where to work
    assert "newer release" not in proc.stdout


def test_with_everything_installed_it_installs_nothing(colab) -> None:
    env, log, _ = colab
    proc = _run(env, setup_cell(TEST_SOURCE))
    assert proc.returncode == 0, proc.stderr
    assert not any(c.startswith("pip") for c in log.read_text().splitlines())


def test_a_failed_fetch_says_in_one_line_what_went_wrong(colab) -> None:
    env, _, content = colab
    proc = _run(env, setup_cell("https://github.com/nobody/no-such-course"), times=1)
    assert proc.returncode == 3
    shown = proc.stdout.split("SHOWN: ", 1)[1]
    assert "CalledProcessError" not in shown and "Traceback" not in shown
    lines = eval(shown.strip())  # what IPython prints: one line
    assert len(lines) == 1 and "Could not fetch the course from https://github.com/nobody/no-such-course" in lines[0]
    assert "repository 'https://github.com/nobody/no-such-course' not found" in lines[0]
    assert "check the address" in lines[0].lower()
    assert not (content / "drive/MyDrive/deep-practice").exists()


def test_from_a_release_zip_in_the_drive(colab, releases) -> None:
    env, log, content = colab
    drive = content / "drive" / "MyDrive"
    proc = _run(env, setup_cell("learner-release.zip"), times=1)  # not uploaded yet
    assert proc.returncode == 3 and "learner-release.zip is not in your Google Drive" in proc.stdout
    drive.mkdir(parents=True, exist_ok=True)
    (drive / "learner-release.zip").write_text("this is not a zip")
    proc = _run(env, setup_cell("learner-release.zip"), times=1)
    assert proc.returncode == 3 and "is not a readable zip" in proc.stdout
    shutil.copy(releases[0].with_suffix(".zip"), drive / "learner-release.zip")
    proc = _run(env, setup_cell("learner-release.zip"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    home = drive / "deep-practice"
    assert (home / "exercises" / "layers.py").exists() and (home / "course" / "00_welcome.ipynb").exists()
    assert f"cwd {home / 'course'}" in proc.stdout and "newer release" not in proc.stdout
    assert not any(c.startswith("git") for c in log.read_text().splitlines())
    # The instructor shares release 2: re-running the cell offers the update, which keeps the learner's work.
    (home / "exercises" / "notes.py").write_text("# mine\n")
    shutil.copy(releases[1].with_suffix(".zip"), drive / "learner-release.zip")
    update = "from exercises.kit.colab import update_from_source; update_from_source()"
    proc = _run(env, setup_cell("learner-release.zip"), times=1, after=update)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "A newer release of the course is out" in proc.stdout and update in proc.stdout
    assert "New in release 2." in (home / "course" / "00_welcome.ipynb").read_text()
    assert (home / "exercises" / "notes.py").read_text() == "# mine\n"
    proc = _run(env, setup_cell("learner-release.zip"), times=1)
    assert proc.returncode == 0 and "newer release" not in proc.stdout


def test_a_newer_release_in_git_is_offered_on_the_next_run(colab, releases) -> None:
    env, _, content = colab
    proc = _run(env, setup_cell(TEST_SOURCE), times=1)
    assert proc.returncode == 0 and "newer release" not in proc.stdout, proc.stdout + proc.stderr
    env = {**env, "FAKE_HEAD": "2222222", "FAKE_RELEASE": str(releases[1])}  # the instructor pushed release 2
    update = "from exercises.kit.colab import update_from_source; update_from_source()"
    proc = _run(env, setup_cell(TEST_SOURCE), times=1, after=update)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "A newer release of the course is out" in proc.stdout
    home = content / "drive/MyDrive/deep-practice"
    assert "New in release 2." in (home / "course" / "00_welcome.ipynb").read_text()
    proc = _run(env, setup_cell(TEST_SOURCE), times=1)
    assert proc.returncode == 0 and "newer release" not in proc.stdout


def test_the_set_up_cell_does_nothing_outside_colab() -> None:
    namespace: dict = {}
    exec(compile(SETUP_CELL, "setup-cell", "exec"), namespace)
    assert "home" not in namespace


def test_every_notebook_carries_the_badge_and_set_up_cell() -> None:
    assert notebooks.drift() == [], "run `make stubs` (python -m grading notebooks)"
    for path in sorted((PROJECT_ROOT / "course").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        assert "".join(cells[0]["source"]) == colab_badge(path.name)
        assert "".join(cells[1]["source"]) == SETUP_CELL
        assert REPOSITORY.removeprefix("https://github.com/") in colab_badge(path.name)
    assert "Upload notebook" in colab_badge("00_welcome.ipynb", "learner-release.zip")  # no badge for a zip
