"""Sharded grading and merge: the same files as one unsharded run, a killed shard converges, merge refuses
what it cannot trust, and the container's entry point takes its shard from a Kubernetes Indexed Job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grading import PROJECT_ROOT
from grading.merge import MergeError, merge
from grading.records import LearnerRecord, TestResult
from grading.shards import Manifest, Shard, ShardError, parse_shard, shard_of, write_manifest
from tests.conftest import REFERENCE_LAYERS, STUB_LAYERS, write_submission
from tests.test_grading import ZERO_BUG

CHAPTER = "00_welcome"


def _entry_point() -> list[str]:
    """The image's ENTRYPOINT (deploy/Dockerfile), with this interpreter for ``python``."""
    line = next(ln for ln in (PROJECT_ROOT / "deploy" / "Dockerfile").read_text().splitlines()
                if ln.startswith("ENTRYPOINT "))
    argv = json.loads(line.removeprefix("ENTRYPOINT "))
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def _snapshot(out: Path, *parts: str) -> dict[str, bytes]:
    """Every file under ``out/<part>`` for each part, and grades.csv if there is one."""
    files = {str(p.relative_to(out)): p.read_bytes() for part in parts for p in sorted((out / part).rglob("*"))
             if p.is_file()}
    if (out / "grades.csv").exists():
        files["grades.csv"] = (out / "grades.csv").read_bytes()
    return files


def test_a_learners_shard_depends_on_their_id_alone() -> None:
    learners = [f"learner{n}" for n in range(200)]
    before = {name: shard_of(name, 7) for name in learners}
    after = {name: shard_of(name, 7) for name in [*learners, "newcomer", "lovelace_ada_12345"]}
    assert all(after[name] == shard for name, shard in before.items())  # adding learners moves no one
    assert set(before.values()) == set(range(7))  # and every shard gets some
    assert shard_of("ada", 3) == shard_of("ada", 3) == int.from_bytes(
        __import__("hashlib").sha256(b"ada").digest()[:8], "big") % 3  # the same on any machine


def test_shard_values_and_the_indexed_job_environment() -> None:
    assert parse_shard("2/5") == Shard(2, 5)
    assert parse_shard("auto", {"JOB_COMPLETION_INDEX": "3", "SHARD_COUNT": "4"}) == Shard(3, 4)
    for bad, message in [("3/3", "0 <= K < N"), ("1-3", "K/N"), ("x/2", "K/N"), ("0/0", "N >= 1")]:
        with pytest.raises(ShardError, match=message):
            parse_shard(bad)
    with pytest.raises(ShardError, match="SHARD_COUNT is not set"):
        parse_shard("auto", {"JOB_COMPLETION_INDEX": "0"})


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shard-subs")
    sources = [REFERENCE_LAYERS, STUB_LAYERS, ZERO_BUG]
    for n in range(7):
        write_submission(root, f"learner{n}", sources[n % 3])
    write_submission(root, "lovelace_ada_12345_67890_hw0", REFERENCE_LAYERS, as_zip=True, nested="hw0/")
    zipfile.ZipFile(root / "jo.zip", "w").close()
    return root


def test_three_shard_processes_and_a_merge_give_the_files_of_one_unsharded_run(course: Path, tmp_path: Path) -> None:
    common = [str(course), "-q", "-j", "1", "--timeout", "5", "--assignment", CHAPTER]
    whole = subprocess.run([sys.executable, "-m", "grading", "grade", *common, "-o", str(tmp_path / "whole")],
                           capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    shared = tmp_path / "shared"  # the Indexed Job's shared volume: every shard writes into one folder
    shards = [subprocess.Popen([*_entry_point(), *common, "-o", str(shared)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "JOB_COMPLETION_INDEX": str(k), "SHARD_COUNT": "3"})
              for k in range(3)]
    outputs = [p.communicate(timeout=600) for p in shards]
    assert [p.returncode for p in shards] == [0, 0, 0], [err for _, err in outputs]
    for k, (stdout, _) in enumerate(outputs):
        graded = json.loads((shared / "shards" / f"{k}-of-3.json").read_text())["learners"]
        assert sorted(graded) == sorted(n for n in _learners(tmp_path / "whole") if shard_of(n, 3) == k)
        assert stdout.startswith(f"shard {k}/3: graded {len(graded)} submission(s)")
    assert not (shared / "grades.csv").exists()  # a shard writes no partial grade sheet
    merged = subprocess.run([sys.executable, "-m", "grading", "merge", str(shared), "-o", str(tmp_path / "merged")],
                            capture_output=True, text=True, timeout=300)
    assert merged.returncode == 0, merged.stderr
    assert "merged 3 shard(s): 9 learner(s)" in merged.stdout and "jo: jo.zip is empty" in merged.stdout
    parts = ("results", "feedback", "gradescope")
    assert _snapshot(tmp_path / "merged", *parts) == _snapshot(tmp_path / "whole", *parts)
    assert (tmp_path / "merged" / "batch.json").read_bytes() == (tmp_path / "whole" / "batch.json").read_bytes()
    rows = (tmp_path / "merged" / "grades.csv").read_text().splitlines()
    assert len(rows) == 10 and rows[0].startswith("learner,relu_forward,relu_backward,total,max,notes")
    again = merge([shared], tmp_path / "merged")  # merging twice changes nothing
    assert again.count == 3 and _snapshot(tmp_path / "merged", *parts) == _snapshot(tmp_path / "whole", *parts)


def _learners(out: Path) -> list[str]:
    return list(json.loads((out / "batch.json").read_text())["learners"])


def test_a_shard_killed_with_kill_9_and_run_again_ends_with_the_files_of_a_clean_run(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    slow = REFERENCE_LAYERS + "\n\nimport time as _time\n_time.sleep(0.25)  # every test re-imports this module\n"
    names = [n for n in (f"s{i}" for i in range(40)) if shard_of(n, 2) == 0][:4] + ["t-other"]
    for i, name in enumerate(names):
        write_submission(subs, name, slow if i % 2 else STUB_LAYERS)
    command = [sys.executable, "-m", "grading", "grade", str(subs), "-q", "-j", "1", "--timeout", "5",
               "--assignment", CHAPTER, "--shard", "0/2"]
    clean = subprocess.run([*command, "-o", str(tmp_path / "clean")], capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([*command, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while len(list((out / "results").glob("*.json"))) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.stem for p in (out / "results").glob("*.json"))
    in_shard = [n for n in names if shard_of(n, 2) == 0]
    assert 1 <= len(done) < len(in_shard), done
    assert not (out / "shards" / "0-of-2.json").exists()  # an unfinished shard leaves no manifest
    with pytest.raises(MergeError, match="no finished shard"):
        merge([out], tmp_path / "m")
    rerun = subprocess.run([*command, "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"graded {len(in_shard) - len(done)} submission(s), reused {len(done)}" in rerun.stdout
    assert _snapshot(out, "results", "feedback", "gradescope", "shards") == _snapshot(
        tmp_path / "clean", "results", "feedback", "gradescope", "shards")


def _fake_shard(out: Path, shard: Shard, learners: list[str], suite: str = "s") -> None:
    """A finished shard's files, written by hand: a record per learner and the shard's manifest."""
    for learner in learners:
        result = TestResult("relu_forward", "layers.t", "a property", 1.0, 1.0, True, "")
        record = LearnerRecord.from_results(learner, [result], ["relu_forward"], key=f"{suite}:{learner}")
        (out / "results").mkdir(parents=True, exist_ok=True)
        (out / "results" / f"{learner}.json").write_text(json.dumps(record.to_json(), indent=1))
    write_manifest(out, Manifest(suite, ["relu_forward"], {n: f"{suite}:{n}" for n in learners}, shard))


def test_merge_refuses_missing_mixed_duplicated_or_changed_shards(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _fake_shard(a, Shard(0, 2), ["ada"])
    with pytest.raises(MergeError, match=r"shard\(s\) 1/2 have not finished"):
        merge([a])
    _fake_shard(b, Shard(1, 2), ["ben"], suite="other")
    with pytest.raises(MergeError, match="different graders or with different options"):
        merge([a, b], tmp_path / "m")
    _fake_shard(b, Shard(1, 2), ["ada"])
    with pytest.raises(MergeError, match="'ada' was graded by two shards"):
        merge([a, b], tmp_path / "m")
    _fake_shard(b, Shard(1, 2), ["ben"])
    (b / "results" / "ben.json").write_text((a / "results" / "ada.json").read_text())
    with pytest.raises(MergeError, match="is not the record shard 1/2 wrote"):
        merge([a, b], tmp_path / "m")
    _fake_shard(b, Shard(1, 2), ["ben"])
    _fake_shard(a, Shard(0, 1), ["ada"])  # an earlier, unsharded-as-one-shard run left in the same folder
    with pytest.raises(MergeError, match="pass --shards N"):
        merge([a, b], tmp_path / "m")
    report = merge([a, b], tmp_path / "m", count=2)
    assert report.learners == ["ada", "ben"]
    assert (tmp_path / "m" / "grades.csv").read_text().splitlines()[1:] == ["ada,1,1,1,", "ben,1,1,1,"]
    with pytest.raises(MergeError, match="no finished shard"):
        merge([tmp_path / "m"])
