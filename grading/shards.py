"""Splitting a batch into shards, and the manifest each shard (or a whole batch) leaves behind.

``grade --shard K/N`` grades the learners whose id hashes to ``K`` modulo ``N`` (``0 <= K < N``): the hash
is SHA-256 of the learner id, so a learner's shard depends on their id alone. Adding or removing a
learner moves nobody else, and any machine computes the same split. ``--shard auto`` reads ``K`` from
``JOB_COMPLETION_INDEX`` (what a Kubernetes Indexed Job gives each pod) and ``N`` from ``SHARD_COUNT``.

Every run writes a manifest when it has finished: ``batch.json`` for a whole batch (and for the output
of ``merge``), ``shards/K-of-N.json`` for a shard. It lists the learners the run graded and the key of
each one's record (``results/<learner>.json``), the grader's identity (``suite``) and the grade sheet's
columns. A shard deletes its manifest when it starts, so a manifest on disk always describes a shard
that ran to its end; ``merge`` trusts nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grading.files import atomic_write

INDEX_ENV = "JOB_COMPLETION_INDEX"
COUNT_ENV = "SHARD_COUNT"


class ShardError(ValueError):
    """A ``--shard`` value or a shard's environment that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ShardError(f"shard {self.index}/{self.count} does not exist: K/N needs N >= 1 and 0 <= K < N "
                             f"(the shards of a batch of N are 0/N, 1/N, ..., {max(self.count, 1) - 1}/N)")

    @property
    def name(self) -> str:
        return f"{self.index}-of-{self.count}"

    def holds(self, learner: str) -> bool:
        return shard_of(learner, self.count) == self.index


def shard_of(learner: str, count: int) -> int:
    """The shard (``0 .. count-1``) that grades ``learner``: SHA-256 of the id, modulo ``count``."""
    return int.from_bytes(hashlib.sha256(learner.encode("utf-8")).digest()[:8], "big") % count


def parse_shard(text: str, environ: dict[str, str] | None = None) -> Shard:
    """``"K/N"`` as a ``Shard``; ``"auto"`` takes K from ``$JOB_COMPLETION_INDEX`` and N from ``$SHARD_COUNT``."""
    env = os.environ if environ is None else environ
    if text == "auto":
        missing = [name for name in (INDEX_ENV, COUNT_ENV) if not env.get(name, "").strip()]
        if missing:
            raise ShardError(f"--shard auto reads the shard from ${INDEX_ENV} and the number of shards from "
                             f"${COUNT_ENV}, but {' and '.join('$' + m for m in missing)} is not set: run it as "
                             f"a Kubernetes Indexed Job whose pods set {COUNT_ENV} to the Job's completions, or "
                             "pass --shard K/N")
        text = f"{env[INDEX_ENV].strip()}/{env[COUNT_ENV].strip()}"
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ShardError(f"--shard expects K/N (for example 0/3: the first of 3 shards) or auto, not {text!r}")
    return Shard(int(index), int(count))


@dataclass
class Manifest:
    """What one finished run graded: learner -> the key of their record, and how."""

    suite: str
    columns: list[str]
    learners: dict[str, str] = field(default_factory=dict)
    shard: Shard | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"suite": self.suite, "columns": list(self.columns),
                                "learners": dict(sorted(self.learners.items()))}
        if self.shard is not None:
            data["shard"] = {"index": self.shard.index, "count": self.shard.count}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        shard = data.get("shard")
        return cls(str(data["suite"]), [str(c) for c in data["columns"]],
                   {str(k): str(v) for k, v in data["learners"].items()},
                   Shard(int(shard["index"]), int(shard["count"])) if shard else None)


def manifest_path(out_dir: Path, shard: Shard | None) -> Path:
    return Path(out_dir) / ("batch.json" if shard is None else f"shards/{shard.name}.json")


def write_manifest(out_dir: Path, manifest: Manifest) -> Path:
    path = manifest_path(out_dir, manifest.shard)
    atomic_write(path, json.dumps(manifest.to_json(), indent=1) + "\n")
    return path


def read_manifest(path: Path) -> Manifest:
    """The manifest at ``path``; ``ValueError`` (with the path) when it is not one."""
    try:
        return Manifest.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable manifest ({exc})") from exc
