"""The instructor's side: stub generation, the learner release, the isolated grader.

Run ``python -m grading --help`` for the commands. Nothing in ``exercises`` or ``course`` imports
this package, so a learner release works without it.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
