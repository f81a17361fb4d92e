"""The attack-and-fault suite: learner code that misbehaves in every way the trust model names.

One batch of chapter 0 submissions, each the reference with one attack wrapped around an exercise,
graded together with a control learner. Every case must end with the right score for what still
works, a clear message, the batch going on, and nothing lost. Attacks are bounded so that even a
machine without the kernel features the sandbox uses would survive this file.
"""

from __future__ import annotations

import io
import json
import os
import socket
import time
import zipfile
from pathlib import Path

import pytest

from grading.grade import grade_batch
from grading.sandbox import Limits
from grading.suite import load_suite
from tests.conftest import REFERENCE_LAYERS, STUB_LAYERS

CHAPTER = "00_welcome"
LIMITS = Limits(timeout=3.0, memory_mb=1024)
HIDDEN_FILE = Path("grading/hidden/layers.py").resolve()
SOLUTION_FILE = Path("solutions/layers.py").resolve()


def _points(exercise: str) -> float:
    return sum(t.points for t in load_suite(CHAPTER) if t.exercise == exercise)


def wrap(function: str, before: str = "", result: str = "") -> str:
    """The reference, with ``before`` run at the start of ``function`` and, if given, ``result`` (an
    expression of ``value``, what the reference returned) returned instead."""
    body = "\n".join("    " + line for line in before.strip().splitlines()) if before.strip() else "    pass"
    ret = f"    value = _reference_{function}(*args, **kwargs)\n    return {result or 'value'}\n"
    return (REFERENCE_LAYERS + f"\n\n_reference_{function} = {function}\n\n\ndef {function}(*args, **kwargs):\n"
            f"{body}\n{ret}")


def at_import(code: str) -> str:
    return REFERENCE_LAYERS + "\n\n" + code.strip() + "\n"


def _folder(root: Path, learner: str, layers: str | bytes) -> None:
    package = root / learner / "exercises"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_bytes(layers.encode() if isinstance(layers, str) else layers)


def _zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, target)


@pytest.fixture(scope="module")
def server():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, server):
    root = tmp_path_factory.mktemp("attack-submissions")
    out = tmp_path_factory.mktemp("attack-out")
    other = root / "ada"
    reads = f"""
import os
def _peek(path):
    try:
        with open(path, "rb") as f:
            return len(f.read()) > 0
    except OSError:
        return False
_LEAKED = any(_peek(p) for p in {[str(HIDDEN_FILE), str(SOLUTION_FILE), str(other / 'exercises' / 'layers.py'),
                                 str(out / 'results' / 'ada.json'), str(Path('.git/HEAD').resolve())]!r})
_LEAKED = _LEAKED or any(os.path.exists(f"/proc/{{pid}}/cwd/grading") for pid in range(1, 200) if pid != os.getpid())
"""
    learners: dict[str, str | bytes] = {
        "ada": REFERENCE_LAYERS,  # the control: full marks whatever the others do
        "stubs": STUB_LAYERS,
        "wrong_values": wrap("relu_forward", result="(value[0] - 1, value[1])"),  # an honest mistake, the twin
        "loop_ignoring_sigint": wrap("relu_backward", "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                                      "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                                      "while True:\n    pass"),
        "memory_bomb": wrap("relu_backward", "hog = [bytearray(2**33) for _ in range(64)]"),
        "fork_bomb": wrap("relu_backward", "import os, time\nfor _ in range(300):\n    try:\n        pid = os.fork()\n"
                                           "    except OSError:\n        break\n    if pid == 0:\n"
                                           "        time.sleep(600)\n        os._exit(0)"),
        "flood": wrap("relu_forward", "import sys\nfor _ in range(30):\n    print('x' * 1_000_000)\n"
                                      "sys.stderr.write('y' * 1_000_000)"),
        "disk_fill": wrap("relu_forward", "try:\n    with open('fill.bin', 'wb') as f:\n        for _ in range(200):\n"
                                          "            f.write(b'0' * 2**20)\n            f.flush()\n"
                                          "except OSError:\n    pass"),
        "exit_at_import": at_import("import sys\nsys.exit(0)"),
        "os_exit_at_import": at_import("import os\nos._exit(0)"),
        "systemexit_at_import": at_import("raise SystemExit(3)"),
        "keyboardinterrupt_at_import": at_import("raise KeyboardInterrupt"),
        "exit_in_function": wrap("relu_backward", "import sys\nsys.exit(0)"),
        "os_exit_in_function": wrap("relu_backward", "import os\nos._exit(0)"),
        "keyboardinterrupt_in_function": wrap("relu_backward", "raise KeyboardInterrupt"),
        "patcher": at_import("""
import builtins, numpy, numpy.testing, torch, torch.testing
torch.testing.assert_close = lambda *a, **k: None
numpy.testing.assert_allclose = lambda *a, **k: None
torch.equal = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
torch.isclose = lambda a, b, **k: torch.ones_like(a, dtype=torch.bool)
builtins.all = lambda *a: True
import exercises.checks as _checks
_checks.evaluate = lambda prop, run: (True, "")
import sys
_child = sys.modules.get("__main__")
""") + wrap("relu_forward", result="(value[0] * 7 + 1, value[1])").removeprefix(REFERENCE_LAYERS),
        "grader_patcher": at_import("""
import sys
_main = sys.modules["__main__"]
import exercises.checks.program as _program
import exercises.checks.wire as _wire
for _module in (_main, _wire):
    _module.encode = lambda value, *a, **k: {"__dict__": {"result": {"__tuple__": [1, 2]}}}
_program.run_program = lambda *a, **k: {"result": (1, 2)}
"""),
        "always_equal": wrap("relu_forward", "class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n"
                                             "    __hash__ = object.__hash__",
                             result="(AlwaysEqual(), value[1])"),
        "liar_tensor": wrap("relu_forward", "class Liar(torch.Tensor):\n    @classmethod\n"
                                            "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
                                            "        return True",
                            result="((value[0] + 5).as_subclass(Liar), value[1])"),
        "nan": wrap("relu_forward", result="(value[0] * float('nan'), value[1])"),
        "infinity": wrap("relu_forward", result="(value[0] + float('inf'), value[1])"),
        "reader": at_import(reads) + wrap("relu_forward", result="value if _LEAKED else (value[0] - 1, value[1])")
        .removeprefix(REFERENCE_LAYERS),
        "network": wrap("relu_forward", f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {server}), "
                                        "timeout=1).close()\n    _ok = True\nexcept OSError:\n    _ok = False",
                        result="value if _ok else (value[0] - 1, value[1])"),
        "planter": at_import(f"""
import json, os
for name in ("planter", "ada"):
    fake = {{"learner": name, "key": "forged", "total": 999, "max": 8}}
    for path in ({str(out / 'results')!r} + "/" + name + ".json", {str(out)!r} + "/grades.csv"):
        try:
            with open(path, "w") as f:
                json.dump(fake, f)
        except OSError:
            pass
""") .replace(REFERENCE_LAYERS, STUB_LAYERS),
        "null_bytes": REFERENCE_LAYERS.replace("def relu_forward", "\0def relu_forward", 1),
        "invalid_utf8": REFERENCE_LAYERS.encode() + b"\n_greeting = 'caf\xe9'\n",
        "misspelled": REFERENCE_LAYERS.replace("def relu_backward(", "def relu_backwrd(", 1),
    }
    for learner, source in learners.items():
        _folder(root, learner, source)
    (root / "missing_module" / "exercises").mkdir(parents=True)
    (root / "missing_module" / "exercises" / "__init__.py").write_text("")
    layers = REFERENCE_LAYERS.encode()
    _zip(root / "zip_slip.zip", {"../../escaped.py": b"print('escaped')", "/abs/escaped.py": b"x = 1",
                                 "exercises/__init__.py": b"", "exercises/layers.py": layers})
    _zip(root / "zip_links.zip", {"exercises/__init__.py": b""}, links={"exercises/layers.py": str(SOLUTION_FILE)})
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("exercises/__init__.py", b"")
        z.writestr("exercises/layers.py", layers + b"#" * (64 << 20))  # 64 MiB of padding: a few KiB zipped
    (root / "zip_bomb.zip").write_bytes(bomb.getvalue())
    inner = io.BytesIO()
    _zip(inner, {"exercises/__init__.py": b"", "exercises/layers.py": layers})
    _zip(root / "nested_archive.zip", {"submission.zip": inner.getvalue()})
    (root / "not_a_zip.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    report = grade_batch(root, out, jobs=2, limits=LIMITS, progress=False, assignment=CHAPTER)
    records = {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}
    return root, out, report, records


def _score(records, learner: str, exercise: str | None = None) -> float:
    record = records[learner]
    return record["total"] if exercise is None else record["exercises"][exercise]["score"]


def _messages(records, learner: str, exercise: str) -> list[str]:
    return [t["message"] for t in records[learner]["tests"] if t["exercise"] == exercise and not t["passed"]]


def _feedback(out: Path, learner: str) -> str:
    return (out / "feedback" / f"{learner}.md").read_text()


FULL = "full"
TWIN = "like wrong_values"  # the score of an honest learner whose relu_forward returns wrong values


@pytest.mark.parametrize("learner, forward, backward, message", [
    ("ada", FULL, FULL, None),
    ("stubs", 0, 0, "not implemented yet"),
    ("loop_ignoring_sigint", FULL, 0, "relu_backward did not finish within 3 s"),
    ("memory_bomb", FULL, 0, "memory"),
    ("flood", FULL, FULL, None),
    ("disk_fill", FULL, FULL, None),
    ("exit_at_import", 0, 0, "importing exercises/layers.py failed with SystemExit"),
    ("systemexit_at_import", 0, 0, "importing exercises/layers.py failed with SystemExit"),
    ("os_exit_at_import", 0, 0, "ended the process (exit code 0) before returning"),
    ("keyboardinterrupt_at_import", 0, 0, "KeyboardInterrupt"),
    ("exit_in_function", FULL, 0, "relu_backward raised SystemExit: an exercise must return its result, never exit"),
    ("os_exit_in_function", FULL, 0, "ended the process (exit code 0) before returning"),
    ("keyboardinterrupt_in_function", FULL, 0, "raised KeyboardInterrupt"),
    ("wrong_values", TWIN, FULL, "differs from max(0, x)"),
    ("patcher", TWIN, FULL, "differs from max(0, x)"),
    ("grader_patcher", FULL, FULL, None),  # its patches change nothing: its own (reference) code is graded
    ("always_equal", TWIN, FULL, "must be a torch.Tensor; got Opaque"),
    ("liar_tensor", TWIN, FULL, "differs from max(0, x)"),
    ("nan", TWIN, FULL, "differs from max(0, x)"),
    ("infinity", TWIN, FULL, "differs from max(0, x)"),
    ("reader", TWIN, FULL, "differs from max(0, x)"),
    ("network", TWIN, FULL, "differs from max(0, x)"),
    ("misspelled", FULL, 0, "has no 'relu_backward'"),
    ("null_bytes", 0, 0, "null bytes"),
    ("invalid_utf8", 0, 0, "syntax error"),
    ("missing_module", 0, 0, "missing from the submission: exercises/layers.py"),
    ("zip_slip", FULL, FULL, None),
    ("zip_links", 0, 0, "missing from the submission: exercises/layers.py"),
    ("zip_bomb", 0, 0, "missing from the submission: exercises/layers.py"),
    ("nested_archive", FULL, FULL, None),
    ("not_a_zip", 0, 0, None),
])
def test_each_attack_scores_what_still_works_with_a_clear_message(batch, learner, forward, backward, message) -> None:
    _, _, report, records = batch
    needs = {"reader": "mount namespace", "network": "no network"}.get(learner)
    if needs and needs not in report.isolation:
        pytest.skip(f"this machine's kernel does not give the sandbox a {needs}: {report.isolation}")
    for exercise, expected in (("relu_forward", forward), ("relu_backward", backward)):
        want = {FULL: _points(exercise), TWIN: _score(records, "wrong_values", exercise)}.get(expected, expected)
        assert _score(records, learner, exercise) == want, (learner, exercise, records[learner]["tests"])
    if forward == TWIN:  # the same properties fail as for the honest mistake, no more, no fewer
        assert 0 < _score(records, learner, "relu_forward") < _points("relu_forward")
        assert ([t["passed"] for t in records[learner]["tests"]]
                == [t["passed"] for t in records["wrong_values"]["tests"]])
    if message:
        failed = [m for e in ("relu_forward", "relu_backward") for m in _messages(records, learner, e)]
        assert any(message in m for m in failed), (learner, failed)


def test_the_batch_goes_on_and_nothing_is_lost(batch) -> None:
    root, out, report, records = batch
    learners = {p.name.removesuffix(".zip") for p in root.iterdir()}
    assert set(records) == learners and sorted(report.graded) == sorted(learners)
    rows = (out / "grades.csv").read_text().splitlines()
    assert rows[0].split(",") == ["learner", "relu_forward", "relu_backward", "total", "max", "notes"]
    assert len(rows) == 1 + len(learners)
    for learner in learners:
        assert (out / "feedback" / f"{learner}.md").exists() and (out / "feedback" / f"{learner}.html").exists()
        assert (out / "gradescope" / learner / "results.json").exists()


def test_a_planted_results_file_changes_nothing(batch) -> None:
    _, out, _, records = batch
    assert records["planter"]["total"] == 0 and records["planter"]["key"] != "forged"
    assert records["ada"]["total"] == records["ada"]["max"] > 0
    assert "999" not in (out / "grades.csv").read_text()


def test_unreadable_sources_say_why_in_the_feedback(batch) -> None:
    _, out, _, _ = batch
    assert "contains null bytes" in _feedback(out, "null_bytes")
    assert "is not valid UTF-8 (line" in _feedback(out, "invalid_utf8")


def test_archives_are_read_safely(batch) -> None:
    root, out, _, _ = batch
    assert not (root.parent / "escaped.py").exists() and not Path("/abs/escaped.py").exists()
    slip = _feedback(out, "zip_slip")
    assert "unsafe path in the zip" in slip
    assert "a link, not a file" in _feedback(out, "zip_links")
    assert "over its size limits" in _feedback(out, "zip_bomb")
    assert "not a readable zip file" in _feedback(out, "not_a_zip")


def test_printed_output_and_hidden_inputs_never_reach_feedback(batch) -> None:
    _, out, _, _ = batch
    assert "xxxxxxxxxx" not in _feedback(out, "flood")
    hidden = HIDDEN_FILE.read_text()
    for path in (out / "feedback").glob("*"):
        text = path.read_text()
        assert "tensor(" not in text and "seed=" not in text
        for line in hidden.splitlines():
            if len(line.strip()) > 30:
                assert line.strip() not in text, (path.name, line)


def _sandbox_processes() -> dict[int, int]:
    """``{pid: parent pid}`` of every live process started from ``sandbox_child.py``: the fork
    server, its zygotes, and whatever learner code forked (they all share the server's command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"sandbox_child.py" in (entry / "cmdline").read_bytes():
                found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            pass  # it ended while we looked
    return found


def test_no_process_outlives_the_batch(batch) -> None:
    # Only this process's fork server may remain (it serves the next batch). Killed processes take a
    # moment to go, so wait a little before calling anything a survivor.
    deadline = time.monotonic() + 15
    while (strays := {pid for pid, parent in _sandbox_processes().items() if parent != os.getpid()}) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not strays, f"sandbox processes still running after the batch (pids {sorted(strays)})"


def test_the_isolation_report_names_what_is_in_force(batch) -> None:
    _, _, report, records = batch
    text = report.isolation
    assert "a time, CPU, memory, file-size and output limit per test" in text
    if "user namespace" in text:
        assert "filesystem is an allow-list" in text and "PID namespace per test" in text
    for learner, record in records.items():  # every record says what was in force when it was graded
        if record["ungraded"]:  # nothing of it could be run: no sandbox, nothing to record
            assert record["isolation"] == {}, learner
            continue
        assert record["isolation"]["mechanisms"] == report.isolation_record["mechanisms"], learner
        assert record["isolation"]["grouped"] == report.isolation_record["grouped"]
    assert os.path.exists(HIDDEN_FILE)  # (the grader itself still sees everything)
