"""Open the course in JupyterLab the way a learner works in it: ``python -m exercises lab``.

JupyterLab serves the whole course folder (the one that holds ``course/`` and ``exercises/``), so the
file browser shows the notebooks *and* the exercise files you edit, and it opens on chapter 0. It
starts with a learner's tools only: the instructor's grading extensions (nbgrader's menus, its formgrader
and its "Validate" button, which knows nothing of this course's checks) are switched off for this
session, through the configuration folder ``exercises/kit/jupyter/``, without touching your own Jupyter
settings. An instructor who wants nbgrader's tools runs ``jupyter lab`` directly.

Any argument is passed on to ``jupyter lab`` (``--no-browser``, ``--port 8890``, ...).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from exercises.kit.catalogue import PACKAGE_DIR

COURSE_ROOT = PACKAGE_DIR.parent
FIRST_NOTEBOOK = "course/00_welcome.ipynb"
LEARNER_CONFIG = Path(__file__).with_name("jupyter")  # labconfig/page_config.json, jupyter_server_config.json


def lab_command(extra: list[str] | None = None, root: Path = COURSE_ROOT) -> list[str]:
    """The ``jupyter lab`` command line that serves ``root`` and opens chapter 0."""
    command = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in (extra or []):
        command.append("--allow-root")  # Colab, Docker and CI run as root
    return [*command, *(extra or []), str(root / FIRST_NOTEBOOK)]


def learner_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """``environ`` with the learner configuration first on Jupyter's configuration path."""
    env = dict(os.environ if environ is None else environ)
    rest = env.get("JUPYTER_CONFIG_PATH")
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(LEARNER_CONFIG), *([rest] if rest else [])])
    return env


def main(extra: list[str] | None = None) -> int:
    """Replace this process by JupyterLab (so that stopping it stops the server); return its exit code
    where the operating system cannot replace a process."""
    if importlib.util.find_spec("jupyterlab") is None:
        print("JupyterLab is not installed in this Python environment. Install the course first, from its "
              f"folder: `{Path(sys.executable).name} -m pip install -e .`", file=sys.stderr)
        return 2
    command, env = lab_command(extra), learner_environment()
    os.chdir(COURSE_ROOT)
    if os.name == "posix":
        os.execve(command[0], command, env)
    import subprocess

    return subprocess.call(command, env=env)
