"""The learner release: course notebooks, ``exercises/`` (stubs), environment files, a README.

``build_release`` writes the bundle as a folder and a zip, then proves it holds no solution text
and nothing from the hidden tests (``find_leaks``); a bundle with a leak is deleted, not shipped.
Its exercise modules are generated from ``solutions/`` there and then, never copied from the working
``exercises/`` (where an instructor may have tried an exercise), and its ``exercises/`` holds only the
package's own files: the stubs, ``checks/`` and ``kit/``.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import zipfile
from pathlib import Path

from exercises.kit.catalogue import exercise_modules
from exercises.kit.colab import REPOSITORY
from exercises.kit.update import write_manifest
from grading import PROJECT_ROOT
from grading.notebooks import sync
from grading.stubs import BEGIN, END, generate, generated_files, solution_modules

LEARNER_README = Path(__file__).with_name("learner_README.md")
SHIPPED = ("course", "environment.yml", "pyproject.toml")
PACKAGE_FILES = ("__init__.py", "__main__.py")  # exercises/ also ships checks/, kit/ and the generated stubs
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
FORBIDDEN_DIRS = ("solutions", "grading", "tests", ".git")


class ReleaseError(RuntimeError):
    """The release cannot be built as it is; the message says why and what to do."""


class ReleaseLeak(ReleaseError):
    """The bundle would ship solution or hidden-test material; the message lists what and where."""


def _strip_outputs(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def check_source(repository: str | None) -> str:
    """Where the release's Colab cells fetch the course from: ``repository`` if it is a usable source for
    learners; else ``ReleaseError`` saying what to pass."""
    how = ("pass the address learners fetch the release from: `make release REPOSITORY=https://github.com/you/"
           "course-release` (a repository holding this release), or `make release REPOSITORY=learner-release.zip` "
           "(the release zip, which learners put in their Google Drive)")
    if not repository:
        raise ReleaseError(f"no address for the release's Colab badges and set-up cells: {how}")
    if repository.rstrip("/").removesuffix(".git") == REPOSITORY:
        raise ReleaseError(f"the release's Colab cells would fetch the course from {REPOSITORY}, the course's own "
                           f"repository, with its solutions and hidden tests: {how}")
    if any(c in repository for c in "\"\\\n"):
        raise ReleaseError(f"{repository!r} cannot be written into a notebook cell: {how}")
    return repository


def build_release(out: Path, root: Path = PROJECT_ROOT, repository: str | None = None) -> Path:
    """Write the learner bundle to ``out`` (a folder) and ``out.zip``; return ``out``. Its notebooks'
    Colab badges and set-up cells fetch the course from ``repository`` (see ``check_source``)."""
    repository = check_source(repository)
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in SHIPPED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=ignore)
        else:
            shutil.copy2(source, out / name)
    package = out / "exercises"
    package.mkdir()
    for name in PACKAGE_FILES:
        shutil.copy2(root / "exercises" / name, package / name)
    for sub in ("checks", "kit"):
        shutil.copytree(root / "exercises" / sub, package / sub, ignore=ignore)
    stubs = generate(root / "solutions")
    for name, text in generated_files(root / "solutions").items():
        (package / name).write_text(text, encoding="utf-8")
    found = exercise_modules(package)
    if sorted(found) != sorted(n.removesuffix(".py") for n in stubs):
        shutil.rmtree(out)
        raise ReleaseError(f"the release's exercise catalogue ({', '.join(found)}) is not the set of solution modules "
                          f"({', '.join(stubs)}): every solution module needs 'Explained in course/...' docstrings")
    shutil.copy2(LEARNER_README, out / "README.md")
    sync(out / "course", repository)
    for notebook in (out / "course").rglob("*.ipynb"):
        _strip_outputs(notebook)
    write_manifest(out)  # lets `python -m exercises update` recognise the learner's own edits later
    leaks = find_leaks(out, root)
    if leaks:
        shutil.rmtree(out)
        raise ReleaseLeak("the learner release would leak:\n  " + "\n  ".join(leaks))
    archive = out.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(out.rglob("*")):
            if path.is_file():
                z.write(path, Path(out.name) / path.relative_to(out))
    return out


def _code_of(path: Path) -> str:
    """Python source of a ``.py`` file, or of a notebook's code cells (magics dropped)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix != ".ipynb":
        return text
    cells = json.loads(text).get("cells", [])
    sources = ["".join(c.get("source", [])) for c in cells if c.get("cell_type") == "code"]
    return "\n".join(ln for src in sources for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")))


def _statements(code: str) -> set[str]:
    """``ast.dump`` of every statement in ``code`` (positions left out), at any depth."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    return {ast.dump(node) for node in ast.walk(tree) if isinstance(node, ast.stmt)}


def _taught_statements(notebooks: list[Path]) -> set[str]:
    """``ast.dump`` of every statement the notebooks' text spells out in inline code (`...`): what the
    course teaches in the open (such as ``scaler.step(optimizer)``) is not a leak when given code uses it."""
    taught: set[str] = set()
    for path in notebooks:
        for cell in json.loads(path.read_text(encoding="utf-8", errors="replace")).get("cells", []):
            if cell.get("cell_type") == "markdown":
                for span in re.findall(r"`([^`\n]+)`", "".join(cell.get("source", []))):
                    taught |= _statements(span)
    return taught


def _solution_regions(root: Path) -> list[tuple[str, list[str]]]:
    regions = []
    for name, source in solution_modules(root / "solutions").items():
        inside: list[str] | None = None
        for line in source.splitlines():
            if line.strip().startswith(BEGIN):
                inside = []
            elif line.strip().startswith(END):
                regions.append((name, inside or []))
                inside = None
            elif inside is not None:
                inside.append(line)
    return regions


def _dedent_region(lines: list[str]) -> str:
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    return "\n".join(ln[indent:] for ln in lines)


def find_leaks(bundle: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """Every way ``bundle`` exposes solutions or hidden tests; empty when it is clean."""
    leaks = []
    files = [p for p in bundle.rglob("*") if p.is_file()]
    for path in files:
        rel = path.relative_to(bundle)
        if any(part in FORBIDDEN_DIRS for part in rel.parts[:-1]):
            leaks.append(f"{rel}: lies in a folder that must not ship")
    texts = {p.relative_to(bundle): p.read_text(encoding="utf-8", errors="replace") for p in files}
    for rel, text in texts.items():
        for marker in MARKERS:
            if marker in text:
                leaks.append(f"{rel}: contains the marker '{marker}'")
    code_files = [p for p in files if p.suffix in (".py", ".ipynb")]
    taught = _taught_statements([p for p in code_files if p.suffix == ".ipynb"])
    shipped_statements = {p.relative_to(bundle): _statements(_code_of(p)) - taught for p in code_files}
    for module, lines in _solution_regions(root):
        region = _dedent_region(lines)
        if not region.strip():
            continue
        for node in ast.walk(ast.parse(region, filename=f"solutions/{module}")):
            if not isinstance(node, ast.stmt) or len(ast.unparse(node)) < 16:
                continue
            dump = ast.dump(node)
            for rel, statements in shipped_statements.items():
                if dump in statements:
                    leaks.append(f"{rel}: contains reference code from solutions/{module}: {ast.unparse(node)[:60]!r}")
    hidden_lines = set()
    for path in sorted((root / "grading" / "hidden").glob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            s = line.strip()
            if len(s) >= 30 and not s.startswith(("#", "import ", "from ", '"""')):
                hidden_lines.add(s)
    for rel, text in texts.items():
        for line in hidden_lines:
            if line in text:
                leaks.append(f"{rel}: contains a line of the hidden tests: {line[:60]!r}")
    return sorted(set(leaks))
