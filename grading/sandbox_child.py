"""The grading sandbox's child process. Runs learner code; knows nothing of the tests.

The grader starts this file as a fresh interpreter (``python -I sandbox_child.py CONFIG``) with a
scrubbed environment and a fresh working directory. It imports torch once, then for each job (a
``Program`` as plain data, one JSON line on stdin) it forks a short-lived process that imports
the learner's modules, runs the program, and writes the fetched values as plain data (JSON; tensors
as raw bytes) to a pipe of its own. This process never runs learner code itself, so what it
reports on stdout (status, timing, and the learner process's payload as an opaque string) cannot
be forged by the learner; the grader decodes the payload strictly and decides every verdict.

Self-contained on purpose: it must not import ``grading`` (hidden tests live there).
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import resource
import select
import signal
import sys
import tempfile
import time
from typing import Any

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MAX_DEPTH = 32
MAX_ITEMS = 100_000
MAX_OUTPUT = 4000  # bytes of a test's printed output kept for the feedback


def isolate_network() -> str:
    """Leave the network: a new network namespace has only a loopback device, and it is down."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        try:  # keep our own uid inside the new user namespace
            with open("/proc/self/setgroups", "w") as f:
                f.write("deny")
            with open("/proc/self/uid_map", "w") as f:
                f.write(f"{uid} {uid} 1")
            with open("/proc/self/gid_map", "w") as f:
                f.write(f"{gid} {gid} 1")
        except OSError:
            pass
        return "network namespace (no network), no extra privileges"
    if libc.unshare(CLONE_NEWNET) == 0:
        return "network namespace (no network)"
    return "none: user namespaces are unavailable here, so learner code could reach the network"


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def restrict_imports(package_root: str, hidden: list[str]) -> None:
    """Make the staged submission the only ``exercises`` and hide the instructor's packages."""
    hidden = [os.path.realpath(h) for h in hidden]

    def editable(hook: Any) -> bool:  # setuptools' finders for editable installs map names to the project
        names = f"{hook!r} {getattr(hook, '__module__', '')} {getattr(type(hook), '__module__', '')}"
        return "editable" in names.lower()

    sys.meta_path[:] = [f for f in sys.meta_path if not editable(f)]
    sys.path_hooks[:] = [h for h in sys.path_hooks if not editable(h)]
    kept = []
    for entry in sys.path:
        real = os.path.realpath(entry or ".")
        is_site = os.path.basename(real) in ("site-packages", "dist-packages")
        if any(_inside(real, h) or (not is_site and _inside(h, real)) for h in hidden):
            continue
        kept.append(entry)
    sys.path[:] = [package_root, *kept]
    sys.path_importer_cache.clear()


# ----------------------------------------------------------------------------- plain-data wire format


def encode(value: Any, torch: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """Plain JSON data for ``value``: tensors as raw bytes, anything else unknown as opaque."""
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        return {"__opaque__": "too large or too deeply nested"}
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if value == value and abs(value) != float("inf") else {"__float__": repr(value)}
    if isinstance(value, torch.Tensor):
        with torch._C.DisableTorchFunction():
            subclass = type(value) is not torch.Tensor and type(value).__name__ != "Parameter"
            t = torch.Tensor.as_subclass(value, torch.Tensor).detach()
            if t.is_complex() or t.layout != torch.strided:
                return {"__opaque__": f"tensor of dtype {t.dtype}, layout {t.layout}"}
            dtype = str(t.dtype).removeprefix("torch.")
            t = t.to("cpu").contiguous()
            raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        return {"__tensor__": {"dtype": dtype, "shape": list(t.shape), "device": str(value.device),
                               "subclass": type(value).__name__ if subclass else None,
                               "data": base64.b64encode(raw).decode("ascii")}}
    if type(value) is tuple:
        return {"__tuple__": [encode(v, torch, depth + 1, budget) for v in value]}
    if type(value) is list:
        return [encode(v, torch, depth + 1, budget) for v in value]
    if type(value) is dict and all(type(k) is str for k in value):
        return {"__dict__": {k: encode(v, torch, depth + 1, budget) for k, v in value.items()}}
    return {"__opaque__": type(value).__name__}


def decode(value: Any, torch: Any, ref_type: Any) -> Any:
    """The inverse of ``encode`` for the grader's own messages (programs), plus references."""
    if isinstance(value, list):
        return [decode(v, torch, ref_type) for v in value]
    if isinstance(value, dict):
        if "__ref__" in value:
            return ref_type(int(value["__ref__"]))
        if "__tuple__" in value:
            return tuple(decode(v, torch, ref_type) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: decode(v, torch, ref_type) for k, v in value["__dict__"].items()}
        if "__float__" in value:
            return float(value["__float__"])
        if "__tensor__" in value:
            spec = value["__tensor__"]
            raw = bytearray(base64.b64decode(spec["data"]))
            if spec["dtype"] == "bfloat16":
                t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if raw else torch.empty(0, dtype=torch.bfloat16)
            else:
                dtype = getattr(torch, spec["dtype"])
                t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            return t.reshape(spec["shape"]).clone()
        raise ValueError(f"cannot decode {sorted(value)}")
    return value


# ----------------------------------------------------------------------------- one job, in a fork


def _limit(which: int, soft: int, hard: int | None = None) -> None:
    try:
        resource.setrlimit(which, (soft, soft if hard is None else hard))
    except (ValueError, OSError):
        pass


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_learner(
    job: dict[str, Any], cfg: dict[str, Any], result_fd: int, progress_fd: int, output_fd: int, torch: Any
) -> None:
    """In the forked process: limit, run the program, write the payload, and exit."""
    from exercises.checks.program import Ref, StepFailed, run_program

    payload: dict[str, Any]
    try:
        os.setpgid(0, 0)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(output_fd, 1)  # printed output goes to a pipe; past a cap the sandbox discards it
        os.dup2(output_fd, 2)
        keep = sorted((result_fd, progress_fd))  # only these pipes stay open, never the protocol
        for low, high in zip([2, *keep], [*keep, 1 << 16], strict=True):
            os.closerange(low + 1, high)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _limit(resource.RLIMIT_FSIZE, cfg["max_file_bytes"])
        cpu = int(job.get("timeout", cfg["timeout"])) + 1
        _limit(resource.RLIMIT_CPU, cpu, cpu + 1)
        _limit(resource.RLIMIT_AS, _vm_size() + cfg["memory_bytes"])
        _limit(resource.RLIMIT_CORE, 0)
        torch.set_num_threads(1)
        steps = decode(job["steps"], torch, Ref)
        fetches = {k: Ref(v) for k, v in job["fetches"].items()}
        try:
            def on_step(index: int) -> None:
                try:
                    os.write(progress_fd, f"{index}\n".encode())
                except OSError:
                    pass

            values = run_program(steps, fetches, catch=(BaseException,), on_step=on_step,
                                 forbidden=[str(n) for n in job.get("forbidden", [])])
            payload = {"ok": True, "values": encode(values, torch)}
        except StepFailed as exc:
            payload = {"ok": False, "target": exc.target, "error_type": exc.error_type,
                       "message": exc.message, "trace": exc.trace}
        data = json.dumps(payload).encode()
    except BaseException as exc:  # anything else: still answer, as plainly as possible
        data = json.dumps({"ok": False, "target": "(grader)", "error_type": type(exc).__name__,
                           "message": str(exc)[:1000], "trace": ""}).encode()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(result_fd, view):]
        except OSError:
            break
    os._exit(0)


def run_job(job: dict[str, Any], cfg: dict[str, Any], torch: Any) -> dict[str, Any]:
    """Fork, collect the payload and the printed output until the deadline, kill what is left, report."""
    jobdir = tempfile.mkdtemp(prefix="job-", dir=cfg["workdir"])
    timeout = float(job.get("timeout", cfg["timeout"]))
    result_read, result_write = os.pipe()
    progress_read, progress_write = os.pipe()
    output_read, output_write = os.pipe()
    os.set_blocking(progress_write, False)
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        for fd in (result_read, progress_read, output_read):
            os.close(fd)
        os.chdir(jobdir)
        run_learner(job, cfg, result_write, progress_write, output_write, torch)
    for fd in (result_write, progress_write, output_write):
        os.close(fd)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    chunks, size, status = [], 0, "ok"
    output, output_open = b"", True
    deadline = start + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            status = "timeout"
            break
        ready, _, _ = select.select([result_read] + ([output_read] if output_open else []), [], [], remaining)
        if output_read in ready:
            chunk = os.read(output_read, 1 << 16)
            output_open = bool(chunk)
            if len(output) < MAX_OUTPUT:
                output += chunk[: MAX_OUTPUT - len(output)]
        if result_read in ready:
            chunk = os.read(result_read, 1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > cfg["max_result_bytes"]:
                status = "too_large"
                break
            chunks.append(chunk)
    for fd in (result_read, output_read):
        os.close(fd)
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except OSError:
            pass
    _, wait_status = os.waitpid(pid, 0)
    step = _last_step(progress_read)
    os.close(progress_read)
    seconds = time.monotonic() - start
    payload = b"".join(chunks).decode("utf-8", errors="replace")
    if status == "ok" and not payload:
        status = "no_result"
    _remove_tree(jobdir)
    return {
        "status": status,
        "payload": payload if status == "ok" else "",
        "output": output.decode("utf-8", errors="replace"),
        "exit_code": os.waitstatus_to_exitcode(wait_status),
        "seconds": round(seconds, 4),
        "step": step,
    }


def _remove_tree(path: str) -> None:
    for base, dirs, files in os.walk(path, topdown=False):
        for name in files:
            try:
                os.unlink(os.path.join(base, name))
            except OSError:
                pass
        for name in dirs:
            try:
                os.rmdir(os.path.join(base, name))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _last_step(fd: int) -> int | None:
    """The index of the last step the learner's process started, from its progress pipe."""
    os.set_blocking(fd, False)
    data = b""
    try:
        while len(data) < 1 << 20:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            data += chunk
    except BlockingIOError:
        pass
    lines = data.split()
    try:
        return int(lines[-1]) if lines else None
    except ValueError:
        return None


def main() -> None:
    cfg = json.loads(sys.argv[1])
    protocol_out = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints never corrupt the protocol
    isolation = isolate_network()
    restrict_imports(cfg["package_root"], cfg["hide"])
    import torch

    import exercises.checks.program  # noqa: F401  (the executor, loaded once before any fork)

    protocol_out.write(json.dumps({"ready": True, "isolation": isolation, "pid": os.getpid()}) + "\n")
    protocol_out.flush()
    for line in sys.stdin.buffer:
        job = json.loads(line)
        reply = run_job(job, cfg, torch)
        protocol_out.write(json.dumps(reply) + "\n")
        protocol_out.flush()


if __name__ == "__main__":
    main()
