"""The grader's side of the sandbox: start the child, send programs, read back plain data.

See ``sandbox_child.py`` for what happens on the other side. One ``Sandbox`` serves one
submission: a fresh interpreter imports torch once, and every program then runs in its own fork
of it with limits on time, CPU, memory, file size and output. Whatever the learner's code does,
``run`` returns the fetched values or raises ``StepFailed`` (their code raised) or
``SandboxFailure`` (it hung, crashed, exited, or returned something unreadable).
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exercises.checks.program import Program, Ref, StepFailed

CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")
_DTYPES = {name: getattr(torch, name) for name in (
    "bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64")}


class SandboxFailure(Exception):
    """The learner's process gave no usable answer; the message says why, for the learner.

    ``timed_out_target`` names the call that was running when a time limit struck, if known.
    """

    def __init__(self, message: str, timed_out_target: str | None = None) -> None:
        super().__init__(message)
        self.timed_out_target = timed_out_target


@dataclass(frozen=True)
class Opaque:
    """A value the child could not send as plain data (an object of a type named ``type_name``)."""

    type_name: str


@dataclass
class Limits:
    timeout: float = 10.0  # seconds of wall time per program
    memory_mb: int = 2048  # address space a program may add on top of the imported torch
    max_result_mb: int = 64
    max_file_mb: int = 16
    startup_timeout: float = 120.0


def encode_program(value: Any) -> Any:
    """Plain JSON data for a program's arguments (the parent's half of the wire format)."""
    if isinstance(value, Ref):
        return {"__ref__": value.id}
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if np.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        return {"__tensor__": {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                               "data": base64.b64encode(raw).decode("ascii")}}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_program(v) for v in value]}
    if isinstance(value, list):
        return [encode_program(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": {str(k): encode_program(v) for k, v in value.items()}}
    raise TypeError(f"a program cannot carry a {type(value).__name__}")


def decode_result(value: Any, depth: int = 0) -> Any:
    """Strictly decode what the learner's process sent; anything unexpected raises ``ValueError``."""
    if depth > 40:
        raise ValueError("nested too deeply")
    if value is None or type(value) in (bool, int, float, str):
        return value
    if type(value) is list:
        return [decode_result(v, depth + 1) for v in value]
    if type(value) is not dict or len(value) != 1:
        raise ValueError("unexpected value")
    (tag, body), = value.items()
    if tag == "__tuple__" and type(body) is list:
        return tuple(decode_result(v, depth + 1) for v in body)
    if tag == "__dict__" and type(body) is dict:
        return {str(k): decode_result(v, depth + 1) for k, v in body.items()}
    if tag == "__float__" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "__opaque__":
        return Opaque(str(body)[:200])
    if tag == "__tensor__" and type(body) is dict:
        dtype = _DTYPES.get(body.get("dtype"))
        shape = body.get("shape")
        if dtype is None or type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape):
            raise ValueError("bad tensor header")
        raw = base64.b64decode(body.get("data", ""), validate=True)
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        itemsize = torch.empty(0, dtype=dtype).element_size()
        if len(raw) != count * itemsize:
            raise ValueError("tensor data does not match its shape")
        if count == 0:
            return torch.empty(shape, dtype=dtype)
        storage = torch.frombuffer(bytearray(raw), dtype=torch.int16 if dtype == torch.bfloat16 else dtype)
        t = storage.view(torch.bfloat16) if dtype == torch.bfloat16 else storage
        return t.reshape(shape).clone()
    raise ValueError(f"unknown tag {tag!r}")


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


class Sandbox:
    """A child interpreter for one submission: ``package_root`` holds its ``exercises`` package."""

    def __init__(self, package_root: Path, limits: Limits | None = None, hide: tuple[Path, ...] = ()) -> None:
        self.package_root = Path(package_root)
        self.limits = limits or Limits()
        self.hide = hide
        self.isolation = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._stderr: Any = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.close()
        self._workdir = tempfile.TemporaryDirectory(prefix="grade-sandbox-")
        work = self._workdir.name
        cfg = {
            "package_root": str(self.package_root.resolve()),
            "hide": [str(Path(h).resolve()) for h in self.hide],
            "workdir": work,
            "timeout": self.limits.timeout,
            "memory_bytes": self.limits.memory_mb * 2**20,
            "max_result_bytes": self.limits.max_result_mb * 2**20,
            "max_file_bytes": self.limits.max_file_mb * 2**20,
        }
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [sys.executable, "-I", str(CHILD_SCRIPT), json.dumps(cfg)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            cwd=work, env=_scrubbed_env(work), start_new_session=True,
        )
        self._buffer = b""
        hello = self._read_line(time.monotonic() + self.limits.startup_timeout)
        if hello is None or not hello.get("ready"):
            self._stderr.seek(0)
            detail = self._stderr.read()[-2000:].decode("utf-8", errors="replace")
            self.close()
            raise RuntimeError(f"the grading sandbox did not start:\n{detail}")
        self.isolation = hello.get("isolation", "")

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream:
                    stream.close()
            self._proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def _read_line(self, deadline: float) -> dict[str, Any] | None:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
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

    def run(self, program: Program, timeout: float | None = None) -> dict[str, Any]:
        """Run ``program`` in a fresh fork; return its fetched values (plain data, decoded)."""
        timeout = timeout or self.limits.timeout
        if self._proc is None or self._proc.poll() is not None:
            self.start()
        assert self._proc is not None and self._proc.stdin is not None
        job = {
            "steps": encode_program(program.steps),
            "fetches": {name: ref.id for name, ref in program.fetches.items()},
            "forbidden": list(program.forbidden),
            "timeout": timeout,
        }
        self._proc.stdin.write((json.dumps(job) + "\n").encode())
        self._proc.stdin.flush()
        reply = self._read_line(time.monotonic() + timeout + 30)
        if reply is None:
            self.close()
            raise SandboxFailure("the grading sandbox stopped answering; this test could not be run.")
        return self._interpret(reply, timeout, program)

    def _interpret(self, reply: dict[str, Any], timeout: float, program: Program) -> dict[str, Any]:
        status, code = reply["status"], reply.get("exit_code")
        printed = reply.get("output", "").strip()
        tail = f" It printed:\n{printed[-600:]}" if printed else ""
        if status == "timeout":
            step = reply.get("step")
            target = None
            if type(step) is int and 0 <= step < len(program.steps):
                target = program.steps[step].get("target")
            who = target.rpartition(".")[2] if target else "your code"
            raise SandboxFailure(
                f"{who} did not finish within {timeout:g} s (an infinite loop, or a very slow implementation: "
                f"the reference takes well under a second).{tail}", timed_out_target=target)
        if status == "too_large":
            raise SandboxFailure(f"returned more than {self.limits.max_result_mb} MiB of results.")
        if status == "no_result":
            if code == -9:
                why = f"was killed, most likely for using more than {self.limits.memory_mb} MiB of memory or too much CPU time"
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
            raise SandboxFailure("returned data the grader could not read (was the result channel tampered with?).") from None
        return values
