"""Getting a dataset file onto this machine, safely: local copies first, then verified downloads.

``fetch(spec)`` returns the path of a file you can trust, looking in this order:

1. **Local mirrors**: the folders in the environment variable ``COURSE_DATA_MIRROR`` (several are
   separated by ``os.pathsep``, ``:`` on Linux and macOS) and any passed as ``mirrors=``. A file may
   sit directly in a mirror folder or in a subfolder named after its dataset (``mnist/``,
   ``fashion-mnist/``, ``cifar10/``). Mirrors are read, never written.
2. **The cache**: ``<root>/<dataset>/<file>``, where ``root`` is the argument, else the environment
   variable ``COURSE_DATA_DIR``, else ``~/.cache/deep-practice/datasets``.
3. **The network**, if ``download`` is true: each URL of the spec in order, until one works.

What is trusted:

* A **download** must answer HTTP 200, deliver as many bytes as it announced, and have the SHA-256
  published for the official file. It is written to a temporary file beside its destination and
  renamed into place only when all of that holds, so an interrupted or corrupted download never
  leaves a file that a later run would accept. A failed mirror is reported and the next one tried.
* A **cached or local copy** is accepted when its SHA-256 is the official one, or, when the spec can
  verify content (``verify_content``), when its *content* is the official content: a recompressed
  copy of the same data (for example an IDX file gzipped again by a Linux distribution) is accepted,
  a truncated, different or garbled one is not. A cached copy that fails is reported as corrupted
  and downloaded again (it is replaced only once the new copy is verified); a mirror copy that fails
  is skipped with a warning and left alone.

Offline with no usable copy, ``DatasetUnavailable`` says which file is missing, where to put it, and
that the embedded dataset (``exercises.kit.datasets.load_embedded_mnist()``) works right now.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

MIRROR_ENV = "COURSE_DATA_MIRROR"
CACHE_ENV = "COURSE_DATA_DIR"
USER_AGENT = "deep-practice-course/0.1 (python urllib)"
_CHUNK = 1 << 20


class DatasetUnavailable(FileNotFoundError):
    """No trustworthy copy of a dataset file could be found or downloaded; the message says what to do."""


class DataWarning(UserWarning):
    """Something about a local copy or a mirror that you may want to know; loading went on."""


@dataclass(frozen=True)
class RemoteFile:
    """A dataset file: its name, the SHA-256 of the official file, and where it can be downloaded.

    ``verify_content(path)`` (optional) returns ``True`` when a local file whose bytes differ from
    the official file nevertheless holds the official content (say, the same data compressed again).
    """

    name: str
    sha256: str
    urls: tuple[str, ...]
    folder: str = ""
    size: int | None = None
    verify_content: Callable[[Path], bool] | None = None


def default_cache_dir() -> Path:
    """``$COURSE_DATA_DIR``, else ``$XDG_CACHE_HOME/deep-practice/datasets`` (``~/.cache/...`` by default)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "deep-practice" / "datasets"


def mirror_dirs(extra: Sequence[str | os.PathLike] | str | os.PathLike | None = None) -> list[Path]:
    """The local-mirror folders to look in: ``extra`` first, then those named in ``$COURSE_DATA_MIRROR``."""
    if extra is None:
        extra = []
    elif isinstance(extra, (str, os.PathLike)):
        extra = [extra]
    found = [Path(p).expanduser() for p in extra]
    found += [Path(p).expanduser() for p in os.environ.get(MIRROR_ENV, "").split(os.pathsep) if p.strip()]
    return found


def find_local_copy(name: str, folder: str = "", mirrors: Sequence[str | os.PathLike] | None = None) -> Path | None:
    """The first file called ``name`` in a local mirror (directly, or in its ``folder`` subfolder), or ``None``.

    Nothing is verified here: this is for files without a published checksum (your own data, or a
    copy in another format such as a folder of JPEGs).
    """
    for base in mirror_dirs(mirrors):
        for candidate in ([base / folder / name] if folder else []) + [base / name]:
            if candidate.is_file():
                return candidate
    return None


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _trusted(path: Path, spec: RemoteFile) -> bool:
    """Whether ``path`` holds the official file, or (when the spec can tell) the official content."""
    if sha256_file(path) == spec.sha256:
        return True
    if spec.verify_content is None:
        return False
    try:
        return bool(spec.verify_content(path))
    except Exception:  # unreadable, truncated, not the right format: not trusted
        return False


def fetch(
    spec: RemoteFile,
    root: str | os.PathLike | None = None,
    mirrors: Sequence[str | os.PathLike] | None = None,
    download: bool = True,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """The path of a verified copy of ``spec``: from a local mirror, the cache, or a download (module docstring).

    Raises ``DatasetUnavailable`` when there is none and none could be downloaded.
    """
    searched = mirror_dirs(mirrors)
    for base in searched:
        for candidate in ([base / spec.folder / spec.name] if spec.folder else []) + [base / spec.name]:
            if candidate.is_file():
                if _trusted(candidate, spec):
                    return candidate
                warnings.warn(f"ignoring {candidate}: it is not the official {spec.name} (its SHA-256 differs and "
                              "its content does not match the official data)", DataWarning, stacklevel=2)
    cache_dir = Path(root).expanduser() if root is not None else default_cache_dir()
    target = cache_dir / spec.folder / spec.name
    problems: list[str] = []
    if target.is_file():
        if _trusted(target, spec):
            return target
        problems.append(f"the cached copy {target} is corrupted (its SHA-256 is not the official one)")
        warnings.warn(f"{target} is corrupted; fetching it again", DataWarning, stacklevel=2)
    if download:
        for url in spec.urls:
            try:
                download_file(url, target, spec.sha256, size=spec.size, progress=progress, timeout=timeout)
                if problems:
                    warnings.warn(f"{spec.name}: " + "; ".join(problems) + f"; downloaded from {url} instead",
                                  DataWarning, stacklevel=2)
                return target
            except DownloadFailed as exc:
                problems.append(f"{url}: {exc}")
    raise DatasetUnavailable(_unavailable_message(spec, target, problems, download, searched))


def _unavailable_message(spec: RemoteFile, target: Path, problems: list[str], download: bool,
                         searched: list[Path]) -> str:
    looked = [str(m / spec.folder if spec.folder else m) for m in searched] or [f"(none set in ${MIRROR_ENV})"]
    lines = [f"{spec.name} is not available here" + ("" if download else " (downloads were turned off)") + "."]
    if problems:
        lines.append("What went wrong:")
        lines += [f"  - {p}" for p in problems]
    lines += [
        f"Looked in the local mirrors: {', '.join(looked)}; and in the cache: {target.parent}.",
        f"To work offline, download {spec.urls[0] if spec.urls else spec.name} on a machine with a network and put it",
        f"  in {target}",
        f"  or in a folder of your own named by the environment variable {MIRROR_ENV}"
        + (f" (directly, or in its '{spec.folder}/' subfolder)." if spec.folder else "."),
        "Meanwhile, the embedded dataset works right now, offline: exercises.kit.datasets.load_embedded_mnist() gives "
        "5,000 real MNIST digits.",
    ]
    return "\n".join(lines)


class DownloadFailed(OSError):
    """One download attempt failed; the message says how."""


def download_file(
    url: str,
    dest: str | os.PathLike,
    sha256: str,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, verified: HTTP 200, the announced length, and ``sha256``.

    The bytes go to a temporary file beside ``dest`` that is renamed to ``dest`` only once verified;
    on any failure it is removed and ``DownloadFailed`` says why. Temporary files left behind by a
    process that was killed are ignored by every reader and cleaned up here after a day.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(dest)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise DownloadFailed(f"cannot write to {dest.parent} ({exc.strerror or exc}); choose a writable cache "
                             f"folder with root=... or the environment variable {CACHE_ENV}") from None
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        received = 0
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
                fd = -1
                if response.status != 200:
                    raise DownloadFailed(f"HTTP {response.status} {response.reason}; expected 200 OK")
                announced = response.headers.get("Content-Length")
                total = int(announced) if announced and announced.isdigit() else size
                bar = _progress_bar(total, dest.name, progress)
                read = getattr(response, "read1", response.read)  # what has arrived, without waiting for a full chunk
                try:
                    while chunk := read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                finally:
                    bar.close()
                out.flush()
                os.fsync(out.fileno())
        except urllib.error.HTTPError as exc:
            raise DownloadFailed(f"HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError,
                ValueError) as exc:  # refused, timed out, cut off
            if isinstance(exc, DownloadFailed):
                raise
            reason = getattr(exc, "reason", None) or exc
            raise DownloadFailed(f"{type(exc).__name__}: {reason}"
                                 + (f" after {received:,} bytes" if received else "")) from None
        if announced and announced.isdigit() and received != int(announced):
            raise DownloadFailed(f"interrupted: received {received:,} of {int(announced):,} bytes")
        if digest.hexdigest() != sha256:
            raise DownloadFailed(f"wrong SHA-256 ({received:,} bytes received): {digest.hexdigest()} instead of "
                                 f"{sha256} (a corrupted file, or an error page instead of the data)")
        os.replace(tmp, dest)
        return dest
    finally:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)


def _remove_stale_parts(dest: Path, age_s: float = 86400.0) -> None:
    now = time.time()
    for part in dest.parent.glob(f".{dest.name}.*.part"):
        try:
            if now - part.stat().st_mtime > age_s:
                part.unlink()
        except OSError:
            pass


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int | None, name: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from exercises.kit.figures import progress_bar

    return progress_bar(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, leave=False)
