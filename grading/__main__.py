"""Command line: ``python -m grading {grade,merge,export,gradescope-bundle,gradescope-run,nbgrader,stubs,notebooks,
release,course,solved} ...`` (``--help`` on each)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _grade(args: argparse.Namespace) -> int:
    from grading.grade import IsolationError, grade_batch, isolation_summary
    from grading.sandbox import Limits
    from grading.shards import ShardError, parse_shard
    from grading.submissions import SubmissionsError

    def warn(record: dict) -> None:  # the first line, before any grading, when isolation is incomplete
        if isolation_summary(record) and not args.require_isolation:
            print(isolation_summary(record), flush=True)

    try:
        shard = parse_shard(args.shard) if args.shard else None
        report = grade_batch(Path(args.submissions), Path(args.out), jobs=args.jobs,
                             limits=Limits(timeout=args.timeout, memory_mb=args.memory_mb),
                             force=args.force, progress=not args.quiet, assignment=args.assignment,
                             exclude=tuple(args.exclude), shard=shard, learners=tuple(args.learner),
                             require_isolation=args.require_isolation, on_isolation=warn)
    except (SubmissionsError, ShardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except IsolationError as exc:
        print(f"error: refusing to grade (--require-isolation): {str(exc).removeprefix('warning: ')}",
              file=sys.stderr)
        return 3
    where = f"shard {shard.index}/{shard.count}: " if shard else ""
    print(f"{where}graded {len(report.graded)} submission(s), reused {len(report.reused)} earlier result(s)")
    if report.ungraded:
        print(f"could not be graded ({len(report.ungraded)}), each scored 0:")
        for learner, why in report.ungraded.items():
            print(f"  {learner}: {why}")
    if report.kept:
        print(f"kept as they were ({len(report.kept)}; graded by an older grader or from older files): "
              f"{', '.join(report.kept)}; run grade without --learner to grade them again")
    if report.regrades:
        changed = sum(r.changed for r in report.regrades)
        target = report.regrade_report or "merge's regrade-report.md"
        print(f"graded again over earlier results: {len(report.regrades)} learner(s), {changed} grade(s) changed "
              f"(whose, from what to what, why: {target})")
    if report.isolation:
        print(f"isolation: {report.isolation}")
    if report.csv_path is None:
        print(f"grades:     once every shard has finished: python -m grading merge {report.out_dir}")
    else:
        print(f"grades:     {report.csv_path}")
    print(f"feedback:   {report.out_dir / 'feedback'} (Markdown and HTML)")
    print(f"gradescope: {report.out_dir / 'gradescope'}/<learner>/results.json")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from grading.merge import MergeError, merge

    try:
        report = merge([Path(p) for p in args.outputs], Path(args.out) if args.out else None, args.shards)
    except MergeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"merged {report.count} shard(s): {len(report.learners)} learner(s)")
    if report.ungraded:
        print(f"could not be graded ({len(report.ungraded)}), each scored 0:")
        for learner, why in report.ungraded.items():
            print(f"  {learner}: {why}")
    if report.regrade_report:
        print(f"regrades:   {report.regrade_report}")
    print(f"grades:     {report.csv_path}")
    print(f"feedback:   {report.out_dir / 'feedback'} (Markdown and HTML)")
    print(f"gradescope: {report.out_dir / 'gradescope'}/<learner>/results.json")
    return 0


def _export(args: argparse.Namespace) -> int:
    from grading import lms

    out = Path(args.out)
    try:
        batch = lms.load_batch(out)
        if args.to == "canvas":
            export = lms.canvas_gradebook(batch, out / "lms" / "canvas-gradebook.csv", args.missing,
                                          Path(args.roster) if args.roster else None,
                                          lms.parse_assignments(args.canvas_assignment), args.out_of)
        else:
            export = lms.moodle_worksheet(batch, out / "lms" / "moodle-grading-worksheet.csv", args.missing,
                                          Path(args.roster) if args.roster else None, args.out_of)
    except (lms.ExportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.to}: {export.path} ({export.rows} learner row(s))")
    for extra in export.extra:
        print(f"{args.to}: {extra}")
    if export.unmatched:
        print(f"left out, no {args.to.capitalize()} learner to match them to ({len(export.unmatched)}): "
              f"{', '.join(export.unmatched)}")
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
    g.add_argument("--shard", metavar="K/N",
                   help="grade only shard K of N (0 <= K < N; by a hash of the learner id), then run merge; "
                        "'auto' reads K from $JOB_COMPLETION_INDEX and N from $SHARD_COUNT (a Kubernetes Indexed Job)")
    g.add_argument("--learner", action="append", default=[], metavar="ID",
                   help="grade this learner again, whatever their results (repeatable); the others keep theirs")
    g.set_defaults(func=_grade)

    m = sub.add_parser("merge", help="combine the output folders of shards into one grades.csv, feedback, gradescope")
    m.add_argument("outputs", nargs="+", metavar="OUT", help="output folders of the shards (grade --shard K/N -o OUT)")
    m.add_argument("-o", "--out", help="where the merged files go (default: the first OUT)")
    m.add_argument("--shards", type=int, metavar="N", help="merge the batch split N ways (when OUT holds several)")
    m.set_defaults(func=_merge)

    e = sub.add_parser("export", help="grade files Canvas or Moodle import as they are (in OUT/lms/)")
    e.add_argument("out", metavar="OUT", help="the output folder of grade (or of merge)")
    e.add_argument("--to", choices=["canvas", "moodle"], required=True, help="the learning-management system")
    e.add_argument("--missing", choices=["zero", "empty"], default="zero",
                   help="what a chapter nothing was handed in for gets: 0 (default) or an empty cell (the LMS "
                        "keeps what it has)")
    e.add_argument("--roster", metavar="CSV",
                   help="the LMS's own list of learners, to give a row to those who handed nothing in: Canvas's "
                        "gradebook export, or Moodle's downloaded grading worksheet")
    e.add_argument("--canvas-assignment", action="append", default=[], metavar="CHAPTER=ID",
                   help="the Canvas assignment id of a chapter, e.g. 01_data=4711 (repeatable)")
    e.add_argument("--out-of", type=float, metavar="POINTS", help="rescale each grade to this many points")
    e.set_defaults(func=_export)

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
