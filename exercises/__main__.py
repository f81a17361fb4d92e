"""The learner's commands: ``python -m exercises lab`` opens the course in JupyterLab, ``python -m exercises
progress`` shows your progress (``--plot`` draws it), ``python -m exercises drill NAME`` practises a drill until
fluent, ``python -m exercises update NEW`` updates your copy to a newer release."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_PLOT = "course-progress.png"


def plot_progress(path: Path) -> Path:
    """Write your practice history (attempts and drill fluency over time) as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from exercises.kit.progress import plot_history

    fig = plot_history()
    labels = "; ".join(f"{ax.get_xlabel() or '-'} / {ax.get_ylabel()}".replace("\n", " ") for ax in fig.axes)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Title": fig.axes[0].get_title(), "Description": f"axes: {labels}"})
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exercises", description="The course's learner tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lab", help="open the course in JupyterLab, on chapter 0 (arguments go to `jupyter lab`)",
                   add_help=False)
    p = sub.add_parser("progress", help="show which checks pass, your attempts, your drills, and a practice plan")
    p.add_argument("--plot", nargs="?", const=DEFAULT_PLOT, type=Path, metavar="PATH",
                   help=f"also draw your history over time into a PNG (default: {DEFAULT_PLOT})")
    d = sub.add_parser("drill", help="practise a drill until fluent (no name: list the drills)")
    d.add_argument("names", nargs="*", metavar="NAME", help="the drills to practise, in turn")
    d.add_argument("-n", "--count", type=int, default=5, help="how many items (default 5)")
    d.add_argument("--chapter", type=int, help="practise the drills of this chapter")
    d.add_argument("--seed", type=int, help="make the items reproducible")
    u = sub.add_parser("update", help="bring your copy up to a newer release without losing your work")
    u.add_argument("release", help="the new release: a folder or a .zip")
    u.add_argument("--into", type=Path, default=Path(__file__).resolve().parent.parent,
                   help="your copy of the course (default: the one this package belongs to)")
    u.add_argument("--dry-run", action="store_true", help="only report what would change")
    args, rest = parser.parse_known_args(argv)
    if args.command == "lab":
        from exercises.kit.lab import main as lab

        return lab(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "progress":
        from exercises.checks import show_progress

        show_progress()
        if args.plot:
            print(f"\nYour history is drawn in {plot_progress(args.plot)}")
        return 0
    if args.command == "drill":
        from exercises.kit.drills import DRILLS, drills, run_in_terminal

        names = args.names or ([x.name for x in drills(args.chapter)] if args.chapter is not None else [])
        unknown = [n for n in names if n not in DRILLS]
        if unknown or not names:
            if unknown:
                print(f"error: no drill named {', '.join(unknown)}", file=sys.stderr)
            elif args.chapter is not None:
                print(f"error: chapter {args.chapter} has no drills; the chapters with drills are "
                      f"{', '.join(map(str, sorted({d.chapter for d in drills()})))}", file=sys.stderr)
                unknown = [str(args.chapter)]
            print("The drills (python -m exercises drill NAME [-n 5], or --chapter N):")
            print(repr(drills()))
            return 2 if unknown else 0
        if args.count < 1:
            print(f"error: -n is how many items to practise: expected 1 or more, got {args.count}", file=sys.stderr)
            return 2
        run_in_terminal(names, count=args.count, seed=args.seed)
        return 0
    from exercises.kit.update import UpdateError, update_course

    try:
        report = update_course(Path(args.release), args.into, dry_run=args.dry_run)
    except UpdateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
