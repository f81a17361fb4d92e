"""Grading speed: the course's grader against ``nbgrader autograde`` on the same batch of submissions.

    python benchmarks/grading.py                        # 100 submissions
    python benchmarks/grading.py -n 20 --execute-notebooks --keep /tmp/bench

Builds ``-n`` synthetic submissions (the reference, untouched stubs, one module stubbed, the classic
ReLU-at-zero mistake, in turn), each holding every exercise module, then measures, in one run:

A. ``python -m grading grade`` with the full hidden suite (every chapter), ``-j 2``, and A' the same
   without the tests that take a training budget (``--slow``, default ``cnn_budget``: chapter 4 trains a
   CNN to 97 %, some 15 s of CPU for the reference on its own);
B. ``python -m grading grade`` on the nbgrader course's ``submitted/`` folder: the same learners, laid out
   per chapter, graded on the chapters that are nbgrader assignments (the same tests nbgrader runs);
C. ``nbgrader autograde`` of every assignment with the project's configuration (hidden tests in the
   sandbox, learners' notebook cells not executed);
D. with ``--execute-notebooks``, ``nbgrader autograde`` that also executes each learner's notebook in a
   kernel, as nbgrader does by default.

For each it prints wall time and CPU time (the process and everything it started), per submission, and
the ratios C/B and D/B. Targets: at most 5 s of CPU per submission for A, and nbgrader at least 3×
slower than the grade command on the same batch. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere in the checkout

ZERO_BUG = '''

_bench_forward, _bench_backward = relu_forward, relu_backward


def relu_forward(x):
    out, cache = _bench_forward(x)
    return out, (x.clone(), cache)


def relu_backward(dout, cache):
    x, inner = cache
    return torch.where(x == 0, dout, _bench_backward(dout, inner))
'''


def learner_modules(index: int) -> dict[str, str]:
    """The exercise modules of synthetic learner ``index``: a deterministic mix of mistakes."""
    from grading.stubs import generate, solution_modules, strip_markers

    reference = {name: strip_markers(source) for name, source in solution_modules().items()}
    stubs = generate()
    kind = index % 4
    modules = dict(reference) if kind != 1 else dict(stubs)
    if kind == 2:  # one module not done yet
        name = sorted(modules)[index // 4 % len(modules)]
        modules[name] = stubs[name]
    if kind == 3 and "layers.py" in modules:
        modules["layers.py"] = modules["layers.py"] + ZERO_BUG
    return modules


def write_submissions(folder: Path, n: int) -> None:
    for i in range(n):
        package = folder / f"learner{i:03d}" / "exercises"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        for name, source in learner_modules(i).items():
            (package / name).write_text(source, encoding="utf-8")


def write_nbgrader_submissions(course: Path, n: int) -> list[str]:
    chapters = sorted(p.name for p in (course / "release").iterdir() if p.is_dir())
    for i in range(n):
        modules = learner_modules(i)
        for chapter in chapters:
            dest = course / "submitted" / f"learner{i:03d}" / chapter
            shutil.copytree(course / "release" / chapter, dest)
            for name, source in modules.items():
                (dest / "exercises" / name).write_text(source, encoding="utf-8")
    return chapters


def measure(label: str, commands: list[list[str]], cwd: Path, n: int) -> dict[str, float]:
    """Run ``commands`` one after the other; wall and CPU seconds, whole and per submission."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    for command in commands:
        proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"{label}: {' '.join(command)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = {"wall": wall, "cpu": cpu, "wall_per": wall / n, "cpu_per": cpu / n}
    print(f"{label:<58} wall {wall:8.1f} s ({result['wall_per']:5.2f} s/submission)   "
          f"CPU {cpu:8.1f} s ({result['cpu_per']:5.2f} s/submission)", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="submissions (default: 100)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="the grade command's parallel jobs (default: 2)")
    parser.add_argument("--execute-notebooks", action="store_true",
                        help="also time nbgrader executing notebooks (slow)")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temporary folder)")
    parser.add_argument("--slow", action="append", default=None, help="hidden tests (name parts) left out of A'")
    parser.add_argument("--skip-full", action="store_true",
                        help="do not time A (the full suite, with its training test)")
    parser.add_argument("--skip-nbgrader", action="store_true", help="time only A and A' (no B, C, D)")
    args = parser.parse_args()
    args.slow = args.slow or ["cnn_budget"]

    from grading.nbgrader_course import build_course, generate_all
    from grading.suite import load_suite

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-grading-"))
    if work.exists() and args.keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  commit {commit}  {platform.platform()}  {os.cpu_count()} CPUs  "
          f"python {platform.python_version()}")
    print(f"hidden tests: {len(load_suite())} in all; submissions: {args.n}; grade jobs: {args.jobs}", flush=True)
    grade = [sys.executable, "-m", "grading", "grade", "-q", "-j", str(args.jobs)]
    try:
        write_submissions(work / "submissions", args.n)
        a = None
        if not args.skip_full:
            a = measure("A  grade, full hidden suite", [[*grade, str(work / "submissions"), "-o", str(work / "out-a")]],
                        ROOT, args.n)
        excluded = [f"--exclude={name}" for name in args.slow]
        a2 = measure(f"A' grade, full hidden suite but {', '.join(args.slow)}",
                     [[*grade, *excluded, str(work / "submissions"), "-o", str(work / "out-a2")]], ROOT, args.n)

        if not args.skip_nbgrader:
            course = work / "course"
            chapters = build_course(course)
            generate_all(course, list(chapters))
            write_nbgrader_submissions(course, args.n)
            print(f"nbgrader assignments: {', '.join(chapters)} ({sum(len(e) for e in chapters.values())} exercises)")
            b = measure("B  grade, the nbgrader assignments' tests", [[*grade, str(course), "-o", str(work / "out-b")]],
                        ROOT, args.n)
            c = measure("C  nbgrader autograde (project configuration)",
                        [["nbgrader", "autograde", chapter, "--force"] for chapter in chapters], course, args.n)
            print(f"ratio C/B (nbgrader autograde / grade command): {c['wall'] / b['wall']:.1f}x wall, "
                  f"{c['cpu'] / b['cpu']:.1f}x CPU")
            if args.execute_notebooks:
                build_course(course, execute_learner_cells=True)
                d = measure("D  nbgrader autograde, executing learners' notebooks",
                            [["nbgrader", "autograde", chapter, "--force"] for chapter in chapters], course, args.n)
                print(f"ratio D/B (nbgrader executing notebooks / grade command): {d['wall'] / b['wall']:.1f}x wall, "
                      f"{d['cpu'] / b['cpu']:.1f}x CPU")
        for label, result in (("A", a), ("A'", a2)):
            if result is None:
                continue
            print(f"target: at most 5 s of CPU per submission ({label}: {result['cpu_per']:.2f} s) "
                  f"{'met' if result['cpu_per'] <= 5 else 'NOT met'}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
