"""The grader's side of the sandbox: start the child, send programs, read back plain data.

See ``sandbox_child.py`` for what happens on the other side. One ``Sandbox`` serves one
submission: a fresh interpreter imports torch once, and every program then runs in a fork of it
with limits on time, CPU, memory, file size and output. Whatever the learner's code does, ``run``
returns the fetched values or raises ``StepFailed`` (their code raised) or ``SandboxFailure`` (it
hung, crashed, exited, or returned something unreadable). ``run_group`` runs several programs in
one fork, one after the other, and says which verdicts it cannot vouch for (``None``): those are
for ``run``, one fork each.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exercises.checks import wire
from exercises.checks.program import Program, Ref, StepFailed
from grading import PROJECT_ROOT

CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")


class SandboxFailure(Exception):
    """The learner's process gave no usable answer; the message says why, for the learner.

    ``timed_out_target`` names the call that was running when a time limit struck, if known.
    """

    def __init__(self, message: str, timed_out_target: str | None = None) -> None:
        super().__init__(message)
        self.timed_out_target = timed_out_target


@dataclass
class Limits:
    timeout: float = 10.0  # seconds of wall time per program
    memory_mb: int = 2048  # address space a program may add on top of the imported torch
    max_result_mb: int = 64
    max_file_mb: int = 16
    max_processes: int = 64  # processes and threads a test may have at once (where the kernel enforces it)
    scratch_mb: int = 64  # size of each test's writable scratch folder (a tmpfs)
    startup_timeout: float = 120.0
    group_forks: bool = True  # the tests of one exercise in one fork (``Sandbox.run_group``)


def encode_program(value: Any) -> Any:
    """Plain JSON data for a program's arguments (``exercises.checks.wire``)."""
    return wire.encode(value, ref_type=Ref)


def decode_result(value: Any) -> Any:
    """Strictly decode what the learner's process sent; anything unexpected raises ``ValueError``."""
    return wire.decode(value)


def _scrubbed_env(workdir: str) -> dict[str, str]:
    env = {
        "PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # needed by OpenBLAS on some CPUs
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _package_dir(name: str) -> Path | None:
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return Path(module.__file__).resolve().parent if getattr(module, "__file__", None) else None


def default_hidden() -> list[Path]:
    """The instructor's code: never importable from, nor visible to, learner code."""
    paths = {PROJECT_ROOT / "grading", PROJECT_ROOT / "solutions", PROJECT_ROOT / "tests",
             Path(__file__).resolve().parent}
    solutions_dir = _package_dir("solutions")
    if solutions_dir is not None:
        paths.add(solutions_dir)
    return sorted(paths)


REFUSE_ENV = "GRADE_SANDBOX_REFUSE"  # e.g. "user,mount": do without these, as a host that refuses them would


def refused_mechanisms() -> tuple[str, ...]:
    """Mechanisms the sandbox is told to do without (``user``, ``mount``, ``network``), from the
    ``GRADE_SANDBOX_REFUSE`` environment variable: to see, on a host that has them, what ``grade``
    says and does on one that has not."""
    return tuple(sorted({m.strip() for m in os.environ.get(REFUSE_ENV, "").split(",") if m.strip()}))


@dataclass
class _Zygote:
    pid: int
    pidfd: int
    stdin: int
    stdout: int
    stderr: Any

    def alive(self) -> bool:
        ready, _, _ = select.select([self.pidfd], [], [], 0)
        return not ready

    def kill(self, grace: float = 1.0) -> None:
        """End the zygote: end of input first (it cleans up and exits), then SIGKILL."""
        for fd in (self.stdin, self.stdout):
            try:
                os.close(fd)
            except OSError:
                pass
        select.select([self.pidfd], [], [], grace)
        try:
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        except OSError:
            pass
        os.close(self.pidfd)
        self.stderr.close()


class ForkServer:
    """One interpreter that imports torch once and forks a zygote per submission (see
    ``sandbox_child.py``). Shared by every ``Sandbox`` of this process; safe to use from threads."""

    def __init__(self, startup_timeout: float = 120.0) -> None:
        self.startup_timeout = startup_timeout
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._stderr: Any = None

    def _start(self) -> None:
        self.close()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._stderr = tempfile.TemporaryFile()
        scratch = tempfile.gettempdir()
        self._proc = subprocess.Popen(
            [sys.executable, "-I", str(CHILD_SCRIPT), "--server", str(child.fileno())],
            pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            cwd="/", env=_scrubbed_env(scratch), start_new_session=True,
        )
        child.close()
        parent.settimeout(self.startup_timeout)
        self._sock = parent
        try:
            hello = json.loads(parent.recv(1 << 16) or b"{}")
        except (OSError, ValueError):
            hello = {}
        if not hello.get("ready"):
            detail = self._stderr_tail()
            self.close()
            raise RuntimeError(f"the grading sandbox did not start:\n{detail}")

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()[-3000:].decode("utf-8", errors="replace")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def spawn(self, cfg: dict[str, Any]) -> _Zygote:
        """A new zygote for ``cfg``, talking on fresh pipes."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            assert self._sock is not None
            stdin_r, stdin_w = os.pipe()
            stdout_r, stdout_w = os.pipe()
            stderr = tempfile.TemporaryFile()
            try:
                socket.send_fds(self._sock, [json.dumps({"cfg": cfg}).encode()], [stdin_r, stdout_w, stderr.fileno()])
                message, fds, _, _ = socket.recv_fds(self._sock, 1 << 16, 1)
            except OSError as exc:
                for fd in (stdin_r, stdin_w, stdout_r, stdout_w):
                    os.close(fd)
                stderr.close()
                detail = self._stderr_tail()
                self.close()
                raise RuntimeError(f"the grading sandbox's fork server failed ({exc}):\n{detail}") from None
            os.close(stdin_r)
            os.close(stdout_w)
            reply = json.loads(message or b"{}")
            if "pid" not in reply or len(fds) != 1:
                for fd in (stdin_w, stdout_r, *fds):
                    os.close(fd)
                stderr.close()
                raise RuntimeError(f"the grading sandbox could not start a process: {reply.get('error', reply)}")
            return _Zygote(reply["pid"], fds[0], stdin_w, stdout_r, stderr)


_SERVER = ForkServer()
atexit.register(_SERVER.close)


class Sandbox:
    """Learner code for one submission: ``package_root`` holds its ``exercises`` package.

    Learner code sees an allow-list of the machine's files (``sandbox_child.py``): the Python
    installation, the submission and a scratch folder. ``hide`` adds folders to the instructor's code
    that must stay hidden even where they lie inside the Python installation (a package installed in
    its ``site-packages``, say). Once started, ``isolation`` says in words which mechanisms are in
    force, and ``record`` says it as plain data (``full``, ``mechanisms``, ``in_force``, ``unavailable``).
    """

    def __init__(self, package_root: Path, limits: Limits | None = None, hide: tuple[Path, ...] = (),
                 user_namespace: bool = True, refuse: tuple[str, ...] | None = None) -> None:
        self.package_root = Path(package_root)
        self.limits = limits or Limits()
        self.hide = tuple(sorted({*default_hidden(), *(Path(h) for h in hide)}))
        self.user_namespace = user_namespace
        self.refuse = refused_mechanisms() if refuse is None else tuple(refuse)
        self.isolation = ""
        self.record: dict[str, Any] = {}
        self.flags: dict[str, Any] = {}
        self.stats = {"groups": 0, "ended_early": 0, "rerun": 0}  # run_group's counts, for benchmarks and tests
        self.endings: list[str] = []  # why groups ended early
        self._zygote: _Zygote | None = None
        self._buffer = b""

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def config(self) -> dict[str, Any]:
        return {
            "package_root": str(self.package_root.resolve()),
            "hide": [str(Path(h).resolve()) for h in self.hide],
            "scratch_mb": self.limits.scratch_mb,
            "timeout": self.limits.timeout,
            "memory_bytes": self.limits.memory_mb * 2**20,
            "max_result_bytes": self.limits.max_result_mb * 2**20,
            "max_file_bytes": self.limits.max_file_mb * 2**20,
            "max_processes": self.limits.max_processes,
            "user_namespace": self.user_namespace,
            "refuse": list(self.refuse),
            "group": self.limits.group_forks,
            "drop_privileges": True,
        }

    def start(self) -> None:
        self.close()
        _SERVER.startup_timeout = self.limits.startup_timeout
        self._zygote = _SERVER.spawn(self.config())
        self._buffer = b""
        hello = self._read_line(time.monotonic() + self.limits.startup_timeout)
        if hello is None or not hello.get("ready"):
            self._zygote.stderr.seek(0)
            detail = self._zygote.stderr.read()[-3000:].decode("utf-8", errors="replace")
            self.close()
            raise RuntimeError(f"the grading sandbox did not start:\n{detail}")
        self.isolation = hello.get("isolation", "")
        self.record = hello.get("record", {})
        self.flags = hello.get("flags", {})

    def close(self) -> None:
        if self._zygote is not None:
            self._zygote.kill(grace=1.0 if self._zygote.alive() else 0.0)
            self._zygote = None

    def _read_line(self, deadline: float) -> dict[str, Any] | None:
        assert self._zygote is not None
        fd = self._zygote.stdout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return None
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _timeout(self, program: Program, timeout: float | None = None) -> float:
        return timeout or max(self.limits.timeout, program.timeout or 0.0)

    @staticmethod
    def _job(program: Program, timeout: float) -> dict[str, Any]:
        return {"steps": encode_program(program.steps),
                "fetches": {name: encode_program(ref) for name, ref in program.fetches.items()},
                "forbidden": list(program.forbidden), "timeout": timeout}

    def _ask(self, request: dict[str, Any], wait: float) -> dict[str, Any]:
        """Send one request to the zygote and read its reply (``SandboxFailure`` if it stops answering)."""
        if self._zygote is None or not self._zygote.alive():
            self.start()
        assert self._zygote is not None
        data = memoryview((json.dumps(request) + "\n").encode())
        try:
            while data:
                data = data[os.write(self._zygote.stdin, data):]
        except OSError:
            self.close()
            raise SandboxFailure("the grading sandbox stopped answering; this test could not be run.") from None
        reply = self._read_line(time.monotonic() + wait)
        if reply is None:
            self.close()
            raise SandboxFailure("the grading sandbox stopped answering; this test could not be run.")
        return reply

    def run(self, program: Program, timeout: float | None = None) -> dict[str, Any]:
        """Run ``program`` in a fresh fork; return its fetched values (plain data, decoded)."""
        timeout = self._timeout(program, timeout)
        reply = self._ask(self._job(program, timeout), timeout + 30)
        return self._interpret(reply, timeout, program)

    def run_group(self, programs: list[Program]) -> list[dict[str, Any] | Exception | None]:
        """Run ``programs`` one after the other in one fork, each under its own time limit. For each: its
        fetched values, the exception ``run`` would have raised (``StepFailed``, ``SandboxFailure``), or
        ``None`` where no verdict can be trusted: the fork ended before reaching it, or it ended
        abnormally (a time limit, memory, a crash, an unreadable result) after other programs had run in
        the same process. Run those again with ``run``, one fork each."""
        if not programs:
            return []
        if self._zygote is None or not self._zygote.alive():
            self.start()
        if len(programs) < 2 or not self.flags.get("grouped"):
            return [None] * len(programs)
        timeouts = [self._timeout(p) for p in programs]
        wait = sum(timeouts) + 5.0 * len(programs) + 30
        reply = self._ask({"group": [self._job(p, t) for p, t in zip(programs, timeouts, strict=True)]}, wait)
        self.stats["groups"] += 1
        replies = reply.get("replies")
        if type(replies) is not list or len(replies) != len(programs):
            raise SandboxFailure("the grading sandbox answered a group of tests with something unreadable.")
        if reply.get("ended"):
            self.stats["ended_early"] += 1
            self.endings.append(str(reply["ended"])[:300])
        outcomes: list[dict[str, Any] | Exception | None] = []
        for item, program, timeout in zip(replies, programs, timeouts, strict=True):
            outcome: dict[str, Any] | Exception | None = None
            if type(item) is dict:
                try:
                    outcome = self._interpret(item, timeout, program)
                except (StepFailed, SandboxFailure) as exc:
                    outcome = exc
                if item.get("position") != 0 and _abnormal(outcome):
                    outcome = None  # earlier tests ran in that process: this end may not be its own doing
            self.stats["rerun"] += outcome is None
            outcomes.append(outcome)
        return outcomes

    def _interpret(self, reply: dict[str, Any], timeout: float, program: Program) -> dict[str, Any]:
        status, code = reply["status"], reply.get("exit_code")
        # What the learner's code printed is never shown: it could print the hidden inputs.
        tail = " (It also printed output, which grading feedback never shows.)" if reply.get("output_bytes") else ""
        if status == "timeout":
            step = reply.get("step")
            target = None
            if type(step) is int and 0 <= step < len(program.steps):
                target = program.steps[step].get("target")
            who = target.rpartition(".")[2] if target else "your code"
            raise SandboxFailure(
                f"{who} did not finish within {timeout:g} s (an infinite loop, or an implementation much slower than "
                f"the reference).{tail}", timed_out_target=target)
        if status == "too_large":
            raise SandboxFailure(f"returned more than {self.limits.max_result_mb} MiB of results.")
        if status == "no_result":
            if code == -9:
                why = (f"was killed, most likely for using more than {self.limits.memory_mb} MiB of memory "
                       "or too much CPU time")
            elif code is not None and code < 0:
                why = f"crashed with signal {-code}"
            else:
                why = f"ended the process (exit code {code}) before returning, e.g. with os._exit()"
            raise SandboxFailure(f"your code {why}; no result came back.{tail}")
        try:
            payload = json.loads(reply["payload"])
            if type(payload) is not dict or type(payload.get("ok")) is not bool:
                raise ValueError("not a result")
            if not payload["ok"]:
                raise StepFailed(str(payload.get("target", "?"))[:200], str(payload.get("error_type", "?"))[:100],
                                 str(payload.get("message", ""))[:2000], str(payload.get("trace", ""))[:4000])
            values = decode_result(payload["values"])
            if type(values) is not dict:
                raise ValueError("not a mapping")
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            raise SandboxFailure("returned data the grader could not read "
                                 "(was the result channel tampered with?).") from None
        return values


def _abnormal(outcome: Any) -> bool:
    """Whether a test ended in a way an earlier test in the same process could have caused."""
    if isinstance(outcome, SandboxFailure):
        return True
    if isinstance(outcome, StepFailed):
        return outcome.error_type in ("MemoryError", "RecursionError") or "can't allocate memory" in outcome.message
    return False
