"""The sandbox: plain-data round trips, and learner code that misbehaves in the ways that matter."""

from __future__ import annotations

import math
import os
import socket
import subprocess
from pathlib import Path

import pytest
import torch

from exercises.checks import evaluate
from exercises.checks.layers import relu_forward_values
from exercises.checks.program import Program, StepFailed
from exercises.checks.wire import Opaque
from grading.sandbox import Limits, Sandbox, SandboxFailure, decode_result, encode_program
from grading.submissions import Submission, stage
from tests.conftest import REFERENCE_LAYERS

ATTACKS = REFERENCE_LAYERS + '''

def probe_imports():
    import importlib
    found = {}
    for name in ("grading", "grading.hidden.layers", "solutions", "solutions.layers", "tests"):
        try:
            importlib.import_module(name)
            found[name] = True
        except ImportError:
            found[name] = False
    return found


def environment():
    import os
    return dict(os.environ)


def connect(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__


def allocate(gib):
    return torch.empty(int(gib * 2**30), dtype=torch.uint8).fill_(1).sum().item()


def flood(megabytes):
    import sys
    chunk = "x" * 1_000_000
    for _ in range(megabytes):
        print(chunk)
    sys.stderr.write("done\\n")
    return megabytes


def fill_disk(megabytes):
    written = 0
    try:
        with open("big.bin", "wb") as f:
            for _ in range(megabytes):
                f.write(b"\\0" * 2**20)
                f.flush()
                written += 1
    except OSError:
        pass
    return written


def forge():
    import os
    fake = b'{"status": "ok", "payload": "{\\\\"ok\\\\": true, \\\\"values\\\\": {}}"}\\n'
    for fd in range(0, 64):
        try:
            os.write(fd, fake)
        except OSError:
            pass
    return "tried"


def orphan():
    import ctypes, os, time
    if os.fork() == 0:  # (no program to exec exists in the sandbox: a child of its own)
        ctypes.CDLL(None).prctl(15, b"orphan-1234", 0, 0, 0)  # PR_SET_NAME
        time.sleep(1234.5)
        os._exit(0)
    return "spawned"


class AlwaysEqual:
    def __eq__(self, other):
        return True


class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True


def cheat_forward(x):
    return AlwaysEqual(), None


def liar_forward(x):
    return torch.full_like(x, 7.0).as_subclass(Liar), None


def patch_then_forward(x):
    torch.equal = lambda a, b: True
    torch.testing.assert_close = lambda *a, **k: None
    return torch.full_like(x, 7.0), None


def read_all(paths):
    import os
    found = {}
    for path in paths:
        try:
            found[path] = sorted(os.listdir(path)) if os.path.isdir(path) else \
open(path, "rb").read(64).decode("latin-1")
        except OSError as exc:
            found[path] = type(exc).__name__
    return found


def lift_masks(paths):
    """Try everything an unprivileged process may do to see under the masks, then read."""
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    tried = {"unshare": libc.unshare(0x10000000 | 0x00020000)}  # a user namespace of its own: all capabilities
    for path in paths:
        while path not in ("/", ""):
            tried[path] = (libc.umount2(path.encode(), 2), ctypes.get_errno())
            path = os.path.dirname(path)
    return tried, read_all(paths)


def processes():
    import os
    return {"pid": os.getpid(), "ppid": os.getppid(), \
"proc": sorted(int(n) for n in os.listdir("/proc") if n.isdigit()),
            "uid": os.getuid(),
            "capabilities": open("/proc/self/status").read().split("CapEff:")[1].split()[0]}


def fork_many(n):
    import os, time
    made = 0
    for _ in range(n):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            time.sleep(300)
            os._exit(0)
        made += 1
    return made


def leave_file(name):
    import os
    before = sorted(os.listdir("."))
    with open(name, "w") as f:
        f.write("left behind")
    return before
'''


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = stage(Submission("attacker", Path("."), files={"layers.py": ATTACKS.encode()}),
                 tmp_path_factory.mktemp("stage"))
    limits = Limits(timeout=5.0, memory_mb=512, max_file_mb=8)
    with Sandbox(root, limits, hide=(Path("grading").resolve(), Path("solutions").resolve(),
                                     Path("tests").resolve())) as box:
        yield box


def _call(box: Sandbox, target: str, *args):
    p = Program()
    return box.run(p.fetch(value=p.call(f"layers.{target}", *args)))["value"]


def test_plain_data_round_trips_exactly(sandbox: Sandbox) -> None:
    values = {
        "tensors": [torch.randn(3, 4), torch.randn(2, dtype=torch.float64), torch.arange(5),
                    torch.tensor([True, False]), torch.zeros(0, 3), torch.tensor(2.5),
                    torch.randn(3).to(torch.bfloat16), torch.randint(0, 255, (4,), dtype=torch.uint8)],
        "numbers": (1, -2**40, 0.1, float("nan"), float("inf"), -float("inf"), True, None),
        "text": "ünïcode ✓",
        "nested": {"a": [1, (2, {"b": 3})]},
    }
    p = Program()
    back = sandbox.run(p.fetch(value=p.put(values)))["value"]
    for a, b in zip(values["tensors"], back["tensors"], strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    assert back["numbers"][:3] == (1, -2**40, 0.1) and math.isnan(back["numbers"][3])
    assert back["numbers"][4:] == (float("inf"), -float("inf"), True, None)
    assert back["text"] == values["text"] and back["nested"] == {"a": [1, (2, {"b": 3})]}


@pytest.mark.parametrize("bad", [
    {"__tensor__": {"dtype": "float32", "shape": [3], "data": "AAAA"}},  # 3 bytes for 12
    {"__tensor__": {"dtype": "object", "shape": [1], "data": ""}},
    {"__tensor__": {"dtype": "float32", "shape": [-1], "data": ""}},
    {"__pickle__": "gASV"},
    {"__tuple__": [1], "extra": 2},
    {"__float__": "1e999"},
])
def test_malformed_results_are_rejected(bad) -> None:
    with pytest.raises(ValueError):
        decode_result(bad)


def test_opaque_objects_come_back_as_opaque(sandbox: Sandbox) -> None:
    p = Program()
    got = sandbox.run(p.fetch(value=p.call("layers.cheat_forward", p.put(torch.zeros(2)))))["value"]
    assert isinstance(got[0], Opaque) and got[0].type_name == "AlwaysEqual"
    assert encode_program(torch.tensor([1.0]))["__tensor__"]["dtype"] == "float32"


def test_instructor_packages_cannot_be_imported(sandbox: Sandbox) -> None:
    found = _call(sandbox, "probe_imports")
    assert found == {"grading": False, "grading.hidden.layers": False, "solutions": False,
                     "solutions.layers": False, "tests": False}


def test_environment_is_scrubbed(sandbox: Sandbox, monkeypatch) -> None:
    monkeypatch.setenv("INSTRUCTOR_SECRET", "hunter2")
    env = _call(sandbox, "environment")
    assert "INSTRUCTOR_SECRET" not in env and all("hunter2" not in v for v in env.values())
    assert env["HOME"] == env["TMPDIR"]


def test_no_network(sandbox: Sandbox) -> None:
    if "no network" not in sandbox.isolation:
        pytest.skip(f"network isolation unavailable on this machine: {sandbox.isolation}")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        assert _call(sandbox, "connect", server.getsockname()[1]) != "connected"
    finally:
        server.close()


def test_memory_bomb_fails_and_the_sandbox_goes_on(sandbox: Sandbox) -> None:
    with pytest.raises((StepFailed, SandboxFailure)):
        _call(sandbox, "allocate", 4.0)
    assert _call(sandbox, "allocate", 0.01) == int(0.01 * 2**30)


def test_output_flood_is_capped(sandbox: Sandbox) -> None:
    assert _call(sandbox, "flood", 40) == 40  # 40 MB printed, into a capped file


def test_disk_fill_is_capped(sandbox: Sandbox) -> None:
    assert _call(sandbox, "fill_disk", 100) <= 8


def test_forged_protocol_messages_change_nothing(sandbox: Sandbox) -> None:
    # Writing to every open file descriptor only garbles the learner's own result ...
    with pytest.raises(SandboxFailure, match="could not read"):
        _call(sandbox, "forge")
    # ... never the grader's channel: the next program runs normally.
    assert _call(sandbox, "probe_imports")["grading"] is False


def test_leftover_processes_are_killed(sandbox: Sandbox) -> None:
    assert _call(sandbox, "orphan") == "spawned"
    ps = subprocess.run(["ps", "-eo", "comm"], capture_output=True, text=True).stdout
    assert "orphan-1234" not in ps


def _judge(sandbox: Sandbox, forward: str) -> tuple[bool, str]:
    prop = relu_forward_values(torch.randn(4, 5))
    prop.program.steps[1]["target"] = f"layers.{forward}"  # the same property, on another function
    return evaluate(prop, sandbox.run)


def test_objects_that_claim_equality_do_not_pass(sandbox: Sandbox) -> None:
    assert _judge(sandbox, "cheat_forward") == (False, "relu_forward's out must be a torch.Tensor; got Opaque.")


def test_tensor_subclasses_are_judged_on_their_data(sandbox: Sandbox) -> None:
    passed, message = _judge(sandbox, "liar_forward")
    assert not passed and "differs from max(0, x)" in message


def test_monkeypatching_torch_in_the_child_does_not_reach_the_judge(sandbox: Sandbox) -> None:
    passed, message = _judge(sandbox, "patch_then_forward")
    assert not passed and "differs from max(0, x)" in message


def test_the_sandbox_process_has_its_own_session() -> None:
    assert os.getpgrp() == os.getpgid(0)  # the grader is not in the learner's process group


SECRETS = [str(Path(p).resolve())
           for p in ("grading/hidden/layers.py", "solutions/layers.py", ".git/HEAD", "tests/conftest.py")]


def test_hidden_tests_solutions_and_the_project_are_unreadable(sandbox: Sandbox) -> None:
    if "mount namespace" not in sandbox.isolation:
        pytest.skip(f"no mount namespace on this machine: {sandbox.isolation}")
    found = _call(sandbox, "read_all", SECRETS + [str(Path.cwd()), str(Path.home())])
    for path in SECRETS:
        assert found[path] == "FileNotFoundError", (path, found[path])
    assert found[str(Path.cwd())] in ("FileNotFoundError", [".venv"])  # the project: only the Python installation
    assert sandbox.flags["view"] and sandbox.record["mechanisms"]["filesystem"]


def test_the_masks_cannot_be_lifted_from_inside(sandbox: Sandbox) -> None:
    if "mount namespace" not in sandbox.isolation:
        pytest.skip(f"no mount namespace on this machine: {sandbox.isolation}")
    tried, found = _call(sandbox, "lift_masks", SECRETS)
    assert all(found[path] == "FileNotFoundError" for path in SECRETS), (tried, found)


def test_a_test_sees_only_its_own_processes_and_has_no_privileges(sandbox: Sandbox) -> None:
    seen = _call(sandbox, "processes")
    assert seen["capabilities"] == "0000000000000000"
    if "PID namespace" in sandbox.isolation:
        assert seen["pid"] == 1 and seen["ppid"] == 0 and seen["proc"] == [1]
        assert os.getpid() not in seen["proc"]


def test_a_fork_bomb_is_capped(sandbox: Sandbox) -> None:
    made = _call(sandbox, "fork_many", 200)
    if sandbox.flags.get("unprivileged_uid"):
        assert made < sandbox.limits.max_processes
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "fork_many" not in ps


def test_every_test_starts_in_a_fresh_working_folder(sandbox: Sandbox) -> None:
    assert _call(sandbox, "leave_file", "first.txt") == []
    assert _call(sandbox, "leave_file", "second.txt") == []


@pytest.mark.skipif(os.geteuid() != 0, reason="the fallback for root without user namespaces")
def test_without_user_namespaces_root_still_drops_to_an_unprivileged_uid(tmp_path: Path) -> None:
    root = stage(Submission("attacker", Path("."), files={"layers.py": ATTACKS.encode()}), tmp_path)
    with Sandbox(root, Limits(timeout=5.0, memory_mb=512), user_namespace=False) as box:
        assert "user namespaces" in box.isolation and "uid nobody" in box.isolation
        seen = _call(box, "processes")
        assert seen["uid"] == 65534 and seen["capabilities"] == "0000000000000000"
        found = _call(box, "read_all", SECRETS)
        assert all(found[p] in ("FileNotFoundError", "PermissionError") for p in SECRETS), found
        assert _call(box, "fork_many", 200) < box.limits.max_processes
