"""Google Colab support: where the course lives, and the set-up its notebooks' first cell runs.

``REPOSITORY`` is the one place the course's address is written; every notebook's "Open in Colab"
badge and set-up cell are generated from it (``python -m grading notebooks``; a test fails when a
notebook is out of date).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = "https://github.com/deep-practice/deep-practice"
BRANCH = "main"
FOLDER_NAME = "deep-practice"
# Import names the course needs beyond what Colab preinstalls, with their pip names. Installed
# with --no-deps, so nothing Colab already has (torch above all) is ever replaced.
NEEDED = {"mlxtend": "mlxtend", "tqdm": "tqdm"}


def colab_badge(notebook: str) -> str:
    """Markdown for the "Open in Colab" badge of ``course/<notebook>``."""
    path = REPOSITORY.removeprefix("https://github.com/")
    url = f"https://colab.research.google.com/github/{path}/blob/{BRANCH}/course/{notebook}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


SETUP_CELL = f'''\
# Set-up: run this cell first. It is safe to re-run, and does nothing outside Google Colab.
# On Colab it fetches the course (into your Google Drive, so a disconnect loses nothing),
# installs what is missing without replacing Colab's own torch, and checks for a GPU.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    KEEP_IN_DRIVE = True  # False keeps your work on the Colab machine only: lost when it disconnects
    base = os.environ.get("COURSE_COLAB_ROOT", "/content")
    if KEEP_IN_DRIVE:
        from google.colab import drive

        drive.mount(os.path.join(base, "drive"))
    home = os.path.join(base, "drive/MyDrive" if KEEP_IN_DRIVE else "", "{FOLDER_NAME}")
    if not os.path.isdir(os.path.join(home, "exercises")):
        subprocess.run(["git", "clone", "--depth", "1", "{REPOSITORY}", home],
                       check=True)
    if home not in sys.path:
        sys.path.insert(0, home)
    from exercises.kit.colab import setup_colab

    setup_colab(home)'''


def missing_packages() -> list[str]:
    """pip names of the needed packages that cannot be imported here."""
    return [pip for module, pip in NEEDED.items() if importlib.util.find_spec(module) is None]


def setup_colab(home: str | Path) -> None:
    """Finish the Colab set-up: install what is missing (never torch), work in the course folder,
    and say clearly whether a GPU is attached. Safe to call again."""
    missing = missing_packages()
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *missing], check=True)
    os.chdir(Path(home) / "course")
    import torch

    if torch.cuda.is_available():
        print(f"Course ready in {home}. GPU: {torch.cuda.get_device_name(0)}.")
    else:
        print(f"Course ready in {home}.\n"
              "WARNING: no GPU is attached. Chapters 0-3 run fine on the CPU; for chapter 4 choose "
              "Runtime > Change runtime type > T4 GPU, then run this notebook again from the top.")
