"""Finding learners' submissions in a folder, reading them safely, and staging them for the sandbox.

A submission is a learner's ``exercises/`` folder, or a folder or zip that holds one somewhere
inside. Only ``.py`` files are read, with limits on their number and size; zip members with
absolute or ``..`` paths, links and anything that is not a regular file are skipped. A staged
submission is the course's own ``exercises`` package with the learner's modules laid over it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import exercises

MAX_FILES = 200
MAX_FILE_BYTES = 1 << 20
MAX_TOTAL_BYTES = 16 << 20
OFFICIAL_DIR = Path(exercises.__file__).resolve().parent


class SubmissionsError(ValueError):
    """The submissions folder itself is unusable; the message says what to do."""


@dataclass
class Submission:
    learner: str
    path: Path
    files: dict[str, bytes] = field(default_factory=dict)  # exercises-relative path -> content
    notes: list[str] = field(default_factory=list)

    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return h.hexdigest()[:16]


def learner_id(path: Path) -> str:
    """A file-system-safe learner id from a folder or zip name (``alice.zip`` -> ``alice``)."""
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "learner"


def discover(root: Path) -> list[Submission]:
    """One ``Submission`` per folder or ``.zip`` directly inside ``root``, sorted by learner id."""
    root = Path(root)
    if not root.exists():
        raise SubmissionsError(f"the submissions folder '{root}' does not exist; pass the folder that holds one "
                               "folder or zip per learner")
    if not root.is_dir():
        raise SubmissionsError(f"'{root}' is not a folder; pass the folder that holds one folder or zip per learner")
    entries = sorted(p for p in root.iterdir()
                     if not p.name.startswith(".") and not p.is_symlink()
                     and (p.is_dir() or p.name.lower().endswith(".zip")))
    if not entries:
        raise SubmissionsError(f"'{root}' holds no submissions: expected one folder or .zip per learner")
    found: dict[str, Submission] = {}
    for path in entries:
        base = learner_id(path)
        learner, n = base, 1
        while learner in found:
            n += 1
            learner = f"{base}-{n}"
        sub = Submission(learner, path)
        if learner != base:
            sub.notes.append(f"another submission is also named '{base}'; this one ({path.name}) is graded as '{learner}'")
        read_submission(sub)
        found[learner] = sub
    return list(found.values())


def _python_files_in_dir(folder: Path, notes: list[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*.py")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.is_symlink() or not path.is_file():
            notes.append(f"skipped {rel}: not a regular file")
            continue
        size = path.stat().st_size
        if size > MAX_FILE_BYTES or total + size > MAX_TOTAL_BYTES or len(files) >= MAX_FILES:
            notes.append(f"skipped {rel}: the submission is over its size limits")
            continue
        files[rel.as_posix()] = path.read_bytes()
        total += size
    return files


def _python_files_in_zip(path: Path, notes: list[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        notes.append(f"{path.name} is not a readable zip file ({exc}); nothing could be graded")
        return files
    total = 0
    with archive:
        members = archive.infolist()
        if not members:
            notes.append(f"{path.name} is empty; nothing could be graded")
        for info in members:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if info.is_dir() or name.suffix != ".py":
                continue
            if name.is_absolute() or ".." in name.parts or any(p.startswith(".") for p in name.parts):
                notes.append(f"skipped {info.filename}: unsafe path in the zip")
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                notes.append(f"skipped {info.filename}: a link, not a file")
                continue
            if info.file_size > MAX_FILE_BYTES or total + info.file_size > MAX_TOTAL_BYTES or len(files) >= MAX_FILES:
                notes.append(f"skipped {info.filename}: the submission is over its size limits")
                continue
            try:
                with archive.open(info) as f:
                    data = f.read(MAX_FILE_BYTES + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                notes.append(f"skipped {info.filename}: could not be read ({exc})")
                continue
            if len(data) > MAX_FILE_BYTES:
                notes.append(f"skipped {info.filename}: the submission is over its size limits")
                continue
            files[name.as_posix()] = data
            total += len(data)
    return files


def _exercise_module_names() -> set[str]:
    from grading.stubs import solution_modules

    return set(solution_modules())


def read_submission(sub: Submission) -> None:
    """Fill ``sub.files`` with the learner's exercise package, found wherever it sits."""
    raw = (_python_files_in_zip(sub.path, sub.notes) if sub.path.is_file()
           else _python_files_in_dir(sub.path, sub.notes))
    expected = _exercise_module_names()
    dirs = {str(PurePosixPath(name).parent) for name in raw}

    def depth(d: str) -> tuple[int, str]:
        return (0 if d == "." else d.count("/") + 1, d)

    def inside(d: str, name: str) -> str:
        return name if d == "." else f"{d}/{name}"

    named = sorted((d for d in dirs if PurePosixPath(d).name == "exercises"), key=depth)
    holding = sorted((d for d in dirs if any(inside(d, m) in raw for m in expected)), key=depth)
    base = named[0] if named else holding[0] if holding else None
    if base is None:
        if raw or not sub.notes:
            sub.notes.append(f"no exercises folder found (expected {', '.join(sorted(expected))} inside an "
                             "'exercises' folder); nothing could be graded")
        return
    prefix = "" if base == "." else base + "/"
    sub.files = {name[len(prefix):]: data for name, data in raw.items() if name.startswith(prefix)}
    missing = sorted(m for m in expected if m not in sub.files)
    if missing:
        sub.notes.append(f"missing from the submission: {', '.join('exercises/' + m for m in missing)}")


def stage(sub: Submission, dest: Path) -> Path:
    """Write the package the sandbox imports: the course's ``exercises`` with the learner's
    exercise modules (and any extra modules of theirs) on top. Returns the folder to put on
    ``sys.path``."""
    package = dest / "exercises"
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(OFFICIAL_DIR, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    official = {p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    learner_modules = _exercise_module_names()
    for name, data in sub.files.items():
        if name in learner_modules or name not in official:
            target = package / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    for name in learner_modules:  # a module the learner did not hand in is missing, not the stub
        if name not in sub.files:
            (package / name).unlink(missing_ok=True)
    return dest
