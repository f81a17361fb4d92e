"""The sandbox's filesystem is an allow-list, and a group of tests shares a process but never its state.

Copies of the hidden tests and the reference solutions are put where an instructor's second clone of
the course could lie (beside the checkout, under ``/opt`` and ``/srv``, on a mounted tmpfs, at a path
an environment variable names); learner code must find none of them, nor ``/etc/passwd``, the
grader's environment or any other process. Then the tests of one exercise run in one process, and
each must see the process as a fresh fork would: a later test never sees what an earlier one changed,
and a test that ends the process early costs only itself.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import torch

from exercises.checks import Mistake, Property
from exercises.checks.program import Program, StepFailed
from grading import PROJECT_ROOT
from grading.sandbox import Limits, Sandbox, SandboxFailure
from grading.submissions import Submission, stage
from grading.suite import HiddenTest, run_suite
from tests.conftest import REFERENCE_LAYERS, write_submission

HELPERS = REFERENCE_LAYERS + '''

_CALLS = []


def counter():
    """Module state: 1 in a fresh process, more if an earlier test's import survived."""
    _CALLS.append(1)
    return len(_CALLS)


def process_start():
    """When this process started (clock ticks since boot): equal in two tests that share a process."""
    return int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])


def probe(paths):
    import os
    found = {}
    for path in paths:
        try:
            found[path] = sorted(os.listdir(path)) if os.path.isdir(path) else open(path, "rb").read(32).hex()
        except OSError as exc:
            found[path] = type(exc).__name__
    return found


def view(stop):
    """Every path of the filesystem as learner code sees it, but inside the folders named in ``stop``."""
    import os
    seen = []
    def visit(path, depth):
        try:
            names = os.listdir(path)
        except OSError:
            return
        for name in names:
            full = os.path.join(path, name)
            seen.append(full)
            if os.path.isdir(full) and not os.path.islink(full) and full not in stop and depth < 30:
                visit(full, depth + 1)
    visit("/", 0)
    return seen


def environment():
    import os
    return dict(os.environ)


def processes():
    import os
    return sorted(int(n) for n in os.listdir("/proc") if n.isdigit())


def observe():
    """The process-wide state a test could leave behind for the next one."""
    import os, random, signal, sys, warnings
    import numpy
    return {"dtype": str(torch.get_default_dtype()), "grad": torch.is_grad_enabled(),
            "torch_random": torch.rand(3).tolist(), "random": random.random(), "numpy": float(numpy.random.rand()),
            "numpy_err": numpy.geterr()["divide"], "cwd": os.getcwd(), "files": sorted(os.listdir(".")),
            "env": os.environ.get("LEFT_BEHIND"), "path": sys.path[-1],
            "sigusr1": str(signal.getsignal(signal.SIGUSR1)),
            "deterministic": torch.are_deterministic_algorithms_enabled(), "threads": torch.get_num_threads(),
            "warnings": len(warnings.filters), "recursion": sys.getrecursionlimit(), "umask": os.umask(0o022),
            "counter": counter()}


def mutate():
    """An untidy but honest test subject: it changes everything ``observe`` looks at, and leaves it so."""
    import os, random, signal, sys, warnings
    import numpy
    torch.set_default_dtype(torch.float64)
    torch.set_grad_enabled(False)
    torch.manual_seed(1234)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    random.seed(5)
    numpy.random.seed(6)
    numpy.seterr(divide="raise")
    open("left_behind.txt", "w").write("x")
    os.makedirs("sub/dir", exist_ok=True)
    os.environ["LEFT_BEHIND"] = "1"
    sys.path.append("/nowhere")
    signal.signal(signal.SIGUSR1, lambda *a: None)
    warnings.simplefilter("error")
    sys.setrecursionlimit(500)
    os.umask(0o077)
    os.chdir("sub")
    if os.fork() == 0:  # a child left running
        import time
        time.sleep(60)
        os._exit(0)
    return counter()


def leave_thread():
    import threading, time
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    return counter()


def patch_torch():
    torch.relu = lambda x: x
    return counter()


def hang():
    while True:
        pass


def crash():
    import os
    os._exit(3)


def segfault():
    import ctypes
    ctypes.string_at(0)


def hog():
    return bytearray(2**33)
'''


def _program(target: str, *args) -> Program:
    p = Program()
    return p.fetch(value=p.call(f"layers.{target}", *args))


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    root = stage(Submission("tester", Path("."), files={"layers.py": HELPERS.encode()}), tmp_path_factory.mktemp("s"))
    with Sandbox(root, Limits(timeout=3.0, memory_mb=512)) as sandbox:
        yield sandbox


def _full(sandbox: Sandbox) -> None:
    if not sandbox.record.get("full"):
        pytest.skip(f"this machine does not give the sandbox full isolation: {sandbox.isolation}")


# ----------------------------------------------------------------------------- the allow-list


def _mount_tmpfs(path: Path) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.mount(b"tmpfs", str(path).encode(), b"tmpfs", 0, b"size=4m") == 0


@pytest.fixture(scope="module")
def answer_copies(tmp_path_factory):
    """Copies of the hidden tests and the solutions in places other than the checkout; removed after."""
    tag = uuid.uuid4().hex[:8]
    places = {"sibling of the checkout": PROJECT_ROOT.parent / f".{PROJECT_ROOT.name}-answers-{tag}",
              "/opt": Path("/opt") / f"course-answers-{tag}", "/srv": Path("/srv") / f"course-answers-{tag}",
              "the grader's temporary folder": Path(tempfile.gettempdir()) / f"course-answers-{tag}"}
    mounted = tmp_path_factory.mktemp("mounted")
    if os.geteuid() == 0 and _mount_tmpfs(mounted):
        places["a mounted tmpfs"] = mounted / "answers"
    made = {}
    for where, path in places.items():
        try:
            skip = shutil.ignore_patterns("__py*")
            shutil.copytree(PROJECT_ROOT / "grading" / "hidden", path / "hidden", ignore=skip)
            shutil.copytree(PROJECT_ROOT / "solutions", path / "solutions", ignore=skip)
            made[where] = path
        except OSError:
            shutil.rmtree(path, ignore_errors=True)  # (not writable on this machine: that place is not tested)
    os.environ["COURSE_ANSWERS"] = str(made["the grader's temporary folder"])  # a path an environment variable names
    try:
        yield made
    finally:
        del os.environ["COURSE_ANSWERS"]
        for path in made.values():
            shutil.rmtree(path, ignore_errors=True)
        if "a mounted tmpfs" in made:
            ctypes.CDLL(None).umount2(str(mounted).encode(), 2)


def test_copies_of_the_answers_elsewhere_on_the_machine_are_unreadable_and_unlistable(box, answer_copies) -> None:
    _full(box)
    assert {"sibling of the checkout", "/opt", "/srv", "the grader's temporary folder"} <= set(answer_copies)
    targets = []
    for path in answer_copies.values():
        targets += [str(path), str(path / "hidden"), str(path / "hidden" / "layers.py"), str(path / "solutions"),
                    str(path / "solutions" / "layers.py"), str(path.parent)]
    targets += ["/proc/1/root" + str(p / "solutions" / "layers.py") for p in answer_copies.values()]
    found = _run(box, "probe", targets)
    for where, path in answer_copies.items():
        for inside in (path, path / "hidden" / "layers.py", path / "solutions" / "layers.py"):
            assert found[str(inside)] == "FileNotFoundError", (where, inside, found[str(inside)])
        parent = found[str(path.parent)]  # the folder holding the copy: absent, or without it
        assert parent == "FileNotFoundError" or path.name not in parent, (where, parent)
    assert "COURSE_ANSWERS" not in _run(box, "environment")


def test_nothing_but_the_allow_list_exists(box) -> None:
    _full(box)
    allowed = box.flags["view_paths"]
    fixed = {"/dev", "/proc", "/scratch", "/submission"}

    def permitted(path: str) -> bool:  # on the way to an allowed path, or in one, or one of the sandbox's own
        return (any(a == path or a.startswith(path + "/") or path.startswith(a + "/") for a in allowed)
                or any(path == f or path.startswith(f + "/") for f in fixed))

    seen = _run(box, "view", [*allowed, "/proc", "/dev", "/submission/exercises/checks", "/submission/exercises/kit"])
    assert "/submission/exercises/layers.py" in seen and "/dev" in seen and "/proc" in seen
    strays = [p for p in seen if not permitted(p)]
    assert not strays, strays[:20]
    assert not [p for p in seen if p.startswith("/etc") or p.startswith("/home") or p.startswith("/tmp")]
    assert not any(p.startswith(str(PROJECT_ROOT / "grading")) or p.startswith(str(PROJECT_ROOT / "solutions"))
                   for p in seen)
    for outside in ("/etc/passwd", "/etc/shadow", "/home", "/tmp", "/var", "/root/.bash_history", "/srv", "/opt",
                    str(PROJECT_ROOT / ".git"), str(PROJECT_ROOT / "README.md"), "/sys", "/run"):
        if not permitted(outside):
            assert _run(box, "probe", [outside])[outside] == "FileNotFoundError", outside
    assert sorted(_run(box, "probe", ["/dev"])["/dev"]) == sorted(
        ["fd", "full", "null", "random", "stderr", "stdin", "stdout", "urandom", "zero"])


def test_the_graders_environment_and_other_processes_are_invisible(box, monkeypatch) -> None:
    _full(box)
    monkeypatch.setenv("INSTRUCTOR_TOKEN", "s3cret-value")
    env = _run(box, "environment")
    assert "INSTRUCTOR_TOKEN" not in env and not any("s3cret" in v for v in env.values())
    assert set(env) <= {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED",
                        "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                        "OPENBLAS_L2_SIZE", "TORCHINDUCTOR_CACHE_DIR"}  # (the last one set by torch as it imports)
    assert _run(box, "processes") == [1]  # its own process, as init of its PID namespace: no one else's
    grader = f"/proc/{os.getpid()}/environ"
    assert _run(box, "probe", [grader])[grader] == "FileNotFoundError"


def test_the_submission_is_read_only(box) -> None:
    _full(box)
    p = Program()
    result = p.raises("builtins.open", "/submission/exercises/planted.py", "w")
    assert box.run(p.fetch(value=result))["value"]["raised"] == "OSError"


@pytest.mark.skipif(os.geteuid() != 0, reason="the view built as root, without a user namespace")
def test_root_without_user_namespaces_builds_the_same_view(tmp_path: Path) -> None:
    root = stage(Submission("tester", Path("."), files={"layers.py": HELPERS.encode()}), tmp_path)
    with Sandbox(root, Limits(timeout=3.0), user_namespace=False) as sandbox:
        if not sandbox.flags.get("view"):
            pytest.skip(f"no mount namespace here: {sandbox.isolation}")
        assert sandbox.record["full"], sandbox.isolation
        found = _run(sandbox, "probe", ["/etc/passwd", str(PROJECT_ROOT / "solutions" / "layers.py"), "/scratch"])
        assert found["/etc/passwd"] == found[str(PROJECT_ROOT / "solutions" / "layers.py")] == "FileNotFoundError"
        assert found["/scratch"] == []


def _run(sandbox: Sandbox, target: str, *args):
    return sandbox.run(_program(target, *args))["value"]


# ----------------------------------------------------------------------------- groups


def test_module_state_of_one_test_never_reaches_the_next_in_the_same_process(box) -> None:
    _full(box)
    before = dict(box.stats)
    outcomes = box.run_group([_program("process_start"), _program("counter"), _program("counter"),
                              _program("process_start")])
    assert box.stats["groups"] == before["groups"] + 1 and box.stats["ended_early"] == before["ended_early"]
    start, first, second, start_again = (o["value"] for o in outcomes)
    assert start == start_again  # one process ran them all ...
    assert first == second == 1  # ... and each test imported the learner's module afresh


def test_a_test_that_changes_the_process_leaves_the_next_one_a_fresh_state(box) -> None:
    _full(box)
    alone = _run(box, "observe")  # what a fresh fork shows
    endings = len(box.endings)
    outcomes = box.run_group([_program("observe"), _program("mutate"), _program("observe")])
    assert outcomes[1]["value"] == 1, outcomes[1]
    assert outcomes[0]["value"] == outcomes[2]["value"]
    assert len(box.endings) == endings  # (the group did not end: everything was put back)
    fresh = {k: v for k, v in alone.items() if k != "random"}  # (a fork reseeds Python's random module)
    assert {k: v for k, v in outcomes[2]["value"].items() if k != "random"} == fresh


@pytest.mark.parametrize("leftover, why", [("leave_thread", "a thread it started was still running"),
                                           ("patch_torch", "torch.relu was changed")])
def test_a_state_that_cannot_be_undone_ends_the_group_and_the_rest_run_alone(box, leftover, why) -> None:
    _full(box)
    outcomes = box.run_group([_program("counter"), _program(leftover), _program("counter"), _program("counter")])
    assert [o if o is None else o["value"] for o in outcomes] == [1, 1, None, None]
    assert box.endings[-1] == why


def _suite(names: list[str]) -> list[HiddenTest]:
    """Hidden tests of one exercise, each calling one helper: it passes when the helper returns 1."""

    def build(name: str):
        def judge(got):
            if got["value"] != 1:
                raise Mistake(f"{name} returned {got['value']}")
        return lambda: Property("relu_forward", name, _program(name), judge)

    return [HiddenTest("relu_forward", f"layers.t{i}_{name}", 1.0, build(name)) for i, name in enumerate(names)]


@pytest.mark.parametrize("fault, message, rerun", [("hang", "did not finish within 3 s", 3),
                                                    ("crash", "ended the process (exit code 3)", 3),
                                                    ("segfault", "crashed with signal 11", 3),
                                                    ("hog", "ran out of memory", 1)])
def test_a_fault_mid_group_costs_only_its_own_test(box, fault, message, rerun) -> None:
    """A hang (killed at its time limit), an exit or a crash ends the process: the faulty test runs again
    alone (the process had run others before it), then the rest, one process each. A failed allocation
    leaves the process usable: only that test runs again alone."""
    _full(box)
    tests = _suite(["counter", "counter", fault, "counter", "counter"])
    before = dict(box.stats)
    grouped = run_suite(box.run, tests, box.run_group)
    alone = run_suite(box.run, tests)  # one fork per test: the reference
    assert [r.passed for r in grouped] == [r.passed for r in alone] == [True, True, False, True, True]
    assert message in grouped[2].message and grouped[2].message == alone[2].message
    assert box.stats["groups"] == before["groups"] + 1
    assert box.stats["rerun"] - before["rerun"] == rerun


def test_a_fault_in_the_first_test_of_a_group_is_not_run_twice(box) -> None:
    _full(box)
    outcomes = box.run_group([_program("crash"), _program("counter")])
    assert isinstance(outcomes[0], SandboxFailure) and "exit code 3" in str(outcomes[0])
    assert outcomes[1] is None


def test_a_learner_error_is_an_ordinary_verdict_and_the_group_goes_on(box) -> None:
    _full(box)
    outcomes = box.run_group([_program("counter"), _program("no_such_function"), _program("counter")])
    assert outcomes[0]["value"] == outcomes[2]["value"] == 1
    assert isinstance(outcomes[1], StepFailed) and "has no 'no_such_function'" in outcomes[1].message


def test_the_suite_gives_the_same_verdicts_grouped_or_not(tmp_path: Path) -> None:
    from grading.suite import load_suite

    tests = load_suite("00_welcome")
    root = stage(Submission("ada", Path("."), files={"layers.py": HELPERS.encode()}), tmp_path)
    with Sandbox(root, Limits(timeout=5.0)) as grouped_box:
        grouped = run_suite(grouped_box.run, tests, grouped_box.run_group)
        stats = dict(grouped_box.stats)
    with Sandbox(root, Limits(timeout=5.0, group_forks=False)) as alone_box:
        alone = run_suite(alone_box.run, tests, alone_box.run_group)
    assert [(r.name, r.passed, r.message) for r in grouped] == [(r.name, r.passed, r.message) for r in alone]
    assert all(r.passed for r in grouped)
    if grouped_box.record.get("grouped"):
        assert stats["groups"] == 2 and stats["rerun"] == 0  # relu_forward's tests, relu_backward's


# ----------------------------------------------------------------------------- what grade says


def _grade(subs: Path, out: Path, *extra: str, refuse: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GRADE_SANDBOX_REFUSE": refuse}
    return subprocess.run([sys.executable, "-m", "grading", "grade", str(subs), "-o", str(out), "-q", "--timeout",
                           "5", "-a", "00_welcome", *extra], capture_output=True, text=True, timeout=300, env=env)


def test_every_record_says_which_mechanisms_were_in_force(tmp_path: Path) -> None:
    write_submission(tmp_path / "subs", "ada", REFERENCE_LAYERS)
    proc = _grade(tmp_path / "subs", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    record = json.loads((tmp_path / "out" / "results" / "ada.json").read_text())["isolation"]
    assert set(record["mechanisms"]) == {"filesystem", "network", "pid_namespace", "unprivileged", "locked",
                                         "process_limit", "limits"}
    assert record["full"] == all(record["mechanisms"].values())
    assert record["summary"] and record["in_force"]
    first = proc.stdout.splitlines()[0]
    assert first.startswith("warning: ") != record["full"]  # a warning comes first exactly when it is not full


def test_a_host_that_refuses_namespaces_gets_a_warning_first_and_require_isolation_refuses(tmp_path: Path) -> None:
    write_submission(tmp_path / "subs", "ada", REFERENCE_LAYERS)
    proc = _grade(tmp_path / "subs", tmp_path / "out", refuse="user,mount,network")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("warning: learner code is NOT fully isolated") and "allow-list filesystem" not in first
    assert "a mount namespace" in first and "network" in first
    record = json.loads((tmp_path / "out" / "results" / "ada.json").read_text())
    assert record["isolation"]["full"] is False and record["isolation"]["mechanisms"]["filesystem"] is False
    assert record["total"] == record["max"]  # it still grades, and says so
    refused = _grade(tmp_path / "subs", tmp_path / "out2", "--require-isolation", refuse="mount")
    assert refused.returncode == 3
    assert "refusing to grade (--require-isolation)" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "out2" / "results").exists()


def test_require_isolation_grades_where_isolation_is_full(tmp_path: Path) -> None:
    write_submission(tmp_path / "subs", "ada", REFERENCE_LAYERS)
    root = stage(Submission("probe", Path(".")), tmp_path / "probe", {})
    with Sandbox(root, Limits()) as sandbox:
        full = sandbox.record.get("full")
    proc = _grade(tmp_path / "subs", tmp_path / "out", "--require-isolation")
    assert proc.returncode == (0 if full else 3), proc.stderr
    assert (proc.returncode == 0) == (tmp_path / "out" / "grades.csv").exists()
    assert torch.__version__  # (the grader's own process is untouched by all this)
