"""Bring a learner's copy of the course up to a newer release without losing any of their work.

``python -m exercises update path/to/new-release`` (a folder or a ``.zip``):

* new files are added; files you never changed are replaced by their new version (the release's
  ``.course-release.json`` lists what each shipped file looked like, so your edits are recognised);
* your exercise modules are merged function by function: every function you implemented is kept
  exactly as you wrote it, new and unimplemented ones come from the release, your own helpers stay;
* a notebook you edited is kept, and the new version is written beside it as ``NAME.updated.ipynb``;
* any file of yours that is changed is first copied to ``.course-backup/<time>/``;
* nothing is ever deleted, and your progress file is never touched. Files an older release shipped that
  the new one no longer uses (the course's helpers moved into ``exercises/kit/``, say) are listed, and
  imports of yours from them are pointed at the module that now defines those names.

Which files are exercise modules is read from the new release itself (``exercises.kit.catalogue``).
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from exercises.kit.catalogue import STUB_MARK, exercise_modules

MANIFEST = ".course-release.json"


class UpdateError(ValueError):
    """The update cannot start; the message says why and what to do."""


@dataclass
class UpdateReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    merged: dict[str, list[str]] = field(default_factory=dict)  # module -> functions of yours kept
    kept: list[str] = field(default_factory=list)  # edited by you: new version written beside it
    obsolete: list[str] = field(default_factory=list)  # shipped before, no longer used; never deleted
    unknown: list[str] = field(default_factory=list)  # code beside the course's that no release lists
    unchanged: int = 0
    backup: Path | None = None

    def text(self) -> str:
        lines = []
        for title, items in (("added", self.added), ("updated", self.replaced)):
            if items:
                lines.append(f"{title}: " + ", ".join(items))
        for module, kept in self.merged.items():
            lines.append(f"merged {module}: kept your " + (", ".join(kept) if kept else "file's own code"))
        for item in self.kept:
            lines.append(f"kept your edited {item}")
        if self.obsolete:
            lines.append("no longer used by the course (kept; delete them when you like): "
                         + ", ".join(self.obsolete))
        if self.unknown:
            lines.append("not part of this release (left from an older one, or yours; kept): "
                         + ", ".join(self.unknown))
        if self.backup:
            lines.append(f"your previous files are backed up in {self.backup}")
        lines.append(f"{self.unchanged} file(s) already up to date; nothing was deleted.")
        return "\n".join(lines)


def _digest(path: Path) -> str:
    if path.suffix == ".ipynb":  # outputs and execution counts are not edits
        try:
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            return hashlib.sha256(json.dumps([("".join(c.get("source", [])), c.get("cell_type")) for c in cells])
                                  .encode()).hexdigest()
        except (ValueError, KeyError, TypeError):
            pass
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(root: Path) -> None:
    """Record what every shipped file looks like (the release builder calls this)."""
    files = {p.relative_to(root).as_posix(): _digest(p) for p in sorted(root.rglob("*"))
             if p.is_file() and p.name != MANIFEST}
    (root / MANIFEST).write_text(json.dumps({"files": files}, indent=1) + "\n", encoding="utf-8")


def _release_root(release: Path, scratch: Path) -> Path:
    if not release.exists():
        raise UpdateError(f"'{release}' does not exist: pass the new release's folder or .zip")
    if release.is_file():
        try:
            with zipfile.ZipFile(release) as z:
                for info in z.infolist():
                    name = Path(info.filename)
                    if name.is_absolute() or ".." in name.parts:
                        raise UpdateError(f"{release.name} contains an unsafe path {info.filename!r}")
                z.extractall(scratch)
        except zipfile.BadZipFile as exc:
            raise UpdateError(f"{release} is not a readable zip ({exc})") from None
        release = scratch
    for candidate in [release, *sorted(p for p in release.rglob("*") if p.is_dir())]:
        if (candidate / "course").is_dir() and (candidate / "exercises").is_dir():
            return candidate
    raise UpdateError(f"no course release in '{release}': expected course/ and exercises/ folders")


def _defs(tree: ast.Module) -> dict[str, ast.stmt]:
    return {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _segment(source: str, node: ast.stmt) -> str:
    lines = source.splitlines()
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return "\n".join(lines[start - 1 : node.end_lineno])


def defined_names(package_dir: Path) -> dict[str, str]:
    """``{name: module}`` for the top-level names each module of ``package_dir``'s given code defines
    (``{"require_float_tensor": "exercises.kit.validate", ...}``)."""
    found: dict[str, str] = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).with_suffix("")
        if rel.name == "__init__" or "checks" in rel.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in tree.body:
            names = [node.name] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else \
                [t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
            for name in names:
                found.setdefault(name, ".".join(rel.parts))
    return found


def _moved(node: ast.stmt, gone: set[str], now_in: dict[str, str]) -> ast.stmt:
    """``from exercises.<gone module> import a, b`` pointed at the one module that now defines a and b."""
    if not isinstance(node, ast.ImportFrom) or node.level or node.module not in gone:
        return node
    targets = {now_in.get(alias.name) for alias in node.names}
    if len(targets) != 1 or None in targets:
        return node
    return ast.ImportFrom(module=targets.pop(), names=node.names, level=0)


def merge_exercise_module(new: str, mine: str, gone: set[str] = frozenset(), now_in: dict[str, str] | None = None,
                          ) -> tuple[str, list[str]]:
    """The new stub module with every definition you implemented kept as you wrote it.

    ``gone`` names the modules (``exercises.validate``) the new release no longer ships and ``now_in``
    where each name is defined now (``defined_names``): your imports from a gone module are pointed there.
    Returns the merged source and the names of your definitions that were kept.
    """
    try:
        mine_tree = ast.parse(mine)
    except SyntaxError:
        raise UpdateError("your exercise file has a syntax error; fix it, then update again") from None
    new_tree = ast.parse(new)
    my_defs, new_defs = _defs(mine_tree), _defs(new_tree)
    kept = []
    lines = new.splitlines()
    replacements = []
    for name, node in new_defs.items():
        theirs = my_defs.get(name)
        if theirs is None:
            continue
        their_code = _segment(mine, theirs)
        if their_code != _segment(new, node) and (STUB_MARK not in their_code or isinstance(theirs, ast.ClassDef)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            replacements.append((start, node.end_lineno, their_code))
            kept.append(name)
    for start, end, code in sorted(replacements, reverse=True):
        lines[start - 1 : end] = code.splitlines()
    merged = "\n".join(lines) + "\n"
    new_imports = {ast.dump(n) for n in new_tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}
    extra_imports = []
    for n in mine_tree.body:
        if not isinstance(n, (ast.Import, ast.ImportFrom)):
            continue
        moved = _moved(n, set(gone), now_in or {})
        if ast.dump(moved) not in new_imports:
            extra_imports.append(_segment(mine, n) if moved is n else ast.unparse(moved))
    helpers = [_segment(mine, n) for name, n in my_defs.items() if name not in new_defs]
    if extra_imports:
        merged += "\n# Your own imports, kept by the update.\n" + "\n".join(extra_imports) + "\n"
    if helpers:
        merged += "\n\n# Your own helpers, kept by the update.\n" + "\n\n\n".join(helpers) + "\n"
        kept.extend(name for name in my_defs if name not in new_defs)
    ast.parse(merged)
    return merged, kept


def update_course(release: Path, root: Path, dry_run: bool = False) -> UpdateReport:
    """Update the course copy at ``root`` from ``release``; see the module docstring."""
    report = UpdateReport()
    with tempfile.TemporaryDirectory() as scratch:
        new_root = _release_root(Path(release), Path(scratch))
        new_modules = {f"exercises/{m}.py" for m in exercise_modules(new_root / "exercises")}
        shipped_now = {p.relative_to(new_root).as_posix() for p in new_root.rglob("*") if p.is_file()}
        old_manifest = {}
        if (root / MANIFEST).exists():
            try:
                old_manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))["files"]
            except (ValueError, KeyError):
                old_manifest = {}
        gone_files = sorted(rel for rel in old_manifest if rel not in shipped_now and (root / rel).is_file())
        gone = {rel.removesuffix(".py").replace("/", ".") for rel in gone_files if rel.endswith(".py")}
        now_in = defined_names(new_root / "exercises")
        report.obsolete = gone_files
        modules = ({f"exercises/{m}.py" for m in exercise_modules(root / "exercises")}
                   if (root / "exercises").is_dir() else set())
        report.unknown = sorted(
            rel for p in (root / "exercises").rglob("*.py") if "__pycache__" not in p.parts
            and (rel := p.relative_to(root).as_posix()) not in shipped_now and rel not in old_manifest
            and rel not in modules) if (root / "exercises").is_dir() else []
        stamp = time.strftime("%Y%m%d-%H%M%S")
        backup_root = root / ".course-backup" / stamp

        def backup(rel: str) -> None:
            if dry_run:
                return
            target = backup_root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, target)
            report.backup = backup_root

        def install(rel: str, text: bytes) -> None:
            if not dry_run:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(text)

        for new_path in sorted(p for p in new_root.rglob("*") if p.is_file()):
            rel = new_path.relative_to(new_root).as_posix()
            if rel == MANIFEST or "__pycache__" in rel:
                continue
            mine = root / rel
            new_bytes = new_path.read_bytes()
            if not mine.exists():
                install(rel, new_bytes)
                report.added.append(rel)
                continue
            if mine.read_bytes() == new_bytes:
                report.unchanged += 1
                continue
            untouched = old_manifest.get(rel) == _digest(mine)
            if rel in new_modules and not untouched:
                merged, kept = merge_exercise_module(new_bytes.decode("utf-8"), mine.read_text(encoding="utf-8"),
                                                     gone, now_in)
                if merged.encode() == mine.read_bytes():
                    report.unchanged += 1
                    continue
                backup(rel)
                install(rel, merged.encode())
                report.merged[rel] = kept
            elif untouched or _digest(mine) == _digest(new_path):
                backup(rel)
                install(rel, new_bytes)
                report.replaced.append(rel)
            elif rel.endswith(".ipynb"):
                beside = rel[: -len(".ipynb")] + ".updated.ipynb"
                install(beside, new_bytes)
                report.kept.append(f"{rel} (the new version is {beside})")
            else:  # the course's own code: it must be current for the checks to work
                backup(rel)
                install(rel, new_bytes)
                report.replaced.append(f"{rel} (your edited copy is in the backup)")
        if not dry_run and (new_root / MANIFEST).exists():
            shutil.copy2(new_root / MANIFEST, root / MANIFEST)
    return report
