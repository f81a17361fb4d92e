"""A real JupyterLab 4 server driven by a real headless Chromium: a learner runs chapter 0, and an
instructor finds nbgrader's formgrader. A screenshot is kept in build/test-artifacts/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from grading import PROJECT_ROOT
from grading.course_run import build_solved_tree

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is installed by `make test`")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is installed by .ci/run")
ARTIFACTS = PROJECT_ROOT / "build" / "test-artifacts"
TOKEN = "course-browser-test"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on localhost, serving a solved copy of the course (so chapter 0's check passes)."""
    root = build_solved_tree(tmp_path_factory.mktemp("lab"))
    home = tmp_path_factory.mktemp("home")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(root), "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "COURSE_PROGRESS_FILE": str(home / "p.json")}
    bin_dir = Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    log = (home / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}", "--allow-root"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("JupyterLab did not start:\n" + (home / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield url
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def page(lab):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        browser.close()


def _menu(page, menu: str, item: str):
    """Open ``menu`` in JupyterLab's menu bar and return its entry ``item``."""
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.wait_for(timeout=60_000)
    page.locator(".lm-MenuBar-itemLabel").get_by_text(menu, exact=True).click()
    return page.locator(".lm-Menu-itemLabel").get_by_text(item, exact=True)


def test_learner_runs_chapter_0_and_sees_the_check_pass(lab, page) -> None:
    page.goto(f"{lab}/lab/tree/course/00_welcome.ipynb?token={TOKEN}")
    page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
    _menu(page, "Run", "Run All Cells").click()
    result = page.locator(".jp-OutputArea-output").get_by_text("All properties of 'relu' hold")
    result.wait_for(timeout=120_000)
    result.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-chapter0.png"))
    assert page.locator(".jp-OutputArea-output").get_by_text("✓ relu_backward: the gradient where x == 0 is 0").count()
    assert page.locator(".jp-OutputArea-output [data-mime-type='application/vnd.jupyter.stderr']").filter(
        has_text="Traceback").count() == 0


def test_instructor_finds_the_formgrader(lab, page) -> None:
    page.goto(f"{lab}/lab?token={TOKEN}")
    _menu(page, "Nbgrader", "Formgrader").wait_for(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-nbgrader-menu.png"))
