"""Run the course headless: every chapter notebook, executed against the reference solutions.

The notebooks import ``exercises``. To run them solved, a copy of the learner tree is built in
which each exercise module is the reference solution (markers stripped); the notebooks then run
with that copy first on ``PYTHONPATH``. Nothing in ``exercises`` knows about ``solutions``.
Fast mode (``COURSE_FAST=1``, the default here) is the small CPU budget CI uses.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from grading import PROJECT_ROOT
from grading.stubs import solution_modules, strip_markers


def build_solved_tree(dest: Path, root: Path = PROJECT_ROOT) -> Path:
    """``dest/course`` and ``dest/exercises`` with the reference in every exercise module."""
    dest = Path(dest)
    for name in ("course", "exercises"):
        if (dest / name).exists():
            shutil.rmtree(dest / name)
        shutil.copytree(root / name, dest / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    for name, source in solution_modules(root / "solutions").items():
        (dest / "exercises" / name).write_text(strip_markers(source), encoding="utf-8")
    return dest


@contextmanager
def _environment(**changes: str):
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def chapter_notebooks(course_dir: Path) -> list[Path]:
    """The chapter notebooks, in chapter order (``00_…``, ``01_…``, …)."""
    return sorted(p for p in course_dir.glob("[0-9][0-9]_*.ipynb"))


def run_course(out: Path, fast: bool = True, notebooks: list[str] | None = None, cell_timeout: int = 900,
               root: Path = PROJECT_ROOT) -> int:
    """Execute the notebooks into ``out`` (``.ipynb`` and ``.html``); return 0, or 1 if any cell failed."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from nbconvert import HTMLExporter

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    solved = build_solved_tree(out / "solved", root)
    selected = chapter_notebooks(solved / "course")
    if notebooks:
        wanted = {Path(n).stem for n in notebooks}
        selected = [p for p in selected if p.stem in wanted or p.stem.split("_")[0] in wanted]
        if not selected:
            print(f"error: no chapter notebook matches {', '.join(notebooks)}", file=sys.stderr)
            return 2
    python_path = os.pathsep.join(filter(None, [str(solved), os.environ.get("PYTHONPATH", "")]))
    failures = []
    # Text progress bars: the HTML shows their final state (widgets would need JavaScript and their state).
    with _environment(PYTHONPATH=python_path, COURSE_FAST="1" if fast else "0", COURSE_TEXT_PROGRESS="1"):
        for path in selected:
            nb = nbformat.read(path, as_version=4)
            start = time.monotonic()
            client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", coalesce_streams=True,
                                    resources={"metadata": {"path": str(path.parent)}})
            try:
                client.execute()
                status = "ok"
            except CellExecutionError as exc:
                failures.append(path.name)
                status = "FAILED\n" + str(exc)[-3000:]
            nbformat.write(nb, out / path.name)
            html, _ = HTMLExporter().from_notebook_node(nb)
            (out / path.with_suffix(".html").name).write_text(html, encoding="utf-8")
            print(f"{path.name}: {status} ({time.monotonic() - start:.1f} s)", flush=True)
    print(f"executed notebooks and HTML in {out}")
    if failures:
        print(f"error: {len(failures)} notebook(s) failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0
