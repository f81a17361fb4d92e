"""Command line: ``python -m grading {grade,gradescope-bundle,gradescope-run,nbgrader,stubs,notebooks,release,course,
 solved} ...`` (``--help`` on each)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _grade(args: argparse.Namespace) -> int:
    from grading.grade import IsolationError, grade_batch, isolation_summary
    from grading.sandbox import Limits
    from grading.submissions import SubmissionsError

    def warn(record: dict) -> None:  # the first line, before any grading, when isolation is incomplete
        if isolation_summary(record) and not args.require_isolation:
            print(isolation_summary(record), flush=True)

    try:
        report = grade_batch(Path(args.submissions), Path(args.out), jobs=args.jobs,
                             limits=Limits(timeout=args.timeout, memory_mb=args.memory_mb),
                             force=args.force, progress=not args.quiet, assignment=args.assignment,
                             exclude=tuple(args.exclude), require_isolation=args.require_isolation,
                             on_isolation=warn)
    except SubmissionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except IsolationError as exc:
        print(f"error: refusing to grade (--require-isolation): {str(exc).removeprefix('warning: ')}",
              file=sys.stderr)
        return 3
    print(f"graded {len(report.graded)} submission(s), reused {len(report.reused)} earlier result(s)")
    if report.isolation:
        print(f"isolation: {report.isolation}")
    print(f"grades:     {report.csv_path}")
    print(f"feedback:   {report.out_dir / 'feedback'} (Markdown and HTML)")
    print(f"gradescope: {report.out_dir / 'gradescope'}/<learner>/results.json")
    return 0


def _gradescope_bundle(args: argparse.Namespace) -> int:
    from grading.gradescope import build_bundle

    print(f"Gradescope autograder: {build_bundle(Path(args.out))} (upload it as the assignment's autograder)")
    return 0


def _gradescope_run(args: argparse.Namespace) -> int:
    from grading.gradescope import run

    run(Path(args.submission), Path(args.results), timeout=args.timeout)
    return 0


def _nbgrader(args: argparse.Namespace) -> int:
    from grading import nbgrader_course

    return nbgrader_course.main(args)


def _stubs(args: argparse.Namespace) -> int:
    from grading import stubs

    if args.check:
        diffs = stubs.drift()
        if diffs:
            sys.stdout.write("".join(diffs))
            print("error: exercises/ differs from what solutions/ generates; run `make stubs` and commit the result",
                  file=sys.stderr)
            return 1
        print("exercises/ is in sync with solutions/")
        return 0
    written = stubs.write()
    print(f"wrote {', '.join('exercises/' + n for n in written)}" if written else "exercises/ already in sync")
    return 0


def _notebooks(args: argparse.Namespace) -> int:
    from grading import notebooks

    if args.check:
        stale = notebooks.drift()
        if stale:
            print(f"error: out of date (Colab badge or set-up cell): {', '.join(stale)}; run `make stubs`",
                  file=sys.stderr)
            return 1
        print("every notebook's Colab badge and set-up cell are up to date")
        return 0
    written = notebooks.sync()
    print(f"updated {', '.join(written)}" if written else "notebooks already up to date")
    return 0


def _release(args: argparse.Namespace) -> int:
    from grading.release import ReleaseError, build_release

    try:
        path = build_release(Path(args.out), repository=args.repository)
    except ReleaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"learner release: {path} and {path.with_suffix('.zip')}")
    return 0


def _course(args: argparse.Namespace) -> int:
    from grading.course_run import run_course

    return run_course(Path(args.out), fast=not args.full, notebooks=args.notebooks)


def _solved(args: argparse.Namespace) -> int:
    from grading.course_run import build_solved_tree

    print(f"solved copy of the learner tree: {build_solved_tree(Path(args.out))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading", description="The course's instructor tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade a folder of submissions into a CSV and feedback")
    g.add_argument("submissions", help="folder holding one folder or .zip per learner, or an nbgrader course folder")
    g.add_argument("-o", "--out", default="grading-output", help="output folder (default: grading-output)")
    g.add_argument("-j", "--jobs", type=int, default=2, help="submissions graded in parallel (default: 2)")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds per test (default: 10)")
    g.add_argument("--memory-mb", type=int, default=2048, help="memory per test, MiB (default: 2048)")
    g.add_argument("--force", action="store_true", help="regrade everyone, even with up-to-date results")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.add_argument("-a", "--assignment", help="grade only this chapter's exercises (a notebook name, e.g. 00_welcome)")
    g.add_argument("--exclude", action="append", default=[], metavar="NAME",
                   help="leave out hidden tests whose name contains NAME (repeatable), e.g. cnn_budget")
    g.add_argument("--require-isolation", action="store_true",
                   help="refuse to grade (exit 3) unless the sandbox has every isolation mechanism in force")
    g.set_defaults(func=_grade)

    b = sub.add_parser("gradescope-bundle", help="build the Gradescope autograder zip (setup.sh, run_autograder)")
    b.add_argument("-o", "--out", default="dist/gradescope-autograder.zip", help="the zip to write")
    b.set_defaults(func=_gradescope_bundle)

    gr = sub.add_parser("gradescope-run", help="grade one submission the Gradescope way (run_autograder calls it)")
    gr.add_argument("submission", help="the submission folder (/autograder/submission)")
    gr.add_argument("results", help="where to write results.json (/autograder/results/results.json)")
    gr.add_argument("--timeout", type=float, default=10.0, help="seconds per test (default: 10)")
    gr.set_defaults(func=_gradescope_run)

    nb = sub.add_parser("nbgrader", help="the course as nbgrader assignments: build, autograde, feedback, export")
    from grading.nbgrader_course import add_arguments

    add_arguments(nb)
    nb.set_defaults(func=_nbgrader)

    s = sub.add_parser("stubs", help="generate exercises/ from solutions/")
    s.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    s.set_defaults(func=_stubs)

    n = sub.add_parser("notebooks", help="regenerate each notebook's Colab badge and set-up cell")
    n.add_argument("--check", action="store_true", help="only report notebooks out of date; exit 1 if any")
    n.set_defaults(func=_notebooks)

    r = sub.add_parser("release", help="build the learner bundle (no solutions, no hidden tests)")
    r.add_argument("-o", "--out", default="dist/learner-release", help="output folder (a .zip is written beside it)")
    r.add_argument("--repository", help="where learners fetch the release from on Colab: a git address, or the name "
                                        "of the release zip in their Google Drive (e.g. learner-release.zip)")
    r.set_defaults(func=_release)

    c = sub.add_parser("course", help="execute every chapter notebook against the reference solutions")
    c.add_argument("-o", "--out", default="build/course", help="where executed notebooks and HTML go")
    c.add_argument("--full", action="store_true", help="full mode (GPU-sized), not the fast CPU mode")
    c.add_argument("notebooks", nargs="*", help="only these notebooks (names or paths)")
    c.set_defaults(func=_course)

    v = sub.add_parser("solved", help="write course/ and exercises/ with the reference solutions filled in")
    v.add_argument("out", nargs="?", default="build/solved", help="output folder (default: build/solved)")
    v.set_defaults(func=_solved)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
