"""Downloads, checked: a local HTTP server on 127.0.0.1 plays the mirrors (never the internet).

Routes: ``/good/<f>`` serves the file, ``/missing`` answers 404, ``/error`` 500, ``/partial`` 206 with the
data, ``/corrupt`` 200 with other bytes of the same length, ``/html`` 200 with an error page,
``/truncated`` announces the full length and stops half-way, ``/slow`` sends half and then waits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from exercises.kit import datasets
from exercises.kit.datasets import load_cifar10, load_mnist
from exercises.kit.download import MIRROR_ENV, DatasetUnavailable, DataWarning, RemoteFile, fetch, find_local_copy
from grading import PROJECT_ROOT
from tests.test_datasets_formats import cifar_archive, idx_gz

PAYLOAD = bytes(range(256)) * 40  # 10 KiB


class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"tiny.bin": PAYLOAD}
        self.requests: list[str] = []
        self.stop = threading.Event()
        self.stalled = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                _, route, name = self.path.split("/", 2)
                body = outer.files.get(name)
                if body is None or route == "missing":
                    return self.send_error(404, "Not Found")
                if route == "error":
                    return self.send_error(500, "Internal Server Error")
                if route == "corrupt":
                    body = bytes(len(body))
                elif route == "html":
                    body = b"<html><body>403 Forbidden: rate limit exceeded</body></html>"
                self.send_response(206 if route == "partial" else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if route in ("truncated", "slow"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    outer.stalled.set()
                    while route == "slow" and not outer.stop.wait(0.05):
                        pass
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def spec(self, *routes: str, name: str = "tiny.bin", folder: str = "toy") -> RemoteFile:
        return RemoteFile(name, hashlib.sha256(self.files[name]).hexdigest(),
                          tuple(f"{self.url}/{r}/{name}" for r in routes), folder)

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", MIRROR_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    s = Server()
    yield s
    s.close()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_mirrors_are_tried_in_order_until_one_verifies(server: Server, tmp_path: Path) -> None:
    spec = server.spec("missing", "error", "corrupt", "html", "partial", "good")
    with pytest.warns(DataWarning) as caught:
        path = fetch(spec, root=tmp_path, progress=False)
    assert path == tmp_path / "toy" / "tiny.bin" and path.read_bytes() == PAYLOAD
    assert server.requests == [f"/{r}/tiny.bin" for r in ("missing", "error", "corrupt", "html", "partial", "good")]
    report = str(caught[-1].message)
    for words in ("HTTP 404", "HTTP 500", "wrong SHA-256", "error page", "HTTP 206", "expected 200"):
        assert words in report
    assert _leftovers(tmp_path) == ["tiny.bin"]  # no temporary file left behind


def test_a_second_fetch_uses_the_cache_without_the_network(server: Server, tmp_path: Path) -> None:
    fetch(server.spec("good"), root=tmp_path, progress=False)
    server.requests.clear()
    assert fetch(server.spec("good"), root=tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests == []


@pytest.mark.parametrize("route, words", [
    ("missing", "HTTP 404"), ("partial", "HTTP 206"), ("corrupt", "wrong SHA-256"), ("html", "an error page"),
    ("truncated", "interrupted: received 5,120 of 10,240 bytes"),
])
def test_a_failed_download_leaves_nothing_and_says_why(server: Server, tmp_path: Path, route: str, words: str) -> None:
    with pytest.raises(DatasetUnavailable) as error:
        fetch(server.spec(route), root=tmp_path, progress=False)
    assert words in str(error.value)
    assert _leftovers(tmp_path) == []
    # A later run downloads it properly.
    assert fetch(server.spec("good"), root=tmp_path, progress=False).read_bytes() == PAYLOAD


def test_a_download_killed_half_way_is_never_accepted_later(server: Server, tmp_path: Path) -> None:
    spec = server.spec("slow")
    code = (f"import sys; sys.path.insert(0, {str(PROJECT_ROOT)!r})\n"
            "from exercises.kit.download import RemoteFile, fetch\n"
            f"fetch(RemoteFile('tiny.bin', {spec.sha256!r}, {spec.urls!r}, 'toy'), root={str(tmp_path)!r}, "
            "progress=False)\n")
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "NO_PROXY": "127.0.0.1"})
    try:
        assert server.stalled.wait(30), "the download never started"
        time.sleep(0.3)  # let the child receive the first half
        assert child.poll() is None and [p.name for p in (tmp_path / "toy").iterdir()][0].endswith(".part")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert not (tmp_path / "toy" / "tiny.bin").exists()
    with pytest.raises(DatasetUnavailable, match="tiny.bin is not available here"):
        fetch(spec, root=tmp_path, download=False)
    assert fetch(server.spec("good"), root=tmp_path, progress=False).read_bytes() == PAYLOAD


def test_a_corrupted_cached_file_is_detected_and_fetched_again(server: Server, tmp_path: Path) -> None:
    cached = tmp_path / "toy" / "tiny.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(PAYLOAD[:-10] + b"garbage!!!")  # same size, wrong bytes
    with pytest.raises(DatasetUnavailable, match="cached copy .* is corrupted"), pytest.warns(DataWarning):
        fetch(server.spec("good"), root=tmp_path, download=False)
    assert cached.exists()  # kept until a verified replacement exists
    with pytest.warns(DataWarning, match="corrupted"):
        assert fetch(server.spec("good"), root=tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests == ["/good/tiny.bin"]


def test_a_local_mirror_is_used_before_any_network(server: Server, tmp_path: Path, monkeypatch) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "tiny.bin").write_bytes(PAYLOAD)
    assert fetch(server.spec("good"), root=tmp_path / "cache", mirrors=[mirror]) == mirror / "toy" / "tiny.bin"
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "tiny.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv(MIRROR_ENV, os.pathsep.join([str(tmp_path / "nowhere"), str(flat)]))
    assert fetch(server.spec("good"), root=tmp_path / "cache") == flat / "tiny.bin"
    assert find_local_copy("tiny.bin", "toy") == flat / "tiny.bin"
    assert server.requests == [] and not (tmp_path / "cache").exists()


def test_a_mirror_copy_that_does_not_verify_is_skipped_and_left_alone(server: Server, tmp_path: Path) -> None:
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "tiny.bin").write_bytes(b"something else")
    with pytest.warns(DataWarning, match="ignoring .*tiny.bin: it is not the official"):
        path = fetch(server.spec("good"), root=tmp_path / "cache", mirrors=[tmp_path / "mirror"], progress=False)
    assert path.read_bytes() == PAYLOAD and (tmp_path / "mirror" / "tiny.bin").read_bytes() == b"something else"


def test_offline_without_a_copy_says_what_is_missing_where_to_put_it_and_what_works_now(server: Server,
                                                                                         tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable) as error:
        fetch(server.spec("good"), root=tmp_path, download=False)
    message = str(error.value)
    assert "tiny.bin is not available here (downloads were turned off)" in message
    assert str(tmp_path / "toy" / "tiny.bin") in message and MIRROR_ENV in message and "'toy/' subfolder" in message
    assert "load_embedded_mnist()" in message
    assert isinstance(error.value, FileNotFoundError)


def test_no_network_at_all_lists_each_mirror_that_failed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    spec = RemoteFile("tiny.bin", hashlib.sha256(PAYLOAD).hexdigest(),
                      ("http://127.0.0.1:9/a/tiny.bin", "http://127.0.0.1:9/b/tiny.bin"), "toy")
    with pytest.raises(DatasetUnavailable) as error:
        fetch(spec, root=tmp_path, progress=False, timeout=5)
    message = str(error.value)
    assert "http://127.0.0.1:9/a/tiny.bin: URLError" in message and "http://127.0.0.1:9/b/tiny.bin" in message
    assert "load_embedded_mnist()" in message and _leftovers(tmp_path) == []


def test_progress_bar_names_the_file(server: Server, tmp_path: Path, capsys) -> None:
    fetch(server.spec("good"), root=tmp_path, progress=True)
    assert "tiny.bin" in capsys.readouterr().err


# ----------------------------------------------------------------------------- whole loaders, small official files


def _serve_mnist(server: Server, monkeypatch) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 12).astype(np.uint8),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 5).astype(np.uint8)}
    for name, array in arrays.items():
        server.files[name] = idx_gz(array)
        spec = datasets.DATASET_FILES["mnist"][name]
        content = hashlib.sha256(__import__("gzip").decompress(server.files[name])).hexdigest()
        monkeypatch.setitem(datasets.DATASET_FILES["mnist"], name, dataclasses.replace(
            spec, sha256=hashlib.sha256(server.files[name]).hexdigest(),
            urls=(f"{server.url}/missing/{name}", f"{server.url}/good/{name}"),
            verify_content=datasets.partial(datasets._gunzipped_sha256_is, content)))
    return arrays


def test_load_mnist_downloads_verifies_caches_and_parses(server: Server, tmp_path: Path, monkeypatch) -> None:
    arrays = _serve_mnist(server, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the first mirror's 404 is reported
        train = load_mnist("train", root=tmp_path, progress=False)
    assert train.images.shape == (12, 1, 28, 28) and train.images.dtype == torch.uint8
    assert np.array_equal(train.images[:, 0].numpy(), arrays["train-images-idx3-ubyte.gz"])
    assert train.labels.dtype == torch.int64 and train.labels.tolist() == arrays["train-labels-idx1-ubyte.gz"].tolist()
    server.requests.clear()
    assert torch.equal(load_mnist("train", root=tmp_path, download=False).images, train.images)
    assert server.requests == []


def test_a_recompressed_copy_is_accepted_by_its_content_and_a_truncated_one_is_not(server: Server, tmp_path: Path,
                                                                                   monkeypatch) -> None:
    arrays = _serve_mnist(server, monkeypatch)
    mirror = tmp_path / "mirror" / "mnist"
    mirror.mkdir(parents=True)
    for name, array in arrays.items():
        (mirror / name).write_bytes(idx_gz(array, level=1))  # other bytes, same IDX content
        assert (mirror / name).read_bytes() != server.files[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        test = load_mnist("test", root=tmp_path / "cache", mirrors=[tmp_path / "mirror"], download=False)
    assert np.array_equal(test.images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte.gz"]) and server.requests == []
    name = "t10k-images-idx3-ubyte.gz"
    (mirror / name).write_bytes(idx_gz(arrays[name], level=1)[:-40])
    with pytest.warns(DataWarning, match="ignoring"), pytest.raises(DatasetUnavailable, match=name):
        load_mnist("test", root=tmp_path / "cache", mirrors=[tmp_path / "mirror"], download=False)


def test_load_cifar10_downloads_the_official_archive(server: Server, tmp_path: Path, monkeypatch) -> None:
    written = cifar_archive(tmp_path / "served.tar.gz")
    server.files["cifar-10-python.tar.gz"] = (tmp_path / "served.tar.gz").read_bytes()
    spec = datasets.DATASET_FILES["cifar10"]["cifar-10-python.tar.gz"]
    monkeypatch.setitem(datasets.DATASET_FILES["cifar10"], spec.name, dataclasses.replace(
        spec, sha256=hashlib.sha256(server.files[spec.name]).hexdigest(), urls=(f"{server.url}/good/{spec.name}",)))
    test = load_cifar10("test", root=tmp_path / "cache", progress=False)
    assert (tmp_path / "cache" / "cifar10" / spec.name).is_file()
    assert test.images.shape == (3, 3, 32, 32) and test.labels.tolist() == written["test_batch"][1]


def test_an_unwritable_cache_is_reported_with_the_way_out(server: Server, tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    with pytest.raises(DatasetUnavailable, match="cannot write to .*COURSE_DATA_DIR"):
        fetch(server.spec("good"), root=blocked, progress=False)


def test_the_message_lists_the_mirrors_passed_in(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailable, match=f"local mirrors: {tmp_path / 'mine' / 'toy'}"):
        fetch(server.spec("good"), root=tmp_path / "cache", mirrors=[tmp_path / "mine"], download=False)
