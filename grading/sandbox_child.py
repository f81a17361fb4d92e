"""The grading sandbox's child processes: they run learner code and know nothing of the tests.

Self-contained on purpose: it must not import ``grading`` (hidden tests live there). Four kinds of
process come from this file:

* the **fork server** (``python -I sandbox_child.py --server FD``), one per grader process. It
  imports torch once, warms it up, and measures what the Python installation needs (its import
  path's folders and every file mapped into the process: the interpreter, its shared libraries,
  those torch and numpy load); then it forks one zygote per submission on request, so a
  submission costs a fork instead of a fresh interpreter.
* a **zygote** per submission. Before any learner code exists in it, it reads the staged
  submission into memory and isolates itself: a user namespace (as root, mapped to the
  unprivileged uid ``nobody`` so that process limits apply), a network namespace (no network), and
  a mount namespace whose root is a new, read-only tree holding only an **allow-list**: the
  measured Python installation (read-only bind mounts), ``/submission`` (the submission, read-only
  once compiled), ``/scratch`` (a mount point), ``/dev/{null,zero,full,random,urandom}`` and
  ``/proc``. ``pivot_root`` moves into it and the machine's own tree is detached, so nothing else
  of the filesystem exists for learner code, wherever it lies. A second user namespace locks those
  mounts so that nothing inside can lift them.
* per test (or per group of tests), an **intermediate** process that opens a PID namespace, and
* the **learner process**: init of that namespace (so killing it kills everything the test
  started), with a mount namespace of its own holding a ``/proc`` of that PID namespace and an
  empty, size-limited ``/scratch`` (its working folder, ``HOME`` and ``TMPDIR``), no capabilities,
  limits on wall time, CPU, memory, processes, file size and output. It runs the program and writes
  the fetched values as plain data (``exercises.checks.wire``, the format the grader decodes) to a
  pipe of its own.

**Groups.** The tests of one exercise can run in one learner process, one after the other, each
under its own time limit: the zygote hands it one test at a time, and only after the previous
result is in. Between tests the process puts itself back into the state a fresh fork would have
(``Baseline``): the learner's modules are imported afresh, random generators, torch's global
settings, signal handlers, environment, limits and the working folder are restored, every process
the test started is killed; anything it cannot undo (a thread still running, a changed attribute of
torch, numpy, the standard library or the course's own modules) ends the group instead. Whatever
ends a group early (a time limit, a crash, memory, a state it cannot undo) is reported with each
verdict's position in the process, so that the grader re-runs, one process per test, every test
that has no verdict it can trust.

The zygote never runs learner code itself, so what it reports on its stdout (status, timing, and
the learner process's payload as an opaque string) cannot be forged by the learner; the grader
decodes the payload strictly and decides every verdict. Where the kernel refuses a mechanism, the
zygote carries on without it and says so in the ``isolation`` report of its hello message.
"""

from __future__ import annotations

import _signal
import ctypes
import json
import os
import platform
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
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 4096, 8192, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 4, 24, 38, 47
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
NOBODY = 65534
MAX_OUTPUT = 4000  # bytes of a test's printed output kept (for the instructor, never for feedback)
MAX_PACKAGE_BYTES = 64 << 20
PACKAGE_DIR = "/submission"  # in the view: the submission (its ``exercises`` package)
SCRATCH_DIR = "/scratch"  # in the view: each test's own empty tmpfs (working folder, HOME, TMPDIR)
DEVICES = ("null", "zero", "full", "random", "urandom")
TRANSIENT = ("/dev", "/proc", "/sys", "/run", "/tmp", "/var/tmp")  # never part of the view, even if mapped
READY_GRACE = 5.0  # seconds a group's process may take to get ready for its next test

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
        if not os.path.isdir(entry or ".") or any(_inside(real, h) or (not is_site and _inside(h, real))
                                                  for h in hidden):
            continue
        kept.append(entry)
    sys.path[:] = [package_root, *kept]
    sys.path_importer_cache.clear()
    for name in [n for n in sys.modules if n == "exercises" or n.startswith("exercises.")]:
        del sys.modules[name]


# ----------------------------------------------------------------------------- the allow-list view


def measure_installation() -> dict[str, list[str]]:
    """What the Python installation needs, measured in this process (the fork server, once torch and
    numpy are imported and warmed up): the folders of its import path, and every file mapped into it
    (the interpreter, libpython, the shared libraries torch and numpy load, the C locale)."""
    dirs = sorted({entry for entry in sys.path if entry and os.path.isdir(entry)})
    files = set()
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                path = parts[5].rstrip("\n")
                if not path.endswith(" (deleted)") and os.path.isfile(path):
                    files.add(path)
    return {"dirs": dirs, "files": sorted(files)}


def plan_view(measured: dict[str, list[str]], hidden: list[str]) -> dict[str, list[str]]:
    """The allow-list for one zygote: folders to bind (their real paths, none inside another, none
    inside a hidden folder), the import-path entries whose links must be recreated, single files
    outside those folders, and hidden folders inside them (covered by an empty one)."""
    hidden = [os.path.realpath(h) for h in hidden]
    real_dirs = {os.path.realpath(entry): entry for entry in measured["dirs"]}
    real_dirs = {r: e for r, e in real_dirs.items() if not any(_inside(r, h) for h in hidden)}
    dirs = sorted(r for r in real_dirs if not any(q != r and _inside(r, q) for q in real_dirs))
    files = sorted(f for f in measured["files"]
                   if not any(_inside(f, d) for d in dirs) and not any(_inside(f, h) for h in hidden)
                   and not any(_inside(f, t) for t in (*TRANSIENT, tempfile.gettempdir())))
    holes = sorted(h for h in hidden if os.path.isdir(h) and any(_inside(h, d) and h != d for d in dirs))
    links = sorted(e for r, e in real_dirs.items() if e != r)
    return {"dirs": dirs, "files": files, "holes": holes, "links": links}


def _kept_flags(path: str) -> int:
    """The per-mount flags a read-only remount of ``path`` must keep (a user namespace may not clear them)."""
    f_flag = os.statvfs(path).f_flag
    return MS_NOSUID | MS_NODEV | (f_flag & (os.ST_NOEXEC | os.ST_NOATIME | os.ST_NODIRATIME))


def _bind(fd: int, target: str, readonly: bool = True) -> None:
    _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
    if readonly:
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _kept_flags(target))


def _link_path(root: str, path: str) -> None:
    """Recreate under ``root`` the symbolic links on the way to ``path``, as they are on the machine."""
    current = "/"
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts):
        step = os.path.join(current, part)
        if os.path.islink(step):
            link = root + step
            if not os.path.lexists(link):
                os.makedirs(os.path.dirname(link), exist_ok=True)
                os.symlink(os.readlink(step), link)
            rest = "/".join(parts[index + 1:])
            if rest:
                _link_path(root, os.path.join(os.path.realpath(step), rest))
            return
        current = step


def _pivot(new_root: str) -> str:
    """Make ``new_root`` the root and detach the old one; returns how."""
    os.chdir(new_root)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is not None and _libc.syscall(number, b".", b".") == 0:
        _check(_libc.umount2(b".", MNT_DETACH), "detaching the old root")
        os.chdir("/")
        return "pivot_root"
    _mount(new_root, "/", None, MS_MOVE)  # e.g. on an initramfs root, which pivot_root refuses
    os.chroot(".")
    os.chdir("/")
    return "chroot"


def open_sources(plan: dict[str, list[str]]) -> dict[str, int]:
    """``O_PATH`` descriptors of everything the view binds, opened in the new mount namespace while the
    zygote still has the grader's uid (the Python installation may lie in a folder only it can walk,
    such as root's home)."""
    fds: dict[str, int] = {}
    try:
        for path in plan["dirs"]:
            fds[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
        for path in plan["files"]:
            fds[path] = os.open(path, os.O_PATH)
        for name in DEVICES:
            if os.path.exists(f"/dev/{name}"):
                fds[f"/dev/{name}"] = os.open(f"/dev/{name}", os.O_PATH)
        fds["/proc"] = os.open("/proc", os.O_PATH | os.O_DIRECTORY)
    except OSError:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds


def build_view(plan: dict[str, list[str]], fds: dict[str, int]) -> str:
    """In a fresh mount namespace with the right to mount: a new root holding only ``plan`` (bound from
    ``fds``, which are closed), then move into it. Returns how the root was switched. On failure before
    the switch, nothing is left mounted."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    devices = {name: fds[f"/dev/{name}"] for name in DEVICES if f"/dev/{name}" in fds}
    new_root = None
    try:
        new_root = next(p for p in ("/tmp", "/mnt", "/media", "/srv", "/opt") if os.path.isdir(p)
                        and not os.path.islink(p))
        _mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        for path in plan["dirs"]:
            os.makedirs(new_root + path, exist_ok=True)
            _bind(fds[path], new_root + path)
        for path in plan["files"]:
            os.makedirs(os.path.dirname(new_root + path), exist_ok=True)
            os.close(os.open(new_root + path, os.O_CREAT | os.O_WRONLY, 0o644))
            _bind(fds[path], new_root + path)
        for entry in plan["links"]:
            _link_path(new_root, entry)
        for hole in plan["holes"]:
            _mount("tmpfs", new_root + hole, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=555")
        os.makedirs(new_root + "/dev", mode=0o755)
        for name in devices:
            os.close(os.open(f"{new_root}/dev/{name}", os.O_CREAT | os.O_WRONLY, 0o666))
            _bind(devices[name], f"{new_root}/dev/{name}", readonly=False)
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                             ("stderr", "/proc/self/fd/2")):
            os.symlink(target, f"{new_root}/dev/{name}")
        # The machine's /proc, only so that the kernel lets each test mount a /proc of its own PID
        # namespace over it (it refuses where no /proc is visible); every learner process covers it.
        os.makedirs(new_root + "/proc", mode=0o555)
        _bind(fds["/proc"], new_root + "/proc", readonly=False)
        os.makedirs(new_root + PACKAGE_DIR, mode=0o755)
        _mount("tmpfs", new_root + PACKAGE_DIR, "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={2 * MAX_PACKAGE_BYTES >> 20}m,mode=755")
        os.makedirs(new_root + SCRATCH_DIR, mode=0o755)
        how = _pivot(new_root)
    except BaseException:
        if new_root is not None:
            os.chdir("/")
            _libc.umount2(new_root.encode(), MNT_DETACH)
        raise
    finally:
        for fd in fds.values():
            os.close(fd)
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return how


def _private_mounts(cfg: dict[str, Any], own_pidns: bool) -> None:
    """In a learner process, while it may still mount: a mount namespace of its own with a ``/proc`` of
    its PID namespace (an empty one if it has none) and a fresh, size-limited ``/scratch`` as its
    working folder. Raises rather than leave the machine's ``/proc`` visible."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    try:
        if not own_pidns:
            raise OSError("no PID namespace of its own")
        _mount("proc", "/proc", "proc", flags)
    except OSError:
        _mount("tmpfs", "/proc", "tmpfs", flags | MS_RDONLY, "size=4k,mode=555")
    owner = cfg.get("learner_uid")
    options = f"size={cfg['scratch_mb']}m,mode=700" + (f",uid={owner},gid={owner}" if owner is not None else "")
    _mount("tmpfs", SCRATCH_DIR, "tmpfs", MS_NOSUID | MS_NODEV, options)
    os.chdir(SCRATCH_DIR)


# ----------------------------------------------------------------------------- the zygote's isolation


def read_package(root: str) -> dict[str, bytes]:
    """Every regular file under ``root`` (the staged package: the grader wrote it, learners' files are
    ``.py`` files only), in memory, read before the machine's files disappear."""
    files: dict[str, bytes] = {}
    total = 0
    for base, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(base, d))]
        for name in names:
            path = os.path.join(base, name)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or (name.endswith(".pyc") and os.path.basename(base) != "__pycache__"):
                continue  # (bytecode only where the grader staged it: the course's own modules)
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


# The mechanisms a record names; all of them in force is full isolation.
MECHANISMS = ("filesystem", "network", "pid_namespace", "unprivileged", "locked", "process_limit", "limits")


class Isolation:
    """What the zygote achieved, for the hello message: mechanisms in force, and those the kernel refused."""

    def __init__(self) -> None:
        self.on: dict[str, str] = {}
        self.off: dict[str, str] = {}
        self.flags: dict[str, Any] = {}

    def grant(self, key: str, text: str) -> None:
        self.on[key] = text
        self.off.pop(key, None)

    def refuse(self, key: str, text: str) -> None:
        if key not in self.on:
            self.off[key] = text

    def report(self) -> str:
        text = "; ".join(self.on.values()) or "none"
        if self.off:
            text += ". Unavailable here: " + "; ".join(self.off.values())
        return text

    def record(self) -> dict[str, Any]:
        """The plain-data form every learner's record keeps."""
        mechanisms = {key: key in self.on for key in MECHANISMS}
        return {"full": all(mechanisms.values()), "mechanisms": mechanisms, "in_force": list(self.on.values()),
                "unavailable": list(self.off.values()), "grouped": bool(self.flags.get("grouped"))}


def _map_ids(pid: str, uid: int, gid: int, inside_uid: int, inside_gid: int, deny_setgroups: bool) -> None:
    if deny_setgroups:
        try:
            _write(f"/proc/{pid}/setgroups", "deny")
        except OSError:
            pass
    _write(f"/proc/{pid}/uid_map", f"{inside_uid} {uid} 1")
    _write(f"/proc/{pid}/gid_map", f"{inside_gid} {gid} 1")


def isolate(cfg: dict[str, Any], sync: tuple[int, int] | None, iso: Isolation) -> bool:
    """Namespaces and the allow-list view for this zygote (see the module docstring). Returns whether
    the view is in place (the zygote then lives in it, at ``/``)."""
    refused = set(cfg.get("refuse", ()))  # mechanisms to do without, as a host that refuses them would
    network = 0 if "network" in refused else CLONE_NEWNET
    mode = None
    uid, gid = os.getuid(), os.getgid()
    plan = plan_view(cfg["installation"], cfg["hide"])
    sources: dict[str, int] | None = None
    failure = ""

    def open_view_sources() -> None:
        nonlocal sources, failure
        if "mount" in refused:
            return
        try:
            sources = open_sources(plan)
        except OSError as exc:
            failure = f"{exc.strerror}: {exc.filename}"

    if cfg.get("user_namespace", True) and "user" not in refused and _unshare(CLONE_NEWUSER | CLONE_NEWNS | network):
        mode = "user"
        open_view_sources()
        remapped = False
        if sync is not None:  # ask the fork server (real root) to map us to nobody
            os.write(sync[1], b"U")
            remapped = os.read(sync[0], 1) == b"M"
        if remapped:
            os.setresgid(0, 0, 0)
            os.setgroups([])
            os.setresuid(0, 0, 0)
            _prctl(PR_SET_DUMPABLE, 1)  # a uid change clears it; /proc/self must stay ours
            iso.grant("user", "user namespace")
            iso.grant("unprivileged", "learner code runs as the unprivileged uid nobody")
        else:
            try:
                _map_ids("self", uid, gid, uid, gid, deny_setgroups=True)
                iso.grant("user", "user namespace")
            except OSError as exc:  # e.g. a security module that allows the namespace but not the mapping
                iso.refuse("user", f"a uid mapping in the user namespace ({exc.strerror})")
            if uid != 0:
                iso.grant("unprivileged", f"learner code runs as the grader's own unprivileged uid {uid}")
    else:
        if sync is not None:
            os.write(sync[1], b"N")
            os.read(sync[0], 1)
        iso.refuse("user", "user namespaces (the kernel or a container refuses them)")
        if os.geteuid() == 0 and "mount" not in refused and _unshare(CLONE_NEWNS | network):
            mode = "root"
            open_view_sources()
        elif os.geteuid() == 0 and network and _unshare(network):
            mode = "network only"
        if os.geteuid() == 0 and cfg.get("drop_privileges", True):
            iso.flags["learner_uid"] = NOBODY
            iso.grant("unprivileged", "learner code runs as the unprivileged uid nobody")
        elif os.geteuid() != 0:
            iso.grant("unprivileged", f"learner code runs as the grader's own unprivileged uid {os.geteuid()}")
    if "unprivileged" not in iso.on:
        iso.refuse("unprivileged", "an unprivileged uid for learner code (it runs as root)")
    if mode is not None and network:
        iso.grant("network", "network namespace (no network)")
    else:
        iso.refuse("network", "network isolation: learner code could reach the network")
    iso.flags["mode"] = mode
    view = False
    if sources is not None:
        try:
            how = build_view(plan, sources)
            view = True
            iso.flags["root_switch"] = how
            iso.flags["view_paths"] = sorted({*plan["dirs"], *plan["files"], *plan["links"]})
            iso.grant("filesystem", "a mount namespace whose filesystem is an allow-list (the Python installation "
                                    "read-only, the submission read-only, an empty scratch folder per test, "
                                    f"/dev/{{{','.join(DEVICES)}}} and /proc; nothing else of the machine)"
                      + ("" if how == "pivot_root" else " entered by chroot, pivot_root being refused"))
        except OSError as exc:
            failure = str(exc)
    if failure:
        iso.refuse("filesystem", f"an allow-list filesystem view ({failure}): learner code sees every file its "
                                 "uid may read")
    elif not view:
        iso.refuse("filesystem", "a mount namespace (the kernel refused it): learner code sees every file its "
                                 "uid may read")
    iso.flags["view"] = view
    return view


def lock_mounts(iso: Isolation) -> bool:
    """Enter a nested user and mount namespace: every mount made so far becomes locked, so even
    a process with all capabilities here cannot unmount or remount any of it to see more."""
    uid, gid = os.getuid(), os.getgid()
    if not _unshare(CLONE_NEWUSER | CLONE_NEWNS):
        iso.refuse("locked", "locking the view (a nested user namespace was refused)")
        return False
    try:
        _map_ids("self", uid, gid, uid, gid, deny_setgroups=True)
    except OSError as exc:
        iso.refuse("locked", f"a uid mapping in the nested user namespace ({exc.strerror})")
        return False
    iso.grant("locked", "the view's mounts locked (a nested user namespace: nothing inside can lift them)")
    return True


class PidNamespaces:
    """A PID namespace per test, from one fork: ``unshare(CLONE_NEWPID)`` makes the next child init of
    a new namespace, and ``setns`` back to our own namespace makes the one after that possible again.
    (That needs ``CAP_SYS_ADMIN`` over our own namespace: as root, or as init of a PID namespace
    created inside our user namespace, which is how the zygote runs.)"""

    def __init__(self, possible: bool, cfg: dict[str, Any]) -> None:
        """``possible``: whether ``setns`` back can work (else a failed probe would leave this process
        unable to fork at all, its children's namespace being a dead one)."""
        self.fd = os.open("/proc/self/ns/pid", os.O_RDONLY)
        self.cfg = cfg
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
                if os.getpid() == 1:
                    if self.cfg.get("view"):
                        _private_mounts(self.cfg, True)
                        code = 0 if os.listdir("/proc/self") and "1" in os.listdir("/proc") else 1
                    else:
                        code = 0 if _fresh_proc() else 1
            finally:
                os._exit(code)
        try:
            self.leave()
            left = True
        except OSError:
            left = False
        _, status = os.waitpid(pid, 0)
        return left and os.waitstatus_to_exitcode(status) == 0


def _fresh_proc() -> bool:
    """Without the view, in a new PID namespace's init: a mount namespace of its own, with a /proc of that
    PID namespace (or, if the kernel refuses, an empty one). True if /proc shows only this namespace."""
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


# ----------------------------------------------------------------------------- the learner process


def _limit(which: int, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    try:
        resource.setrlimit(which, (min(soft, hard), hard))
    except (ValueError, OSError):
        pass


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _become_learner(cfg: dict[str, Any], keep: tuple[int, ...], output_fd: int, cpu: int, cpu_hard: int,
                    base_vm: int, torch: Any) -> None:
    """Limits, the learner's uid and no capabilities; only ``keep`` (and stdin, stdout, stderr) stays open."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)  # printed output goes to a pipe; past a cap the sandbox discards it
    os.dup2(output_fd, 2)
    kept = sorted(set(keep))  # only these pipes stay open, never the protocol
    for low, high in zip([2, *kept], [*kept, 1 << 16], strict=True):
        os.closerange(low + 1, high)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _limit(resource.RLIMIT_FSIZE, cfg["max_file_bytes"])
    _limit(resource.RLIMIT_CPU, cpu, cpu_hard)
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


def _tools() -> tuple[Any, ...]:
    """The executor and the plain-data format, bound before any learner code is imported: patching these
    modules' attributes later changes nothing."""
    from exercises.checks.program import Ref, StepFailed, run_program
    from exercises.checks.wire import decode, encode

    return run_program, decode, encode, Ref, StepFailed


def _answer(job: dict[str, Any], progress_fd: int, tools: tuple[Any, ...]) -> bytes:
    """Run one job's program; the payload to send back (never raises)."""
    run_program, decode, encode, ref_type, step_failed = tools
    payload: dict[str, Any]
    try:
        if job.get("compile"):
            import py_compile

            for path in job["compile"]:
                py_compile.compile(path, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        steps = decode(job["steps"], ref_type)
        fetches = {k: decode(v, ref_type) for k, v in job["fetches"].items()}
        try:
            def on_step(index: int) -> None:
                try:
                    os.write(progress_fd, f"{index}\n".encode())
                except OSError:
                    pass

            values = run_program(steps, fetches, catch=(BaseException,), on_step=on_step,
                                 forbidden=[str(n) for n in job.get("forbidden", [])])
            payload = {"ok": True, "values": encode(values, lenient=True)}
        except step_failed as exc:
            payload = {"ok": False, "target": exc.target, "error_type": exc.error_type,
                       "message": exc.message, "trace": exc.trace}
        return json.dumps(payload).encode()
    except BaseException as exc:  # anything else: still answer, as plainly as possible
        return json.dumps({"ok": False, "target": "(grader)", "error_type": type(exc).__name__,
                           "message": str(exc)[:1000], "trace": ""}).encode()


def _send(fd: int, data: bytes) -> None:
    """One frame: the length (16 hex digits), then the data; complete even if children hold the pipe."""
    view = memoryview(f"{len(data):016x}".encode() + data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except OSError:
            break


def run_learner(job: dict[str, Any], cfg: dict[str, Any], fds: tuple[int, int, int], torch: Any,
                base_vm: int) -> None:
    """In the learner process of one test: limit, run the program, write the payload, and exit."""
    tools = _tools()
    result_fd, progress_fd, output_fd = fds
    try:
        cpu = int(job.get("timeout", cfg["timeout"])) + 1
        _become_learner(cfg, (result_fd, progress_fd), output_fd, cpu, cpu + 1, base_vm, torch)
        data = _answer(job, progress_fd, tools)
    except BaseException as exc:
        data = json.dumps({"ok": False, "target": "(grader)", "error_type": type(exc).__name__,
                           "message": str(exc)[:1000], "trace": ""}).encode()
    _send(result_fd, data)
    os._exit(0)


def _read_line(fd: int, buffer: bytearray) -> bytes | None:
    """The next line from ``fd`` (``None`` at its end); ``buffer`` keeps what was read past it."""
    while b"\n" not in buffer:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


def group_learner(cfg: dict[str, Any], fds: tuple[int, int, int, int], torch: Any, base_vm: int,
                  cpu_hard: int, baseline: Baseline) -> None:
    """In the learner process of a group: take one job at a time from the zygote, answer it, put the
    process back into its baseline state, and say ``ready`` (or why the group must end)."""
    tools = _tools()
    job_fd, result_fd, progress_fd, output_fd = fds
    try:
        _become_learner(cfg, (job_fd, result_fd, progress_fd, output_fd), output_fd, cpu_hard, cpu_hard, base_vm,
                        torch)
        baseline.enter(keep=(0, 1, 2, job_fd, result_fd, progress_fd, output_fd), output_fd=output_fd)
    except BaseException as exc:
        _send(result_fd, json.dumps({"retire": f"the group could not start: {type(exc).__name__}: {exc}"}).encode())
        os._exit(0)
    _send(result_fd, b'{"ready": true}')
    buffer = bytearray()
    while True:
        line = _read_line(job_fd, buffer)
        if line is None:
            os._exit(0)
        job = json.loads(line)
        _limit(resource.RLIMIT_CPU, int(_cpu_seconds() + float(job.get("timeout", cfg["timeout"]))) + 1, cpu_hard)
        _send(result_fd, _answer(job, progress_fd, tools))
        try:
            why = baseline.restore()
        except BaseException as exc:  # whatever the test left broke the restoring itself
            why = f"restoring the process failed ({type(exc).__name__})"
        _send(result_fd, json.dumps({"retire": why}).encode() if why else b'{"ready": true}')
        if why:
            os._exit(0)


# ----------------------------------------------------------------------------- a group's baseline

# Namespaces whose attributes no test may change for the next one: the standard library the executor
# and the judges' data path use, numpy, torch's public modules and classes, the course's own modules.
WATCHED_MODULES = (
    "builtins", "sys", "os", "posixpath", "io", "json", "json.encoder", "json.decoder", "base64", "binascii",
    "signal", "gc", "math", "cmath", "operator", "random", "functools", "itertools", "collections", "copy",
    "warnings", "threading", "time", "types", "importlib", "contextlib", "abc", "typing", "dataclasses", "re",
    "numpy", "numpy.random", "numpy.linalg", "numpy.fft", "numpy.testing",
    "torch", "torch.nn", "torch.nn.functional", "torch.nn.init", "torch.nn.parameter", "torch.nn.modules.module",
    "torch.autograd", "torch.autograd.grad_mode", "torch.autograd.function", "torch.linalg", "torch.fft",
    "torch.special", "torch.random", "torch.functional", "torch._tensor", "torch.overrides", "torch.testing",
    "torch.optim", "torch.optim.optimizer", "torch.optim.lr_scheduler", "torch.utils", "torch.utils.data",
    "torch.backends", "__main__",
)
CLASS_SOURCES = ("torch.nn", "torch.optim", "torch.optim.lr_scheduler", "torch.utils.data", "torch.autograd")
IGNORED_KEYS = {"__warningregistry__"}  # written by the warnings machinery into any module that warns
_MISSING = object()


def _watched() -> list[tuple[str, Any]]:
    """``(name, namespace)`` for every module and class a test must leave as it found them."""
    found: dict[int, tuple[str, Any]] = {}
    for name, module in list(sys.modules.items()):
        if module is not None and (name in WATCHED_MODULES or name == "exercises" or name.startswith("exercises.")):
            found[id(module)] = (name, module.__dict__)
    torch = sys.modules.get("torch")
    classes = [torch.Tensor, torch.nn.Parameter] if torch is not None else []
    for source in CLASS_SOURCES:
        module = sys.modules.get(source)
        for value in list(vars(module).values()) if module is not None else []:
            if isinstance(value, type) and value.__flags__ & (1 << 9):  # Py_TPFLAGS_HEAPTYPE: a Python class
                classes.append(value)
    for cls in classes:
        found[id(cls)] = (f"{cls.__module__}.{cls.__qualname__}", cls.__dict__)
    return list(found.values())


def _dict_version_reader() -> Any:
    """``read(address)``: the version tag of the dict at ``address`` (CPython's PEP 509 tag, changed by
    every modification of the dict), read without touching its items; ``None`` where this interpreter
    has no such tag. It makes telling whether hundreds of namespaces are untouched cost microseconds."""
    if sys.implementation.name != "cpython" or not (3, 8) <= sys.version_info[:2] <= (3, 12):
        return None
    offset = 2 * ctypes.sizeof(ctypes.c_void_p) + ctypes.sizeof(ctypes.c_ssize_t)  # after PyObject_HEAD, ma_used

    def read(address: int) -> int:
        return ctypes.c_uint64.from_address(address + offset).value

    probe: dict[str, int] = {}
    versions = [read(id(probe))]
    for value in (1, 2):
        probe["x"] = value
        versions.append(read(id(probe)))
    return read if len(set(versions)) == 3 else None


def _underlying_dict(namespace: Any) -> dict[str, Any] | None:
    """The dict behind a module's ``__dict__`` (itself) or a class's (behind its mappingproxy)."""
    if type(namespace) is dict:
        return namespace
    import gc

    found = [r for r in gc.get_referents(namespace) if type(r) is dict]
    return found[0] if len(found) == 1 else None


def _others_in_namespace() -> bool:
    """Whether any process but this one (init) lives in this PID namespace, from its own /proc."""
    try:
        return any(name.isdigit() and name != "1" for name in os.listdir("/proc"))
    except OSError:
        return True


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


class Baseline:
    """A group's process as a fresh fork of the zygote has it, recorded before any learner code runs;
    ``restore()`` brings the process back to it after each test, or says what it cannot undo.

    Restored: the learner's modules (imported afresh by the next test), ``sys.modules``, the import
    path, the random generators of torch, numpy and ``random``, torch's global settings (default dtype,
    grad mode, deterministic algorithms, anomaly mode, threads, matmul precision, cuDNN and oneDNN
    flags, print options), numpy's error handling and print options, warnings filters, signal handlers
    and timers, tracing, the environment, umask, working folder (emptied), resource limits' soft values,
    recursion limit, garbage collector, standard streams and descriptors; every process the test
    started is killed. Not undoable, so ending the group: a thread still running, an attribute of a
    watched module or class (``WATCHED_MODULES``, ``CLASS_SOURCES``, the course's own modules) set,
    replaced or deleted, torch's global hooks or modes left installed, a resource limit lowered, a
    file in the working folder that cannot be removed.
    """

    def __init__(self, package_root: str, torch: Any) -> None:
        """Record what every group's process shares, once, in the zygote (its forks inherit it for free)."""
        import gc
        import random
        import warnings

        import numpy

        self.torch, self.numpy, self.random, self.warnings = torch, numpy, random, warnings
        self.root = os.path.realpath(package_root) + os.sep
        self.modules = dict(sys.modules)
        self.watched = [(name, live, dict(live)) for name, live in _watched()]
        self.read_version = _dict_version_reader()
        dicts = [_underlying_dict(live) for _, live, _ in self.watched]
        self.addresses = [id(d) if d is not None else 0 for d in dicts]
        self.versions = [self.read_version(a) if self.read_version and a else -1 for a in self.addresses]
        self.paths = (list(sys.path), list(sys.meta_path), list(sys.path_hooks))
        self.environ = dict(os.environ)
        self.environ_data = dict(getattr(os.environ, "_data", {}))  # (bytes: compared without decoding)
        self.sys_settings = (sys.getrecursionlimit(), sys.getswitchinterval(), sys.get_int_max_str_digits())
        self.filters = list(warnings.filters)
        self.gc = (gc.isenabled(), gc.get_threshold())
        self.settings = [(get, put, get()) for get, put in self._settings()]
        self.checks = [(what, get, get()) for what, get in self._checks()]
        self.numpy_state = (numpy.geterr(), numpy.get_printoptions())
        self.print_options = dict(vars(torch._tensor_str.PRINT_OPTS))
        self.hooks = self._hook_sizes()

    def enter(self, keep: tuple[int, ...], output_fd: int) -> None:
        """Record, in a group's process before its first test, what it has of its own: descriptors,
        working folder, umask, signal handlers, resource limits, standard streams, threads."""
        self.keep, self.output_fd = set(keep), output_fd
        self.cwd = os.getcwd()
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.signals = {}
        for number in signal.valid_signals():
            try:
                handler = _signal.getsignal(number)  # (the C function: no enum to build)
            except (ValueError, OSError):
                continue
            if handler is not None:
                self.signals[number] = handler
        self.limits = {}
        for name in ("RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_CORE", "RLIMIT_STACK",
                     "RLIMIT_DATA", "RLIMIT_MEMLOCK"):
            which = getattr(resource, name, None)
            if which is not None:
                self.limits[which] = resource.getrlimit(which)
        self.streams = (sys.stdin, sys.stdout, sys.stderr)
        self.threads = _thread_count()
        self.rng = (self.torch.get_rng_state(), self.random.getstate(), self.numpy.random.get_state())
        for index, address in enumerate(self.addresses):  # what forking itself changed (threading's locks, say)
            if self.read_version is None or not address or self.read_version(address) != self.versions[index]:
                name, live, _ = self.watched[index]
                self.watched[index] = (name, live, dict(live))
                if self.read_version is not None and address:
                    self.versions[index] = self.read_version(address)

    def _settings(self) -> list[tuple[Any, Any]]:
        """Global settings of torch with a getter and a setter: restored after every test."""
        torch = self.torch
        settings = [
            (torch.get_default_dtype, torch.set_default_dtype),
            (torch.is_grad_enabled, torch.set_grad_enabled),
            (lambda: (torch.are_deterministic_algorithms_enabled(),
                      torch.is_deterministic_algorithms_warn_only_enabled()),
             lambda v: torch.use_deterministic_algorithms(v[0], warn_only=v[1])),
            (lambda: (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled()),
             lambda v: torch.set_anomaly_enabled(*v)),
            (torch.get_num_threads, torch.set_num_threads),
            (torch.get_float32_matmul_precision, torch.set_float32_matmul_precision),
        ]
        for owner, attr in ((torch.backends.cudnn, "deterministic"), (torch.backends.cudnn, "benchmark"),
                            (torch.backends.cudnn, "enabled"), (torch.backends.mkldnn, "enabled")):
            settings.append((lambda o=owner, a=attr: getattr(o, a), lambda v, o=owner, a=attr: setattr(o, a, v)))
        return settings

    def _checks(self) -> list[tuple[str, Any]]:
        """Global state of torch that cannot be set back from here: a test that changes it ends the group."""
        torch = self.torch
        return [
            ("inference mode", torch.is_inference_mode_enabled),
            ("autocast", lambda: torch.is_autocast_enabled("cpu")),
            ("a torch function mode", torch._C._len_torch_function_stack),
            ("a torch dispatch mode", torch._C._len_torch_dispatch_stack),
            ("interop threads", torch.get_num_interop_threads),
        ]

    def _hook_sizes(self) -> tuple[int, ...]:
        hooks = sys.modules.get("torch.nn.modules.module")
        names = sorted(n for n in vars(hooks) if n.startswith("_global_")) if hooks is not None else []
        return tuple(len(getattr(hooks, n)) if hasattr(getattr(hooks, n), "__len__") else -1 for n in names)

    def restore(self) -> str:
        """``""`` when the process is back to its baseline; otherwise what a test left that cannot be undone."""
        if os.getpid() != 1:  # only init of its own PID namespace may (and must) kill everything else in it
            return "the group's process is not init of a PID namespace"
        if _others_in_namespace():
            try:
                os.kill(-1, signal.SIGKILL)  # as init of its PID namespace: every other process in it
            except OSError:
                pass
            while True:
                try:
                    os.waitpid(-1, 0)
                except OSError:  # ChildProcessError: none left
                    break
            if _others_in_namespace():
                return "a process it started could not be ended"
        if _thread_count() != self.threads:
            return "a thread it started was still running"
        for which in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
            signal.setitimer(which, 0)
        for number, handler in self.signals.items():
            if _signal.getsignal(number) is not handler:
                _signal.signal(number, handler)
        sys.settrace(None)
        sys.setprofile(None)
        self._restore_streams()
        self._restore_modules()
        for which, (soft, hard) in self.limits.items():
            now = resource.getrlimit(which)
            if now[1] != hard:
                return "a resource limit was lowered"
            if now[0] != soft:
                resource.setrlimit(which, (soft, hard))
        if getattr(os.environ, "_data", None) != self.environ_data:
            os.environ.clear()
            os.environ.update(self.environ)
        os.umask(self.umask)
        os.chdir(self.cwd)
        if not _empty_folder(self.cwd):
            return "it left files that cannot be removed"
        recursion, switch, digits = self.sys_settings
        sys.setrecursionlimit(recursion)
        sys.setswitchinterval(switch)
        sys.set_int_max_str_digits(digits)
        self.warnings.filters[:] = self.filters
        self.warnings._filters_mutated()
        import gc

        (gc.enable if self.gc[0] else gc.disable)()
        gc.set_threshold(*self.gc[1])
        torch_state, random_state, numpy_state = self.rng
        self.torch.set_rng_state(torch_state)
        self.random.setstate(random_state)
        self.numpy.random.set_state(numpy_state)
        for get, put, value in self.settings:  # (before looking at namespaces: some settings live there too)
            if get() != value:
                put(value)
        self.torch.set_flush_denormal(False)
        errors, options = self.numpy_state
        self.numpy.seterr(**errors)
        if self.numpy.get_printoptions() != options:
            self.numpy.set_printoptions(**options)
        vars(self.torch._tensor_str.PRINT_OPTS).update(self.print_options)
        for what, get, value in self.checks:
            if get() != value:
                return f"{what} was left changed"
        if self._hook_sizes() != self.hooks:
            return "a global module hook of torch.nn was left registered"
        return self._changed_namespace()

    def _restore_streams(self) -> None:
        for stream in (sys.stdout, sys.stderr, *self.streams[1:]):
            try:
                stream.flush()
            except Exception:
                pass
        sys.stdin, sys.stdout, sys.stderr = self.streams
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(self.output_fd, 1)
        os.dup2(self.output_fd, 2)
        try:
            open_fds = [int(n) for n in os.listdir("/proc/self/fd")]
        except OSError:
            open_fds = list(range(3, 1024))
        for fd in open_fds:
            if fd not in self.keep:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _restore_modules(self) -> None:
        """Forget every module the test imported from the submission (or made up), so that the next test
        imports the learner's code afresh; put back any module of the baseline it replaced or removed.
        A library module imported lazily stays (and joins the baseline)."""
        new = []
        for name in reversed(sys.modules):  # what a test imports lies at the end: look there first
            if name in self.modules:
                break
            new.append(name)
        self._forget(new)
        if len(sys.modules) != len(self.modules):  # something else than imports changed: look at everything
            self._forget([n for n in sys.modules if n not in self.modules])
            for name, module in self.modules.items():
                if sys.modules.get(name) is not module:
                    sys.modules[name] = module
            for name in [n for n in sys.modules if n not in self.modules]:
                del sys.modules[name]
        path, meta_path, path_hooks = self.paths
        sys.path[:] = path
        sys.meta_path[:] = meta_path
        sys.path_hooks[:] = path_hooks

    def _forget(self, names: list[str]) -> None:
        for name in names:
            module = sys.modules[name]
            spec = getattr(module, "__spec__", None)
            origin = getattr(spec, "origin", None)
            filename = getattr(module, "__file__", None)
            if origin in ("built-in", "frozen") or (isinstance(filename, str)
                                                    and not os.path.realpath(filename).startswith(self.root)):
                self.modules[name] = module  # a library module imported lazily: as if the zygote had it
                continue
            del sys.modules[name]
            parent, _, child = name.rpartition(".")
            owner = sys.modules.get(parent)
            if owner is not None and getattr(owner, child, None) is module:
                try:
                    delattr(owner, child)
                except (AttributeError, TypeError):
                    pass

    def _changed_namespace(self) -> str:
        read, versions = self.read_version, self.versions
        changed = (range(len(self.addresses)) if read is None else
                   [i for i, address in enumerate(self.addresses) if not address or read(address) != versions[i]])
        for index in changed:  # the others were not modified since the baseline (or last found equal to it)
            address = self.addresses[index]
            why = self._compare(index)
            if why:
                return why
            if read is not None and address:
                self.versions[index] = read(address)
        return ""

    def _compare(self, index: int) -> str:
        """What differs between watched namespace ``index`` and its baseline, item by item."""
        name, live, snapshot = self.watched[index]
        for key, value in snapshot.items():
            if key not in IGNORED_KEYS and live.get(key, _MISSING) is not value:
                return f"{name}.{key} was changed"
        if len(live) != len(snapshot):
            for key, value in list(live.items()):
                if key in snapshot or key in IGNORED_KEYS:
                    continue
                if not (type(value).__name__ == "module" and sys.modules.get(f"{name}.{key}") is value):
                    return f"{name}.{key} was added"
        return ""


def _empty_folder(path: str) -> bool:
    """Remove everything in ``path`` (the test's scratch folder); True if it is empty after."""
    for base, dirs, files in os.walk(path, topdown=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(base, d))]:
            try:
                os.unlink(os.path.join(base, name))
            except OSError:
                pass
        for name in dirs:
            try:
                os.chmod(os.path.join(base, name), 0o700)
                os.rmdir(os.path.join(base, name))
            except OSError:
                pass
    try:
        return not os.listdir(path)
    except OSError:
        return False


# ----------------------------------------------------------------------------- jobs, in forks

READY = b'{"ready": true}'


class _Channel:
    """The zygote's end of a learner process's pipes: framed results, and printed output kept up to a cap."""

    def __init__(self, result_fd: int, output_fd: int, max_bytes: int) -> None:
        self.result_fd, self.output_fd, self.max_bytes = result_fd, output_fd, max_bytes
        self.buffer = bytearray()
        self.output, self.output_total, self.output_open = b"", 0, True

    def _read_output(self) -> None:
        chunk = os.read(self.output_fd, 1 << 16)
        self.output_open = bool(chunk)
        self.output_total += len(chunk)
        if len(self.output) < MAX_OUTPUT:
            self.output += chunk[: MAX_OUTPUT - len(self.output)]

    def frame(self, deadline: float) -> tuple[str, bytes]:
        """The next frame by ``deadline``: ``("ok", data)``, else ``("timeout" | "eof" | "garbled" | "too_large",
        b"")``."""
        while True:
            if len(self.buffer) >= 16:
                head = bytes(self.buffer[:16])
                if head.strip(b"0123456789abcdef"):
                    return "garbled", b""  # not our framing: the learner wrote to its own result pipe
                size = int(head, 16)
                if size > self.max_bytes:
                    return "too_large", b""
                if len(self.buffer) >= 16 + size:
                    data = bytes(self.buffer[16:16 + size])
                    del self.buffer[:16 + size]
                    return "ok", data
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", b""
            ready, _, _ = select.select([self.result_fd] + ([self.output_fd] if self.output_open else []), [], [],
                                        remaining)
            if self.output_fd in ready:
                self._read_output()
            if self.result_fd in ready:
                chunk = os.read(self.result_fd, 1 << 16)
                if not chunk:
                    return "eof", b""  # the learner process ended before its payload was complete
                self.buffer += chunk

    def take_output(self) -> tuple[str, int]:
        """What was printed since the last call (kept up to ``MAX_OUTPUT`` bytes) and how many bytes in all."""
        while self.output_open and select.select([self.output_fd], [], [], 0)[0]:
            self._read_output()
        text, total = self.output.decode("utf-8", errors="replace"), self.output_total
        self.output, self.output_total = b"", 0
        return text, total


def _finish(pid: int, grace: float) -> int:
    """Let the learner process exit for up to ``grace`` seconds (to tell how it ended), kill what is left
    of its process group, reap it; its exit code."""
    wait_status = None
    until = time.monotonic() + grace
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
    return os.waitstatus_to_exitcode(wait_status)


def _reply(status: str, data: bytes, channel: _Channel, progress_fd: int, start: float, exit_code: int | None,
           position: int | None = None) -> dict[str, Any]:
    payload = data.decode("utf-8", errors="replace") if status == "ok" else ""
    if status == "eof":
        status = "no_result"
    elif status == "garbled":
        status, payload = "ok", "garbled"
    output, output_bytes = channel.take_output()
    reply = {"status": status, "payload": payload, "output": output, "output_bytes": output_bytes,
             "exit_code": exit_code, "seconds": round(time.monotonic() - start, 4), "step": _last_step(progress_fd)}
    if position is not None:
        reply["position"] = position
    return reply


def _pipes(count: int) -> list[tuple[int, int]]:
    return [os.pipe() for _ in range(count)]


def run_job(job: dict[str, Any], cfg: dict[str, Any], torch: Any, pidns: PidNamespaces | None = None) -> dict[str, Any]:
    """Fork the learner process of one test, collect its payload and printed output until the deadline,
    kill what is left, report."""
    jobdir = None
    if not cfg.get("view"):  # without the view: a folder of its own in the zygote's working folder
        jobdir = tempfile.mkdtemp(prefix="job-", dir=cfg["workdir"])
        if cfg.get("learner_uid") is not None:
            os.chown(jobdir, cfg["learner_uid"], cfg["learner_uid"])
    timeout = float(job.get("timeout", cfg["timeout"]))
    (result_read, result_write), (progress_read, progress_write), (output_read, output_write) = _pipes(3)
    os.set_blocking(progress_write, False)
    base_vm = _vm_size()
    own_pidns = pidns is not None and pidns.enter()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (result_read, progress_read, output_read):
                os.close(fd)
            os.setpgid(0, 0)
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if jobdir is None:
                _private_mounts(cfg, own_pidns)
            else:
                os.chdir(jobdir)
                if own_pidns:
                    _fresh_proc()
            run_learner(job, cfg, (result_write, progress_write, output_write), torch, base_vm)
        finally:
            os._exit(70)
    if own_pidns:
        pidns.leave()
    for fd in (result_write, progress_write, output_write):
        os.close(fd)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    channel = _Channel(result_read, output_read, cfg["max_result_bytes"])
    status, data = channel.frame(start + timeout)
    exit_code = _finish(pid, 0.5 if status == "ok" else 0.0)
    reply = _reply(status, data, channel, progress_read, start, exit_code)
    for fd in (result_read, output_read, progress_read):
        os.close(fd)
    if jobdir is not None:
        _remove_tree(jobdir)
    return reply


def _send_line(fd: int, data: bytes, deadline: float) -> str:
    """Write ``data`` to the non-blocking ``fd`` by ``deadline``: ``"ok"``, ``"timeout"`` or ``"eof"``."""
    view = memoryview(data)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        if select.select([], [fd], [], remaining)[1]:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                continue
            except OSError:
                return "eof"
    return "ok"


def run_group(jobs: list[dict[str, Any]], cfg: dict[str, Any], torch: Any, pidns: PidNamespaces,
              baseline: Baseline) -> dict[str, Any]:
    """The jobs of one group in one learner process (``group_learner``), each under its own time limit
    and sent only once the previous one's result is in. Returns ``{"replies", "ended"}``: a reply per
    job (with its ``position`` in the process), ``None`` for those the process did not get to, and why
    it ended early (``""`` if it did not)."""
    replies: list[dict[str, Any] | None] = [None] * len(jobs)
    timeouts = [float(job.get("timeout", cfg["timeout"])) for job in jobs]
    pipes = _pipes(4)
    (job_read, job_write), (result_read, result_write), (progress_read, progress_write), (output_read, output_write) \
        = pipes
    os.set_blocking(progress_write, False)
    os.set_blocking(job_write, False)
    base_vm = _vm_size()
    if not pidns.enter():
        for fd in (fd for pair in pipes for fd in pair):
            os.close(fd)
        return {"replies": replies, "ended": "no PID namespace for the group"}
    cpu_hard = int(sum(timeouts)) + 2 * len(jobs) + 2
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (job_write, result_read, progress_read, output_read):
                os.close(fd)
            os.setpgid(0, 0)
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            _private_mounts(cfg, True)
            group_learner(cfg, (job_read, result_write, progress_write, output_write), torch, base_vm, cpu_hard,
                          baseline)
        finally:
            os._exit(70)
    pidns.leave()
    for fd in (job_read, result_write, progress_write, output_write):
        os.close(fd)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    channel = _Channel(result_read, output_read, cfg["max_result_bytes"])
    status, data = channel.frame(time.monotonic() + READY_GRACE)
    ended = "" if (status, data) == ("ok", READY) else _why_not_ready(status, data)
    exit_code = None
    for index, job in enumerate(jobs if not ended else []):
        start = time.monotonic()
        deadline = start + timeouts[index]
        status = _send_line(job_write, json.dumps(job).encode() + b"\n", deadline)
        if status == "ok":
            status, data = channel.frame(deadline)
        if status != "ok":
            exit_code = _finish(pid, 0.0)
            replies[index] = _reply(status, b"", channel, progress_read, start, exit_code, index)
            ended = f"test {index + 1} of the group ended it ({replies[index]['status']})"
            break
        replies[index] = _reply(status, data, channel, progress_read, start, None, index)
        if index + 1 < len(jobs):
            status, data = channel.frame(time.monotonic() + READY_GRACE)
            if (status, data) != ("ok", READY):
                ended = _why_not_ready(status, data)
                break
    if exit_code is None:
        _finish(pid, 0.0)
    for fd in (job_write, result_read, output_read, progress_read):
        os.close(fd)
    return {"replies": replies, "ended": ended}


def _why_not_ready(status: str, data: bytes) -> str:
    if status == "ok":
        try:
            return str(json.loads(data)["retire"])[:300]
        except (ValueError, KeyError, TypeError):
            return "the group's process sent something else than its readiness"
    return f"the group's process did not get ready for its next test ({status})"


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
    """The index of the last step the learner's process started, from its progress pipe (read to its end)."""
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

INSTALLATION: dict[str, list[str]] = {"dirs": [], "files": []}  # measured by the fork server (``serve``)


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
    view = isolate(cfg, sync, iso)
    if sync is not None:
        for fd in sync:
            os.close(fd)
    if view:
        package_root, work = PACKAGE_DIR, SCRATCH_DIR
    else:
        work = tempfile.mkdtemp(prefix="grade-sandbox-")
        if iso.flags.get("learner_uid") is not None:
            os.chown(work, NOBODY, NOBODY)
        package_root = os.path.join(work, "package")
    write_package(files, package_root)
    del files
    mode = iso.flags.get("mode")
    if view and mode == "user":
        lock_mounts(iso)
    elif view and iso.flags.get("learner_uid") is not None:
        iso.grant("locked", "the view cannot be lifted (learner code runs as nobody without capabilities, and a "
                            "namespace it makes gets locked copies of the view)")
    elif view:
        iso.refuse("locked", "locking the view (learner code runs as root)")
    owns_pid_namespace = mode == "root" or (os.geteuid() == 0 and mode is None)
    if mode == "user" and _unshare(CLONE_NEWPID):
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
    os.chdir("/" if view else work)
    os.environ.update({"HOME": work, "TMPDIR": work})
    tempfile.tempdir = None
    cfg = dict(cfg, workdir=work, view=view, package_root=package_root)
    if "learner_uid" in iso.flags:
        cfg["learner_uid"] = iso.flags["learner_uid"]
    pidns: PidNamespaces | None = None
    try:
        pidns = PidNamespaces(owns_pid_namespace, cfg)
    except OSError:
        pass
    cfg["pid_namespace"] = pidns is not None and pidns.available
    if cfg["pid_namespace"]:
        iso.grant("pid_namespace", "a PID namespace per test with its own /proc (ending a test ends every process "
                                   "it started)")
    else:
        iso.refuse("pid_namespace", "PID namespaces (processes a test starts are killed through its process group)")
    grouped = bool(cfg.get("group", True) and cfg["pid_namespace"] and view)
    iso.flags["grouped"] = grouped
    if "unprivileged" in iso.on:
        iso.grant("process_limit", f"at most {cfg['max_processes']} processes")
    else:
        iso.refuse("process_limit", "a process limit (RLIMIT_NPROC does not bind root)")
    iso.grant("limits", "no capabilities, a time, CPU, memory, file-size and output limit per test")
    restrict_imports(package_root, cfg["hide"])
    # The course's own modules (never the learner's: staging keeps the official copies), loaded once.
    import exercises.checks.program  # noqa: F401  (the executor)
    import exercises.checks.wire  # noqa: F401  (the plain-data format)
    import exercises.kit.validate  # noqa: F401  (what every exercise module imports)

    if cfg.get("learner_uid") is not None:
        for base, dirs, names in os.walk(package_root):
            for name in dirs + names:
                os.chown(os.path.join(base, name), cfg["learner_uid"], cfg["learner_uid"])
    # Compile the learner's files once, in a jailed test process (compiling never runs the code, but the
    # zygote touches nothing of the learner's); every test then imports from the bytecode. (The course's
    # own modules come compiled.)
    import importlib.util

    sources = sorted(os.path.join(base, name) for base, _, names in os.walk(package_root) for name in names
                     if name.endswith(".py"))
    learners = [path for path in sources if not os.path.exists(importlib.util.cache_from_source(path))]
    compiled = run_job({"compile": learners, "steps": [], "fetches": {}, "timeout": cfg["timeout"]}, cfg, torch,
                       pidns)
    iso.flags["precompiled"] = compiled["status"] == "ok"
    if view:
        try:  # from now on nobody writes there: a test cannot leave anything for the next one
            _mount(None, PACKAGE_DIR, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        except OSError as exc:
            iso.on.pop("filesystem", None)
            iso.refuse("filesystem", f"a read-only submission in the view ({exc.strerror})")
    baseline = Baseline(package_root, torch) if grouped else None  # what every group's process starts from
    import gc

    gc.collect()
    gc.freeze()  # the garbage collector of a test's process leaves these objects (and their pages) alone

    protocol_out.write(json.dumps({"ready": True, "isolation": iso.report(), "record": iso.record(),
                                   "flags": iso.flags, "pid": os.getpid()}) + "\n")
    protocol_out.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if "group" in request:
            jobs = request["group"]
            reply: dict[str, Any] = (run_group(jobs, cfg, torch, pidns, baseline) if baseline and pidns
                                     else {"replies": [None] * len(jobs), "ended": "tests are not grouped here"})
        else:
            reply = run_job(request, cfg, torch, pidns)
        protocol_out.write(json.dumps(reply) + "\n")
        protocol_out.flush()
    if not view:
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
    """Whether an unprivileged uid can read the Python installation's view (it must, to import lazily)."""
    for path in INSTALLATION["dirs"] + INSTALLATION["files"]:
        st = os.stat(path)
        if not st.st_mode & stat.S_IROTH or (stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH):
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
        for value in vars(torch.optim).values():  # each optimizer class patches its own step once, when first used
            if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
                try:
                    value([param], lr=0.1)
                except Exception:
                    pass
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
    """The fork server: import torch once, measure what it needs, then fork a zygote for every request."""
    server = socket.socket(fileno=sock_fd)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    import numpy  # noqa: F401
    import torch

    warm_up(torch)
    INSTALLATION.update(measure_installation())

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
            pid, pidfd = spawn_zygote(dict(request["cfg"], installation=INSTALLATION), fds, server, torch)
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
