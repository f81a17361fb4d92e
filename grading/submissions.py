"""Finding learners' submissions in a folder, reading them safely, and staging them for the sandbox.

Three layouts are understood:

* one folder or ``.zip`` per learner, named by the learner's id, or as a learning-management system
  names its downloads (``lovelace_ada_12345_hw0.zip`` from Canvas, ``Ada Lovelace_12345_assignsubmission_file_``
  from Moodle, ``hw0_alovelace_attempt_2024-…`` from Blackboard): the learner id is taken from it;
* nbgrader's ``submitted/<learner>/<chapter>/`` (pass the course folder or its ``submitted``):
  each chapter's folder is kept apart, and each exercise is graded from the folder of the chapter
  that teaches it.

A submission is a learner's ``exercises/`` folder, or a folder or zip that holds one somewhere
inside. Only ``.py`` files are read, with limits on their number and size; zip members with
absolute or ``..`` paths, links and anything that is not a regular file are skipped, an archive
nested in an archive is opened one level deep, and sizes are checked as bytes are read (a zip bomb
stops at the limit). A staged submission is the course's own ``exercises`` package with the
learner's modules laid over it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import py_compile
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import exercises
from exercises.kit.catalogue import exercise_modules

MAX_FILES = 200
MAX_FILE_BYTES = 1 << 20
MAX_TOTAL_BYTES = 16 << 20
MAX_NESTED_ZIP_BYTES = 32 << 20
OFFICIAL_DIR = Path(exercises.__file__).resolve().parent
_LMS_ID = re.compile(r"^\d{3,}$")
_NOISE = {"late", "LATE"}


def module_files() -> set[str]:
    """File names (``layers.py``, ...) of the exercise modules a learner hands in."""
    return {f"{m}.py" for m in exercise_modules(OFFICIAL_DIR)}


class SubmissionsError(ValueError):
    """The submissions folder itself is unusable; the message says what to do."""


@dataclass
class Submission:
    learner: str
    path: Path
    files: dict[str, bytes] = field(default_factory=dict)  # exercises-relative path -> content
    notes: list[str] = field(default_factory=list)
    chapters: dict[str, dict[str, bytes]] = field(default_factory=dict)  # nbgrader layout: chapter -> files

    def digest(self) -> str:
        h = hashlib.sha256()
        for part, files in [("", self.files), *sorted(self.chapters.items())]:
            h.update(b"\1" + part.encode())
            for name in sorted(files):
                h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
        return h.hexdigest()[:16]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")


def learner_id(path: Path) -> str:
    """A file-system-safe learner id from a folder or zip name.

    ``alice.zip`` -> ``alice``; LMS download names keep the name and the numeric id:
    ``lovelace_ada_12345_hw0.zip`` -> ``lovelace_ada_12345``, ``Ada Lovelace_123456_assignsubmission_file_``
    -> ``ada_lovelace_123456``, ``hw0_alovelace_attempt_2024-01-01.zip`` -> ``alovelace``.
    """
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    tokens = [t for t in re.split(r"_+", stem) if t and t not in _NOISE]
    if "attempt" in tokens[1:]:  # Blackboard: <assignment>_<username>_attempt_<date>
        index = tokens.index("attempt", 1)
        return _safe(tokens[index - 1]) or "learner"
    for index, token in enumerate(tokens[1:], start=1):
        if _LMS_ID.match(token):
            return _safe("_".join(tokens[: index + 1]).lower()) or "learner"
    return _safe(stem) or "learner"


def _nbgrader_root(root: Path) -> Path | None:
    if root.name == "submitted":
        return root
    if (root / "submitted").is_dir() and ((root / "source").is_dir() or (root / "gradebook.db").exists()):
        return root / "submitted"
    return None


def _one_submission(root: Path) -> str | None:
    """The exercise module that makes ``root`` look like one learner's submission (``exercises/layers.py``),
    or ``None`` when it does not."""
    expected = sorted(module_files())
    for folder in (root / "exercises", root):
        for name in expected:
            if (folder / name).is_file():
                return (folder / name).relative_to(root).as_posix()
    return None


def discover(root: Path, assignment: str | None = None,
             keep: Callable[[str], bool] | None = None) -> list[Submission]:
    """One ``Submission`` per learner in ``root``, sorted by learner id.

    ``assignment`` (a chapter's notebook name, such as ``00_welcome``) keeps only that chapter's
    folder in nbgrader's layout. ``keep`` (a learner id -> bool) reads only the learners it keeps: ids
    are given from every entry's name first, so they do not depend on which learners are kept.
    """
    root = Path(root)
    if not root.exists():
        raise SubmissionsError(f"the submissions folder '{root}' does not exist; pass the folder that holds one "
                               "folder or zip per learner (or an nbgrader course folder)")
    if not root.is_dir():
        raise SubmissionsError(f"'{root}' is not a folder; pass the folder that holds one folder or zip per learner")
    nbgrader = _nbgrader_root(root)
    if nbgrader is not None:
        return _discover_nbgrader(nbgrader, assignment, keep)
    single = _one_submission(root)
    if single is not None:
        raise SubmissionsError(
            f"'{root}' looks like one learner's submission (it holds {single}), not a folder of submissions: "
            "each folder or zip inside it would be graded as a learner. To grade this one submission, put it in "
            f"a folder of its own and pass that folder: mkdir -p submissions && cp -r '{root}' submissions/ && "
            "python -m grading grade submissions")
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
            sub.notes.append(f"another submission is also named '{base}'; "
                             f"this one ({path.name}) is graded as '{learner}'")
        found[learner] = sub
    kept = [sub for sub in found.values() if keep is None or keep(sub.learner)]
    for sub in kept:
        read_submission(sub)
    return kept


def _discover_nbgrader(submitted: Path, assignment: str | None,
                       keep: Callable[[str], bool] | None = None) -> list[Submission]:
    learners = sorted(p for p in submitted.iterdir()
                      if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    if not learners:
        raise SubmissionsError(f"'{submitted}' holds no submissions: expected submitted/<learner>/<chapter>/")
    found = []
    for folder in learners:
        sub = Submission(_safe(folder.name) or "learner", folder)
        if keep is not None and not keep(sub.learner):
            continue
        chapters = sorted(p for p in folder.iterdir()
                          if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
        if assignment is not None:
            chapters = [p for p in chapters if p.name == assignment]
            if not chapters:
                sub.notes.append(f"nothing submitted for {assignment}")
        for chapter in chapters:
            notes: list[str] = []
            raw = _python_files_in_dir(chapter, notes)
            files = _locate(raw, notes, f"{chapter.name}/")
            sub.notes.extend(f"{chapter.name}: {note}" for note in notes)
            sub.chapters[chapter.name] = files
        if assignment is not None and sub.chapters:
            sub.files = sub.chapters.pop(assignment)
        found.append(sub)
    return found


def _check_source(name: str, data: bytes, notes: list[str]) -> None:
    """Say plainly when Python will not be able to read a file, before the import error does."""
    if b"\0" in data:
        notes.append(f"exercises/{name} contains null bytes: it is not a text file Python can import")
        return
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        notes.append(f"exercises/{name} is not valid UTF-8 (line {line}): save it as UTF-8 text")


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
    if not files:
        for archive in sorted(folder.glob("*.zip")):  # a folder holding the learner's zip
            if archive.is_file() and not archive.is_symlink():
                return _python_files_in_zip(archive, notes)
    return files


def _python_files_in_zip(path: Path | io.BytesIO, notes: list[str], label: str = "",
                         depth: int = 0) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    label = label or getattr(path, "name", "the zip")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        notes.append(f"{label} is not a readable zip file ({exc}); nothing could be graded")
        return files
    total = 0
    nested: list[zipfile.ZipInfo] = []
    with archive:
        members = archive.infolist()
        if not members:
            notes.append(f"{label} is empty; nothing could be graded")
        for info in members[: MAX_FILES * 10]:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if info.is_dir():
                continue
            if (name.is_absolute() or ".." in name.parts or any(p.startswith(".") for p in name.parts)
                    or "\0" in info.filename):
                notes.append(f"skipped {info.filename!r}: unsafe path in the zip")
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                notes.append(f"skipped {info.filename}: a link, not a file")
                continue
            if name.suffix.lower() == ".zip":
                nested.append(info)
                continue
            if name.suffix != ".py" or "__MACOSX" in name.parts:
                continue
            if info.file_size > MAX_FILE_BYTES or total + info.file_size > MAX_TOTAL_BYTES or len(files) >= MAX_FILES:
                notes.append(f"skipped {info.filename}: the submission is over its size limits")
                continue
            data = _read_member(archive, info, MAX_FILE_BYTES, notes)
            if data is None:
                continue
            files[name.as_posix()] = data
            total += len(data)
        if not files and nested:
            if depth >= 1:
                notes.append(f"skipped {nested[0].filename}: archives nested more than one level deep are not opened")
            else:
                data = _read_member(archive, nested[0], MAX_NESTED_ZIP_BYTES, notes)
                if data is not None:
                    inner = _python_files_in_zip(io.BytesIO(data), notes, nested[0].filename, depth + 1)
                    prefix = str(PurePosixPath(nested[0].filename).with_suffix(""))
                    files = {f"{prefix}/{k}": v for k, v in inner.items()}
    return files


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, notes: list[str]) -> bytes | None:
    try:
        with archive.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError, ValueError) as exc:
        notes.append(f"skipped {info.filename}: could not be read ({exc})")
        return None
    if len(data) > limit:  # the header lied about the size (a zip bomb), or the file is too big
        notes.append(f"skipped {info.filename}: the submission is over its size limits")
        return None
    return data


def _locate(raw: dict[str, bytes], notes: list[str], where: str = "",
            needed: set[str] | None = None) -> dict[str, bytes]:
    """The learner's ``exercises`` package inside ``raw``, wherever it sits; ``{}`` with a note if none.
    ``needed`` (default: every exercise module) are the modules whose absence deserves a note."""
    expected = module_files()
    dirs = {str(PurePosixPath(name).parent) for name in raw}

    def depth(d: str) -> tuple[int, str]:
        return (0 if d == "." else d.count("/") + 1, d)

    def inside(d: str, name: str) -> str:
        return name if d == "." else f"{d}/{name}"

    named = sorted((d for d in dirs if PurePosixPath(d).name == "exercises"), key=depth)
    holding = sorted((d for d in dirs if any(inside(d, m) in raw for m in expected)), key=depth)
    base = named[0] if named else holding[0] if holding else None
    if base is None:
        if raw or not notes:
            notes.append(f"no exercises folder found{' in ' + where if where else ''} (expected "
                         f"{', '.join(sorted(expected))} inside an 'exercises' folder); nothing could be graded")
        return {}
    prefix = "" if base == "." else base + "/"
    files = {name[len(prefix):]: data for name, data in raw.items() if name.startswith(prefix)}
    for name in sorted(files):
        if name in expected:
            _check_source(name, files[name], notes)
    missing = sorted(m for m in (expected if needed is None else needed) if m not in files)
    if missing:
        notes.append(f"missing from the submission: {', '.join('exercises/' + m for m in missing)}")
    return files


def read_exercises_folder(folder: Path, notes: list[str], needed: set[str] | None = None) -> dict[str, bytes]:
    """The ``exercises`` package found in ``folder`` (as ``read_submission`` finds it); ``needed``: the
    modules whose absence deserves a note (default: every exercise module)."""
    return _locate(_python_files_in_dir(Path(folder), notes), notes, needed=needed)


def read_submission(sub: Submission) -> None:
    """Fill ``sub.files`` with the learner's exercise package, found wherever it sits."""
    raw = (_python_files_in_zip(sub.path, sub.notes) if sub.path.is_file()
           else _python_files_in_dir(sub.path, sub.notes))
    sub.files = _locate(raw, sub.notes)


_BYTECODE: dict[tuple[str, str], bytes] = {}


def official_bytecode(path: Path) -> bytes:
    """The bytecode of one of the course's own modules, hash-checked (it stays valid wherever the file is
    copied, whatever its time stamp), compiled once per process."""
    source = path.read_bytes()
    key = (str(path), hashlib.sha256(source).hexdigest())
    if key not in _BYTECODE:
        with tempfile.TemporaryDirectory(prefix="bytecode-") as tmp:
            target = Path(tmp) / "module.pyc"
            py_compile.compile(str(path), cfile=str(target), doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
            _BYTECODE[key] = target.read_bytes()
    return _BYTECODE[key]


def stage(sub: Submission, dest: Path, files: dict[str, bytes] | None = None) -> Path:
    """Write the package the sandbox imports: the course's ``exercises`` with the learner's
    exercise modules (and any extra modules of theirs) on top. Returns the folder to put on
    ``sys.path``. ``files`` (default ``sub.files``) picks one chapter of an nbgrader submission.
    The course's own modules come with their bytecode (so that no submission pays for compiling
    them); the sandbox compiles the learner's."""
    files = sub.files if files is None else files
    package = dest / "exercises"
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(OFFICIAL_DIR, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    official = {p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    learner_modules = module_files()
    for name in sorted(official - learner_modules):
        cached = Path(importlib.util.cache_from_source(str(package / name)))
        cached.parent.mkdir(exist_ok=True)
        cached.write_bytes(official_bytecode(OFFICIAL_DIR / name))
    for name, data in files.items():
        if name in learner_modules or name not in official:
            target = package / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    for name in learner_modules:  # a module the learner did not hand in is missing, not the stub
        if name not in files:
            (package / name).unlink(missing_ok=True)
    return dest
