"""The grading sandbox's child processes: they run learner code and know nothing of the tests.

Self-contained on purpose: it must not import ``grading`` (hidden tests live there). Four kinds of
process come from this file:

* the **fork server** (``python -I sandbox_child.py --server FD``), one per grader process. It
  imports torch once, then forks one zygote per submission on request, so a submission costs a
  fork instead of a fresh interpreter.
* a **zygote** per submission. Before any learner code exists in it, it reads the staged
  submission into memory and then isolates itself: a user namespace (as root, mapped to the
  unprivileged uid ``nobody`` so that process limits apply), a network namespace (no network), a
  mount namespace in which the project, the instructor's packages, the submissions and output
  folders, the home folder and the scratch folders are covered by empty tmpfs mounts (only the
  Python installation stays visible), and a second user namespace that locks those mounts so
  that nothing inside can lift them. The submission is written to a fresh, size-capped tmpfs.
* per test, an **intermediate** process that opens a PID namespace, and
* the **learner process**: init of that namespace (so killing it kills everything the test
  started), with its own ``/proc``, no capabilities, limits on wall time, CPU, memory, processes,
  file size and output. It runs the program and writes the fetched values as plain data
  (``exercises.checks.wire``, the format the grader decodes) to a pipe of its own.

The zygote never runs learner code itself, so what it reports on its stdout (status, timing, and
the learner process's payload as an opaque string) cannot be forged by the learner; the grader
decodes the payload strictly and decides every verdict. Where the kernel refuses a mechanism, the
zygote carries on without it and says so in the ``isolation`` report of its hello message.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import select
import signal
import socket
import stat
import sys
import tempfile
import time
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 4, 24, 38, 47
NOBODY = 65534
MAX_OUTPUT = 4000  # bytes of a test's printed output kept (for the instructor, never for feedback)
MAX_PACKAGE_BYTES = 64 << 20
SYSTEM_DIRS = {"/", "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/var"}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source.encode() if source else None, target.encode(), fstype.encode() if fstype else None,
                       flags, data.encode() if data else None), f"mount {target}")


def _unshare(flags: int) -> bool:
    return _libc.unshare(flags) == 0


def _prctl(option: int, arg: int = 0) -> int:
    return _libc.prctl(option, arg, 0, 0, 0)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def drop_capabilities() -> None:
    """Leave the learner process no capability in any namespace, and no way to gain one."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    for cap in range(64):
        _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_CAP_AMBIENT, 4)  # PR_CAP_AMBIENT_CLEAR_ALL
    _libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)())
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


# ----------------------------------------------------------------------------- imports


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
    for name in [n for n in sys.modules if n == "exercises" or n.startswith("exercises.")]:
        del sys.modules[name]


def needed_paths(hidden: list[str]) -> list[str]:
    """What must stay visible in the sandbox: the Python installation and its import path."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    for entry in sys.path:
        if entry and os.path.isdir(entry):
            paths.add(entry)
    real = {os.path.realpath(p) for p in paths if p and os.path.exists(p)}
    hidden = [os.path.realpath(h) for h in hidden]
    real = {p for p in real if not any(_inside(p, h) or _inside(h, p) for h in hidden)}
    return sorted(p for p in real if not any(q != p and _inside(p, q) for q in real))


# ----------------------------------------------------------------------------- the zygote's isolation


def read_package(root: str) -> dict[str, bytes]:
    """Every regular file under ``root``, in memory (read before the file system is masked)."""
    files: dict[str, bytes] = {}
    total = 0
    for base, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not os.path.islink(os.path.join(base, d))]
        for name in names:
            path = os.path.join(base, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or name.endswith(".pyc"):
                continue
            total += st.st_size
            if total > MAX_PACKAGE_BYTES:
                raise ValueError("the staged submission is too large")
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def write_package(files: dict[str, bytes], dest: str) -> None:
    for rel, data in files.items():
        path = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


class Isolation:
    """What the zygote achieved, for the hello message: mechanisms on, and those the kernel refused."""

    def __init__(self) -> None:
        self.on: list[str] = []
        self.off: list[str] = []
        self.flags: dict[str, Any] = {}

    def report(self) -> str:
        text = "; ".join(self.on) or "none"
        if self.off:
            text += ". Unavailable here: " + "; ".join(self.off)
        return text


def _map_ids(pid: str, uid: int, gid: int, inside_uid: int, inside_gid: int, deny_setgroups: bool) -> None:
    if deny_setgroups:
        try:
            _write(f"/proc/{pid}/setgroups", "deny")
        except OSError:
            pass
    _write(f"/proc/{pid}/uid_map", f"{inside_uid} {uid} 1")
    _write(f"/proc/{pid}/gid_map", f"{inside_gid} {gid} 1")


def mask(target: str, holes: list[tuple[str, int]], writable: bool, size_mb: int) -> None:
    """Cover ``target`` with an empty tmpfs, then bind the ``holes`` (paths inside it, kept open as
    ``O_PATH`` descriptors) back at their places. Read-only unless ``writable``."""
    mode = "1777" if writable else "755"
    flags = MS_NOSUID | MS_NODEV
    _mount("tmpfs", target, "tmpfs", flags, f"size={size_mb}m,mode={mode}")
    try:
        for path, fd in holes:
            os.makedirs(path, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
        if not writable:
            _mount(None, target, None, MS_REMOUNT | MS_RDONLY | flags, f"size={size_mb}m,mode={mode}")
    except OSError:
        for path, _ in reversed(holes):
            _libc.umount2(path.encode(), 2)  # MNT_DETACH
        _libc.umount2(target.encode(), 2)
        raise


def isolate(cfg: dict[str, Any], sync: tuple[int, int] | None, iso: Isolation) -> str:
    """Namespaces and masks for this zygote; returns the working folder to use. See the module docstring."""
    hidden = [os.path.realpath(h) for h in cfg["hide"]]
    keep = needed_paths(hidden)
    keep_fds: dict[str, int] = {}
    mode = None
    uid, gid = os.getuid(), os.getgid()
    if cfg.get("user_namespace", True) and _unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET):
        mode = "user"
        # Bind sources must belong to this mount namespace, and must be opened while the
        # original uid can still walk to them.
        keep_fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in keep}
        remapped = False
        if sync is not None:  # ask the fork server (real root) to map us to nobody
            os.write(sync[1], b"U")
            remapped = os.read(sync[0], 1) == b"M"
        if remapped:
            os.setresgid(0, 0, 0)
            os.setgroups([])
            os.setresuid(0, 0, 0)
            _prctl(PR_SET_DUMPABLE, 1)  # a uid change clears it; /proc/self must stay ours
            iso.on.append("user namespace, learner code runs as the unprivileged uid nobody")
        else:
            try:
                _map_ids("self", uid, gid, uid, gid, deny_setgroups=True)
                iso.on.append("user namespace")
            except OSError as exc:  # e.g. a security module that allows the namespace but not the mapping
                iso.off.append(f"a uid mapping in the user namespace ({exc.strerror})")
        iso.flags["unprivileged_uid"] = remapped or uid != 0
        iso.on.append("network namespace (no network)")
        iso.flags["network"] = False
    else:
        if sync is not None:
            os.write(sync[1], b"N")
            os.read(sync[0], 1)
        iso.off.append("user namespaces (the kernel or a container refuses them)")
        if os.geteuid() == 0 and _unshare(CLONE_NEWNS | CLONE_NEWNET):
            mode = "root"
            keep_fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in keep}
            iso.on.append("mount and network namespaces as root (no network)")
            iso.flags["network"] = False
        else:
            iso.off.append("network isolation: learner code could reach the network")
            iso.flags["network"] = True
        if os.geteuid() == 0 and cfg.get("drop_privileges", True):
            iso.flags["learner_uid"] = NOBODY
            iso.flags["unprivileged_uid"] = True
            iso.on.append("learner code runs as the unprivileged uid nobody")
        else:
            iso.flags["unprivileged_uid"] = os.geteuid() != 0

    iso.flags["mode"] = mode
    masked: list[str] = []
    scratch_root = None
    if mode is not None:
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        targets = [(os.path.realpath(p), False) for p in [*cfg["hide"], *cfg.get("masks", [])]]
        targets += [(os.path.realpath(p), True) for p in cfg.get("scratch", [])]
        for target, writable in sorted(set(targets), key=lambda t: (t[0].count("/"), t[0])):
            if not os.path.isdir(target) or os.path.islink(target) or target in SYSTEM_DIRS:
                continue
            if any(_inside(target, k) and target != k for k in keep) and not writable:
                holes: list[tuple[str, int]] = []  # inside the Python installation: mask it whole
            elif any(_inside(k, target) and k == target for k in keep):
                continue  # the installation itself: cannot be masked
            else:
                holes = [(k, keep_fds[k]) for k in keep if _inside(k, target) and k != target]
            try:
                mask(target, holes, writable, cfg["scratch_mb"] if writable else 1)
            except OSError as exc:
                iso.off.append(f"masking {target} ({exc.strerror})")
                continue
            masked.append(target)
            if writable and scratch_root is None:
                scratch_root = target
        iso.on.append(f"mount namespace: {len(masked)} folders replaced by empty ones "
                      f"({', '.join(masked)}); only the Python installation stays visible")
    iso.flags["masked"] = masked
    for fd in keep_fds.values():
        os.close(fd)

    if scratch_root is not None:
        work = os.path.join(scratch_root, "grade-sandbox")
        os.makedirs(work, exist_ok=True)
    else:
        if mode is not None:
            iso.off.append("a fresh tmpfs for the working folder")
        work = tempfile.mkdtemp(prefix="grade-sandbox-")
        if iso.flags.get("learner_uid") is not None:
            os.chown(work, NOBODY, NOBODY)
    return work


def lock_mounts(iso: Isolation) -> bool:
    """Enter a nested user and mount namespace: every mount made so far becomes locked, so even
    a process with all capabilities here cannot unmount a mask to see what lies beneath."""
    uid, gid = os.getuid(), os.getgid()
    if not _unshare(CLONE_NEWUSER | CLONE_NEWNS):
        iso.off.append("locking the masks (a nested user namespace was refused)")
        return False
    try:
        _map_ids("self", uid, gid, uid, gid, deny_setgroups=True)
    except OSError as exc:
        iso.off.append(f"a uid mapping in the nested user namespace ({exc.strerror})")
    return True


class PidNamespaces:
    """A PID namespace per test, from one fork: ``unshare(CLONE_NEWPID)`` makes the next child init of
    a new namespace, and ``setns`` back to our own namespace makes the one after that possible again.
    (That needs ``CAP_SYS_ADMIN`` over our own namespace: as root, or as init of a PID namespace
    created inside our user namespace, which is how the zygote runs.)"""

    def __init__(self, possible: bool) -> None:
        """``possible``: whether ``setns`` back can work (else a failed probe would leave this process
        unable to fork at all, its children's namespace being a dead one)."""
        self.fd = os.open("/proc/self/ns/pid", os.O_RDONLY)
        self.available = possible and self._probe()

    def enter(self) -> bool:
        """Make the next fork init of a fresh PID namespace; False if that cannot be done."""
        return self.available and _unshare(CLONE_NEWPID)

    def leave(self) -> None:
        _check(_libc.setns(self.fd, CLONE_NEWPID), "setns")

    def _probe(self) -> bool:
        if not _unshare(CLONE_NEWPID):
            return False
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = 0 if os.getpid() == 1 and _fresh_proc() else 1
            finally:
                os._exit(code)
        try:
            self.leave()
            left = True
        except OSError:
            left = False
        _, status = os.waitpid(pid, 0)
        return left and os.waitstatus_to_exitcode(status) == 0


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


def run_learner(job: dict[str, Any], cfg: dict[str, Any], fds: tuple[int, int, int], torch: Any,
                base_vm: int) -> None:
    """In the learner process: limit, run the program, write the payload, and exit."""
    # Bound here, before any learner code is imported: patching these modules' attributes changes nothing.
    from exercises.checks.program import Ref, StepFailed, run_program
    from exercises.checks.wire import decode, encode

    result_fd, progress_fd, output_fd = fds
    payload: dict[str, Any]
    try:
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
        _limit(resource.RLIMIT_AS, base_vm + cfg["memory_bytes"])
        _limit(resource.RLIMIT_CORE, 0)
        _limit(resource.RLIMIT_NPROC, cfg["max_processes"])
        learner_uid = cfg.get("learner_uid")
        if learner_uid is not None:
            os.setgroups([])
            os.setresgid(learner_uid, learner_uid, learner_uid)
            os.setresuid(learner_uid, learner_uid, learner_uid)
        _prctl(PR_SET_DUMPABLE, 1)  # its own /proc/self stays readable to it
        drop_capabilities()
        torch.set_num_threads(1)
        if job.get("compile"):
            import compileall

            compileall.compile_dir(job["compile"], quiet=2, workers=1)
        steps = decode(job["steps"], Ref)
        fetches = {k: decode(v, Ref) for k, v in job["fetches"].items()}
        try:
            def on_step(index: int) -> None:
                try:
                    os.write(progress_fd, f"{index}\n".encode())
                except OSError:
                    pass

            values = run_program(steps, fetches, catch=(BaseException,), on_step=on_step,
                                 forbidden=[str(n) for n in job.get("forbidden", [])])
            payload = {"ok": True, "values": encode(values, lenient=True)}
        except StepFailed as exc:
            payload = {"ok": False, "target": exc.target, "error_type": exc.error_type,
                       "message": exc.message, "trace": exc.trace}
        data = json.dumps(payload).encode()
    except BaseException as exc:  # anything else: still answer, as plainly as possible
        data = json.dumps({"ok": False, "target": "(grader)", "error_type": type(exc).__name__,
                           "message": str(exc)[:1000], "trace": ""}).encode()
    view = memoryview(f"{len(data):016x}".encode() + data)  # length first: complete even if children hold the pipe
    while view:
        try:
            view = view[os.write(result_fd, view):]
        except OSError:
            break
    os._exit(0)


def _fresh_proc() -> bool:
    """In a new PID namespace's init: a mount namespace of its own, with a /proc of that PID namespace
    (or, if the kernel refuses, an empty one). True if /proc shows only this namespace."""
    if not _unshare(CLONE_NEWNS):
        return False
    try:
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        return True
    except OSError:
        try:
            _mount("tmpfs", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4k,mode=555")
        except OSError:
            pass
        return False


def run_job(job: dict[str, Any], cfg: dict[str, Any], torch: Any, pidns: PidNamespaces | None = None) -> dict[str, Any]:
    """Fork the learner process, collect its payload and printed output until the deadline, kill what
    is left, report."""
    jobdir = tempfile.mkdtemp(prefix="job-", dir=cfg["workdir"])
    if cfg.get("learner_uid") is not None:
        os.chown(jobdir, cfg["learner_uid"], cfg["learner_uid"])
    timeout = float(job.get("timeout", cfg["timeout"]))
    result_read, result_write = os.pipe()
    progress_read, progress_write = os.pipe()
    output_read, output_write = os.pipe()
    os.set_blocking(progress_write, False)
    base_vm = _vm_size()
    own_pidns = pidns is not None and pidns.enter()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            for fd in (result_read, progress_read, output_read):
                os.close(fd)
            os.setpgid(0, 0)
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            os.chdir(jobdir)
            if own_pidns:
                _fresh_proc()
            run_learner(job, cfg, (result_write, progress_write, output_write), torch, base_vm)
        finally:
            os._exit(code)
    if own_pidns:
        pidns.leave()
    for fd in (result_write, progress_write, output_write):
        os.close(fd)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    received, status = bytearray(), "ok"
    expected: int | None = None
    output, output_total, output_open = b"", 0, True
    deadline = start + timeout
    while expected is None or len(received) < expected:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            status = "timeout"
            break
        ready, _, _ = select.select([result_read] + ([output_read] if output_open else []), [], [], remaining)
        if output_read in ready:
            chunk = os.read(output_read, 1 << 16)
            output_open = bool(chunk)
            output_total += len(chunk)
            if len(output) < MAX_OUTPUT:
                output += chunk[: MAX_OUTPUT - len(output)]
        if result_read in ready:
            chunk = os.read(result_read, 1 << 16)
            if not chunk:
                break  # the learner process ended before its payload was complete
            received += chunk
            if expected is None and len(received) >= 16:
                try:
                    expected = 16 + int(received[:16], 16)
                except ValueError:
                    status = "garbled"
                    break
            if len(received) > cfg["max_result_bytes"]:
                status = "too_large"
                break
    complete = status == "ok" and expected is not None and len(received) >= expected
    for fd in (result_read, output_read):
        os.close(fd)
    wait_status = None
    until = time.monotonic() + (0.5 if status == "ok" else 0.0)  # let it exit, to tell how it ended
    while True:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            wait_status = st
            break
        if time.monotonic() >= until:
            break
        time.sleep(0.001)
    for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            kill()
        except OSError:
            pass
    if wait_status is None:
        _, wait_status = os.waitpid(pid, 0)
    step = _last_step(progress_read)
    os.close(progress_read)
    seconds = time.monotonic() - start
    if status == "ok" and not complete:
        status = "no_result"
    payload = bytes(received[16:expected]).decode("utf-8", errors="replace") if complete else ""
    if status == "garbled":  # not our framing: the learner wrote to its own result pipe
        status, payload = "ok", "garbled"
    _remove_tree(jobdir)
    return {
        "status": status,
        "payload": payload,
        "output": output.decode("utf-8", errors="replace"),
        "output_bytes": output_total,
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


# ----------------------------------------------------------------------------- zygote and fork server


def _close_all_but(keep: set[int]) -> None:
    """Close every descriptor above 2 except ``keep`` (inherited sockets and pipes of other zygotes)."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def zygote(cfg: dict[str, Any], stdin_fd: int, stdout_fd: int, stderr_fd: int, sync: tuple[int, int] | None,
           torch: Any) -> None:
    """One submission's process: isolate, load the submission's package, then serve jobs on stdin."""
    os.dup2(stdin_fd, 0)
    os.dup2(stderr_fd, 2)
    protocol_fd = os.dup(stdout_fd)
    _close_all_but({protocol_fd, *(sync or ())})
    protocol_out = os.fdopen(protocol_fd, "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray prints never corrupt the protocol
    iso = Isolation()
    files = read_package(cfg["package_root"])
    work = isolate(cfg, sync, iso)
    if sync is not None:
        for fd in sync:
            os.close(fd)
    package_root = os.path.join(work, "package")
    write_package(files, package_root)
    del files
    if iso.flags.get("masked") and iso.flags.get("mode") == "user":
        lock_mounts(iso)  # (as root without a user namespace, learner code drops every privilege instead)
    owns_pid_namespace = iso.flags.get("mode") == "root" or (os.geteuid() == 0 and iso.flags.get("mode") is None)
    if iso.flags.get("mode") == "user" and _unshare(CLONE_NEWPID):
        owns_pid_namespace = True
        # Serve as init of a PID namespace owned by our user namespace, so that each test can have a
        # PID namespace of its own from a single fork (see PidNamespaces). This process only waits.
        child = os.fork()
        if child:
            _close_all_but(set())
            for fd in (0, 1):
                os.close(fd)
            _, status = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _prctl(PR_SET_DUMPABLE, 0)  # other processes of the same uid cannot inspect this one
    os.chdir(work)
    os.environ.update({"HOME": work, "TMPDIR": work})
    tempfile.tempdir = None
    cfg = dict(cfg, workdir=work)
    if "learner_uid" in iso.flags:
        cfg["learner_uid"] = iso.flags["learner_uid"]
    pidns: PidNamespaces | None = None
    try:
        pidns = PidNamespaces(owns_pid_namespace)
    except OSError:
        pass
    cfg["pid_namespace"] = pidns is not None and pidns.available
    if cfg["pid_namespace"]:
        iso.on.append("a PID namespace per test with its own /proc (ending a test ends every process it started)")
    else:
        iso.off.append("PID namespaces (processes a test starts are killed through its process group)")
    if iso.flags.get("unprivileged_uid"):
        iso.on.append(f"at most {cfg['max_processes']} processes")
    else:
        iso.off.append("a process limit (RLIMIT_NPROC does not bind root)")
    iso.on.append("no capabilities, a time, CPU, memory, file-size and output limit per test")
    restrict_imports(package_root, cfg["hide"])
    # The course's own modules (never the learner's: staging keeps the official copies), loaded once.
    import exercises.checks.program  # noqa: F401  (the executor)
    import exercises.checks.wire  # noqa: F401  (the plain-data format)
    import exercises.kit.validate  # noqa: F401  (what every exercise module imports)

    if cfg.get("learner_uid") is not None:
        for base, dirs, names in os.walk(package_root):
            for name in dirs + names:
                os.chown(os.path.join(base, name), cfg["learner_uid"], cfg["learner_uid"])
    # Compile the package once, in a jailed test process (compiling never runs the code, but the
    # zygote touches nothing of the learner's); every test then imports from the bytecode.
    compiled = run_job({"compile": package_root, "steps": [], "fetches": {}, "timeout": cfg["timeout"]}, cfg, torch,
                       pidns)
    iso.flags["precompiled"] = compiled["status"] == "ok"
    import gc

    gc.collect()
    gc.freeze()  # the garbage collector of a test's process leaves these objects (and their pages) alone

    protocol_out.write(json.dumps({"ready": True, "isolation": iso.report(), "flags": iso.flags,
                                   "pid": os.getpid()}) + "\n")
    protocol_out.flush()
    for line in sys.stdin.buffer:
        job = json.loads(line)
        reply = run_job(job, cfg, torch, pidns)
        protocol_out.write(json.dumps(reply) + "\n")
        protocol_out.flush()
    _remove_tree(work)


def spawn_zygote(cfg: dict[str, Any], fds: list[int], server: socket.socket, torch: Any) -> tuple[int, int]:
    """Fork a zygote on the grader's pipes; as root, map its user namespace to nobody. Returns
    ``(pid, pidfd)``."""
    to_child_r, to_child_w = os.pipe()
    to_server_r, to_server_w = os.pipe()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # not reaped before its pidfd exists
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            server.close()
            os.close(to_child_w)
            os.close(to_server_r)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            zygote(cfg, fds[0], fds[1], fds[2], (to_child_r, to_server_w), torch)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(to_child_r)
    os.close(to_server_w)
    try:
        pidfd = os.pidfd_open(pid)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    try:
        ready, _, _ = select.select([to_server_r], [], [], 30)
        said = os.read(to_server_r, 1) if ready else b""
        answer = b"S"
        if said == b"U" and os.geteuid() == 0 and cfg.get("drop_privileges", True) and _others_can_run_python():
            try:
                _map_ids(str(pid), NOBODY, NOBODY, 0, 0, deny_setgroups=False)
                answer = b"M"
            except OSError:
                pass
        if said:
            os.write(to_child_w, answer)
    finally:
        os.close(to_server_r)
        os.close(to_child_w)
    return pid, pidfd


def _others_can_run_python() -> bool:
    """Whether an unprivileged uid can read the Python installation (it must, to import lazily)."""
    for path in needed_paths([]):
        st = os.stat(path)
        if not st.st_mode & stat.S_IXOTH or not st.st_mode & stat.S_IROTH:
            return False
    probe = os.path.join(os.path.dirname(os.__file__), "os.py")
    return not os.path.exists(probe) or bool(os.stat(probe).st_mode & stat.S_IROTH)


def warm_up(torch: Any) -> None:
    """Use once what tests use often, so that its lazy imports happen here, once for every submission,
    and not in every test's process (the first optimizer step alone imports some 800 modules, 3 s).
    Library code only: nothing of a learner's exists in this process."""
    torch.set_num_threads(1)  # no OpenMP pool: processes forked from this one must not inherit one
    try:
        param = torch.nn.Parameter(torch.randn(3))
        param.grad = torch.ones(3)
        for optimizer in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
            optimizer([param], lr=0.1).step()
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                    torch.nn.Flatten(), torch.nn.Linear(2, 2))
        x = torch.randn(2, 1, 4, 4)
        torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1])).backward()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)
    except Exception:  # a warm-up that fails costs speed, never correctness
        pass
    import gc

    gc.collect()
    gc.freeze()


def serve(sock_fd: int) -> None:
    """The fork server: import torch once, then fork a zygote for every request on the socket."""
    server = socket.socket(fileno=sock_fd)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    import numpy  # noqa: F401
    import torch

    warm_up(torch)

    def reap(*_: Any) -> None:  # reaped here (not ignored) so that their CPU time is accounted to the grader
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass

    signal.signal(signal.SIGCHLD, reap)
    server.sendall(json.dumps({"ready": True, "pid": os.getpid()}).encode())
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(server, 1 << 20, 3)
        except OSError:
            break
        if not message:
            break
        try:
            request = json.loads(message)
            if len(fds) != 3:
                raise ValueError("expected three descriptors")
            pid, pidfd = spawn_zygote(request["cfg"], fds, server, torch)
            socket.send_fds(server, [json.dumps({"pid": pid}).encode()], [pidfd])
            os.close(pidfd)
        except Exception as exc:  # report, and keep serving
            server.sendall(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        finally:
            for fd in fds:
                os.close(fd)
    try:
        os.killpg(0, signal.SIGKILL)  # the zygotes share our process group
    finally:
        os._exit(0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--server":
        serve(int(sys.argv[2]))
    else:
        sys.exit("usage: sandbox_child.py --server FD (started by grading.sandbox)")
