"""Google Colab support: where the course comes from, and the set-up its notebooks' first cell runs.

``REPOSITORY`` is the one place the course's own address is written; every notebook's "Open in Colab"
badge and set-up cell are generated from it (``python -m grading notebooks``; a test fails when a
notebook is out of date). A learner release for a class gets its own source instead (``make release
REPOSITORY=...``): a git address of a repository that holds the release, or the name of the release
zip the learners put in their Google Drive.

The set-up cell (``setup_cell``) fetches the course once, into the learner's Drive, with plain Python
and git only (the course's code is not there yet), and says in one line what went wrong if it cannot.
Everything after that is ``setup_colab``: install what Colab lacks (never torch), work in the course
folder, say whether a GPU is attached, say where the learner's own copies of the notebooks are, and
offer the update command when a newer release is out.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPOSITORY = "https://github.com/deep-practice/deep-practice"
BRANCH = "main"
FOLDER_NAME = "deep-practice"
DRIVE = "drive/MyDrive"  # where Colab mounts the learner's Google Drive, under /content
# Import names the course needs beyond what Colab preinstalls, with their pip names. Installed
# with --no-deps, so nothing Colab already has (torch above all) is ever replaced.
NEEDED = {"mlxtend": "mlxtend", "tqdm": "tqdm"}


def is_zip_source(source: str) -> bool:
    """A release zip in the learner's Drive (``learner-release.zip``), rather than a git address."""
    return source.lower().endswith(".zip")


def colab_badge(notebook: str, source: str = REPOSITORY) -> str:
    """Markdown for the top of ``course/<notebook>``: the "Open in Colab" badge when the course lives on
    GitHub, else how to open the notebook in Colab."""
    if source.startswith("https://github.com/"):
        path = source.removeprefix("https://github.com/").removesuffix(".git")
        url = f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/course/{notebook}"
        return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"
    return (f"*On Colab:* open this notebook from your Google Drive (`MyDrive/{FOLDER_NAME}/course/{notebook}`) "
            "once the set-up cell below has put the course there; the first time, upload it with "
            "*File → Upload notebook*.")


def setup_cell(source: str = REPOSITORY) -> str:
    """The set-up cell's code, for a course fetched from ``source`` (a git address or a Drive zip's name)."""
    return f'''\
# Set-up: run this cell first. It is safe to re-run, and does nothing outside Google Colab.
# On Colab it fetches the course into your Google Drive (a disconnect loses nothing), installs
# what is missing without replacing Colab's torch, checks for a GPU and for a newer release.
import sys

if "google.colab" in sys.modules:
    import os

    # Where the course comes from: a git address, or the name of its release zip in your Google Drive.
    COURSE = "{source}"
    KEEP_IN_DRIVE = True  # False keeps your work on the Colab machine only: lost when it disconnects
    base = os.environ.get("COURSE_COLAB_ROOT", "/content")
    if KEEP_IN_DRIVE or COURSE.endswith(".zip"):
        from google.colab import drive

        drive.mount(os.path.join(base, "drive"))
    home = os.path.join(base, "{DRIVE}" if KEEP_IN_DRIVE else "", "{FOLDER_NAME}")
    if not os.path.isdir(os.path.join(home, "exercises")):
        import shutil
        import subprocess
        import tempfile
        import zipfile

        class CourseNotFetched(Exception):
            def _render_traceback_(self):  # one line, no traceback
                return [f"\\x1b[31m{{self}}\\x1b[0m"]

        if COURSE.endswith(".zip"):
            archive = os.path.join(base, "{DRIVE}", COURSE)
            if not os.path.isfile(archive):
                raise CourseNotFetched(f"{{COURSE}} is not in your Google Drive (MyDrive): upload the release "
                                       "zip your instructor shared there, then run this cell again.")
            scratch = tempfile.mkdtemp()
            try:
                zipfile.ZipFile(archive).extractall(scratch)
            except zipfile.BadZipFile:
                raise CourseNotFetched(f"MyDrive/{{COURSE}} is not a readable zip: download it again from your "
                                       "instructor and replace it, then run this cell again.") from None
            found = [r for r, dirs, _ in os.walk(scratch) if "exercises" in dirs and "course" in dirs]
            if not found:
                raise CourseNotFetched(f"MyDrive/{{COURSE}} holds no course (no course/ and exercises/ "
                                       "folders): is it the release zip your instructor shared?")
            shutil.move(found[0], home)
        else:
            fetched = subprocess.run(["git", "clone", "--depth", "1", COURSE, home], capture_output=True, text=True)
            if fetched.returncode:
                why = (fetched.stderr.strip().splitlines() or ["git failed"])[-1]
                raise CourseNotFetched(f"Could not fetch the course from {{COURSE}} ({{why}}). Check the address "
                                       "your instructor gave (and your connection), then run this cell again.")
    if home not in sys.path:
        sys.path.insert(0, home)
    from exercises.kit.colab import setup_colab

    setup_colab(home, COURSE)'''


SETUP_CELL = setup_cell()


def missing_packages() -> list[str]:
    """pip names of the needed packages that cannot be imported here."""
    return [pip for module, pip in NEEDED.items() if importlib.util.find_spec(module) is None]


STATE = ".course-source.json"  # in the learner's copy: where it came from, and which release it holds


def _zip_release(archive: Path) -> str | None:
    """The release a zip holds, named by a digest of its manifest (what every shipped file looks like)."""
    from exercises.kit.update import MANIFEST

    try:
        with zipfile.ZipFile(archive) as z:
            name = next(n for n in z.namelist() if n.endswith(MANIFEST))
            return hashlib.sha256(z.read(name)).hexdigest()[:16]
    except (OSError, zipfile.BadZipFile, StopIteration):
        return None


def latest_release(source: str) -> str | None:
    """Which release ``source`` holds now (a git commit, or a zip's manifest digest); ``None`` if it cannot
    tell (no network, no zip)."""
    if is_zip_source(source):
        return _zip_release(Path(os.environ.get("COURSE_COLAB_ROOT", "/content"), DRIVE, source))
    try:
        remote = subprocess.run(["git", "ls-remote", source, "HEAD"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return remote.stdout.split()[0] if remote.returncode == 0 and remote.stdout.split() else None


def _installed(home: Path, source: str) -> str | None:
    """Which release the copy at ``home`` holds; recorded the first time the set-up runs."""
    state = home / STATE
    try:
        return json.loads(state.read_text(encoding="utf-8"))["release"]
    except (OSError, ValueError, KeyError):
        pass
    if is_zip_source(source):
        release = latest_release(source)  # the copy was just unpacked from it
    else:
        head = subprocess.run(["git", "-C", str(home), "rev-parse", "HEAD"], capture_output=True, text=True)
        release = head.stdout.strip() if head.returncode == 0 else None
    if release:
        _record(home, source, release)
    return release


def _record(home: Path, source: str, release: str) -> None:
    (home / STATE).write_text(json.dumps({"source": source, "release": release}) + "\n", encoding="utf-8")


def newer_release(home: str | Path, source: str) -> bool:
    """Whether ``source`` holds a newer release than the copy at ``home`` (``False`` when it cannot tell)."""
    installed, latest = _installed(Path(home), source), latest_release(source)
    return bool(installed and latest and installed != latest)


def update_from_source(home: str | Path | None = None, source: str | None = None) -> None:
    """Bring the course at ``home`` up to the newest release at ``source`` without losing any work (see
    ``exercises.kit.update``): what ``setup_colab`` offers when a newer release is out."""
    from exercises.kit.catalogue import PACKAGE_DIR
    from exercises.kit.update import update_course

    home = Path(home) if home else PACKAGE_DIR.parent
    source = source or os.environ.get("COURSE_SOURCE") or REPOSITORY
    latest = latest_release(source)
    if is_zip_source(source):
        print(update_course(Path(os.environ.get("COURSE_COLAB_ROOT", "/content"), DRIVE, source), home).text())
    else:
        with tempfile.TemporaryDirectory() as scratch:
            subprocess.run(["git", "clone", "--depth", "1", source, f"{scratch}/new"], check=True, capture_output=True)
            print(update_course(Path(scratch, "new"), home).text())
    if latest:
        _record(home, source, latest)


def setup_colab(home: str | Path, source: str = REPOSITORY) -> None:
    """Finish the Colab set-up: install what is missing (never torch), work in the course folder, say
    whether a GPU is attached, where your notebooks are, and whether a newer release is out. Safe to
    call again."""
    missing = missing_packages()
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *missing], check=True)
    home = Path(home)
    os.chdir(home / "course")
    os.environ["COURSE_SOURCE"] = source
    import torch

    if torch.cuda.is_available():
        print(f"Course ready in {home}. GPU: {torch.cuda.get_device_name(0)}.")
    else:
        print(f"Course ready in {home}.\n"
              "WARNING: no GPU is attached. Chapters 0-3 run fine on the CPU; for chapter 4 choose "
              "Runtime > Change runtime type > T4 GPU, then run this notebook again from the top.")
    if DRIVE in str(home):
        print(f"Your exercise files are saved in Google Drive ({DRIVE}/{home.name}/exercises/). Work in your own "
              f"copy of each notebook, which is saved there too: File > Open notebook > Google Drive > "
              f"{home.name}/course/ (a notebook opened from a badge is Colab's copy, and its edits are not kept).")
    if newer_release(home, source):
        print("A newer release of the course is out. Bring it in without losing your work (your implemented "
              "functions, notes and progress are kept) by running, in a cell:\n"
              "    from exercises.kit.colab import update_from_source; update_from_source()")
