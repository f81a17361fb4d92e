"""A real JupyterLab driven by Debian's Chromium, started exactly as the README starts it.

A learner's loop, twice: on a copy of the checkout as a fresh clone holds it, started with the README's
`make lab`, and on the unzipped learner release, started with its README's `python -m exercises lab`.
In each, the browser opens what the server opens (chapter 0), runs the notebook and sees the check fail
on the untouched stub, goes to `exercises/layers.py` through JupyterLab's file browser, types an
implementation in JupyterLab's editor, saves, runs the check cell again and sees every line pass. A
learner sees no instructor menu and no nbgrader "Validate" button; an instructor's plain `jupyter lab`
keeps nbgrader's formgrader. Screenshots go to build/test-artifacts/.

The one stand-in: each copy uses this test's Python environment instead of installing itself into a
new one (`pip install -e .`): `PYTHONPATH` points at the copy, as an editable install would, and `make`
is told where that environment is (`VENV=`), after checking it would install nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from grading import PROJECT_ROOT
from grading.release import build_release
from tests.conftest import TEST_SOURCE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is installed by `make test`")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by .ci/run")
ARTIFACTS = PROJECT_ROOT / "build" / "test-artifacts"
TOKEN = "course-browser-test"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IMPLEMENTATION = '''

def relu_forward(x):
    out = torch.where(x > 0, x, torch.zeros_like(x))
    return out, x


def relu_backward(dout, cache):
    return torch.where(cache > 0, dout, torch.zeros_like(dout))
'''


@dataclass
class Lab:
    url: str  # what the server asks the browser to open
    process: subprocess.Popen[bytes]
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], cwd: Path, home: Path, opens_a_file: bool = True) -> Lab:
    """Start JupyterLab with ``command`` in ``cwd``; the URL is the one the server writes for the browser
    to open (``jpserver-file-to-run-*-open.html`` when it opens a file), as a learner's browser would be sent."""
    runtime = home / "runtime"
    env = {**os.environ, "PYTHONPATH": str(cwd), "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(runtime), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    env.pop("COURSE_PROGRESS_FILE", None)  # the learner's progress file lives beside their copy
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    log = home / "lab.log"
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        opened = sorted(runtime.glob("jpserver-file-to-run-*-open.html" if opens_a_file else "jpserver-*-open.html"))
        if opened:
            match = re.search(r'url=([^"]+)"', opened[0].read_text())
            if match:
                return Lab(match.group(1), process, log)
        time.sleep(0.5)
    _stop(process)
    pytest.fail(f"JupyterLab did not start with {command}:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        os.killpg(process.pid, 9)


def _fresh_clone(dest: Path) -> Path:
    """The files a fresh clone of this checkout holds (tracked, plus new files not ignored), mtimes kept."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT_ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = PROJECT_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def make_lab(tmp_path_factory):
    """`make lab`, in a fresh clone."""
    clone = _fresh_clone(tmp_path_factory.mktemp("clone"))
    venv = f"VENV={sys.prefix}"
    stamp = subprocess.run(["make", "-q", venv, f"{sys.prefix}/.installed-learner"], cwd=clone)
    if stamp.returncode != 0:
        pytest.fail(f"`make lab` would install into {sys.prefix} again (run `make setup` first)")
    lab = _start(["make", "lab", venv, f"LAB_ARGS=--no-browser --port={_free_port()} --IdentityProvider.token={TOKEN}"],
                 clone, tmp_path_factory.mktemp("home"))
    yield clone, lab
    _stop(lab.process)


@pytest.fixture(scope="module")
def release_lab(tmp_path_factory):
    """The learner release as instructors hand it out (the zip), unzipped, and its README's command."""
    built = build_release(tmp_path_factory.mktemp("dist") / "learner-release", repository=TEST_SOURCE)
    unzipped = tmp_path_factory.mktemp("learner")
    with zipfile.ZipFile(built.with_suffix(".zip")) as z:
        z.extractall(unzipped)
    root = unzipped / built.name
    readme = (root / "README.md").read_text()
    assert "python -m exercises lab" in readme
    lab = _start([sys.executable, "-m", "exercises", "lab", "--no-browser", f"--port={_free_port()}",
                  f"--IdentityProvider.token={TOKEN}"], root, tmp_path_factory.mktemp("home"))
    yield root, lab
    _stop(lab.process)


def _menu(page, menu: str, item: str):
    page.locator(".lm-MenuBar-itemLabel").get_by_text(menu, exact=True).click()
    return page.locator(".lm-Menu-itemLabel").get_by_text(item, exact=True)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _learner_loop(browser, root: Path, lab: Lab, name: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        assert "/lab/tree/course/00_welcome.ipynb" in lab.url, lab.url  # it opens on chapter 0
        page.goto(lab.url)
        page.locator(".jp-Notebook").first.wait_for(timeout=90_000)
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
        # A learner's tools only: no instructor menu, no nbgrader Validate button.
        page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.wait_for(timeout=30_000)
        assert page.locator(".lm-MenuBar-itemLabel").get_by_text("Nbgrader", exact=True).count() == 0
        assert page.locator(".jp-Toolbar").get_by_text("Validate", exact=True).count() == 0
        _menu(page, "Run", "Run All Cells").click()
        check_cell = page.locator(".jp-CodeCell").filter(has=page.locator(".jp-InputArea", has_text='check("relu")'))
        check_cell.locator(".jp-OutputArea-output").get_by_text("relu_forward is not implemented yet").first.wait_for(
            timeout=120_000)
        _shot(page, f"{name}-1-stub-fails")
        # The exercise file, through the file browser: exercises/ is inside the served folder.
        page.locator(".jp-BreadCrumbs-home").first.click()
        page.locator(".jp-DirListing-item", has_text="exercises").first.dblclick()
        page.locator(".jp-DirListing-item", has_text="layers.py").first.dblclick()
        editor = page.locator(".jp-FileEditor .cm-content").first
        editor.wait_for(timeout=30_000)
        editor.click()
        page.keyboard.press("Control+End")
        page.keyboard.insert_text(IMPLEMENTATION)
        page.keyboard.press("Control+s")
        layers = root / "exercises" / "layers.py"
        deadline = time.monotonic() + 30
        while "def relu_backward(dout, cache):\n    return torch.where" not in layers.read_text():
            assert time.monotonic() < deadline, "the editor's save never reached exercises/layers.py"
            time.sleep(0.3)
        _shot(page, f"{name}-2-edited-in-the-browser")
        # Back to the notebook: run the check cell again.
        page.locator(".lm-TabBar-tab", has_text="00_welcome.ipynb").first.click()
        check_cell.locator(".jp-InputArea .cm-content").first.click()
        page.keyboard.press("Shift+Enter")
        outputs = check_cell.locator(".jp-OutputArea-output")
        outputs.get_by_text("All properties of 'relu' hold").wait_for(timeout=120_000)
        text = outputs.all_inner_texts()
        lines = [ln.strip() for t in text for ln in t.splitlines() if ln.strip().startswith(("✓", "✗"))]
        assert len(lines) >= 5 and all(ln.startswith("✓") for ln in lines), lines
        assert check_cell.locator(".jp-OutputArea-executeResult").count() == 0  # no stray "True" under it
        check_cell.scroll_into_view_if_needed()
        _shot(page, f"{name}-3-check-passes")
    finally:
        page.close()


def test_make_lab_in_a_fresh_clone_the_learner_edits_and_passes(browser, make_lab) -> None:
    clone, lab = make_lab
    _learner_loop(browser, clone, lab, "clone")


def test_the_unzipped_learner_release_the_learner_edits_and_passes(browser, release_lab) -> None:
    root, lab = release_lab
    _learner_loop(browser, root, lab, "release")


def test_the_instructors_jupyterlab_keeps_the_formgrader(browser, tmp_path) -> None:
    """`make setup` installs nbgrader; an instructor's own `jupyter lab` shows its tools."""
    lab = _start([sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={_free_port()}",
                  f"--IdentityProvider.token={TOKEN}", "--allow-root"], PROJECT_ROOT, tmp_path, opens_a_file=False)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(lab.url)
        page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").first.wait_for(timeout=90_000)
        _menu(page, "Nbgrader", "Formgrader").wait_for(timeout=10_000)
        _shot(page, "instructor-nbgrader-menu")
    finally:
        page.close()
        _stop(lab.process)
