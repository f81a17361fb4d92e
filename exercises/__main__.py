"""The learner's commands: ``python -m exercises lab`` opens the course in JupyterLab, ``python -m exercises
progress`` shows your progress, ``python -m exercises update NEW`` updates your copy to a newer release."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exercises", description="The course's learner tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lab", help="open the course in JupyterLab, on chapter 0 (arguments go to `jupyter lab`)",
                   add_help=False)
    sub.add_parser("progress", help="show which checks pass, your attempts, and what to practise next")
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
