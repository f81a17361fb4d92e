"""``python -m grading merge OUT... [-o DEST]``: one grade sheet, feedback and Gradescope folder from shards.

Each ``OUT`` is the output folder of one or more shards (``grade --shard K/N -o OUT``); shards may share
one folder (a shared volume) or each have their own. ``merge`` reads the shards' manifests
(``shards/K-of-N.json``), checks that every shard ``0 .. N-1`` of one batch has finished, that all were
graded by the same grader with the same options, that no learner was graded by two shards, and that
each learner's ``results/<learner>.json`` is the record its shard wrote. It then writes, in ``DEST``, the
records, ``grades.csv``, the feedback, the Gradescope results, ``batch.json`` and, when shards graded
learners again over earlier results, ``regrade-report.md``: the same files an unsharded run writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from grading import regrade
from grading.files import write_if_changed
from grading.grade import write_csv, write_outputs
from grading.records import LearnerRecord
from grading.shards import Manifest, read_manifest, write_manifest


class MergeError(ValueError):
    """The shards cannot be merged as they are; the message says what is wrong and what to do."""


@dataclass
class MergeReport:
    out_dir: Path
    csv_path: Path
    count: int  # N: the number of shards merged
    learners: list[str]
    ungraded: dict[str, str] = field(default_factory=dict)
    regrade_report: Path | None = None


def _manifests(out_dirs: list[Path]) -> dict[int, list[tuple[Path, Manifest]]]:
    """Shard count N -> [(the folder, the manifest)] for every shard manifest found."""
    found: dict[int, list[tuple[Path, Manifest]]] = {}
    for out in out_dirs:
        if not Path(out).is_dir():
            raise MergeError(f"'{out}' is not a folder: pass the output folders of the shards (grade -o OUT)")
        for path in sorted(Path(out).glob("shards/*-of-*.json")):
            try:
                manifest = read_manifest(path)
            except ValueError as exc:
                raise MergeError(f"{exc}; delete it and run that shard again") from None
            if manifest.shard is None or path.stem != manifest.shard.name:
                raise MergeError(f"{path} does not describe the shard its name says; delete it, run that shard again")
            found.setdefault(manifest.shard.count, []).append((Path(out), manifest))
    return found


def _choose(found: dict[int, list[tuple[Path, Manifest]]], count: int | None,
            out_dirs: list[Path]) -> list[tuple[Path, Manifest]]:
    if not found:
        raise MergeError(f"no finished shard in {', '.join(map(str, out_dirs))}: a shard writes shards/K-of-N.json "
                         "when it has graded all its learners (grade --shard K/N -o OUT)")
    if count is None:
        if len(found) > 1:
            raise MergeError(f"these folders hold shards of batches split {' and '.join(map(str, sorted(found)))} "
                             "ways; pass --shards N to merge one of them (or delete the other's shards/ files)")
        count = next(iter(found))
    if count not in found:
        raise MergeError(f"no shard of a batch split {count} ways was found (found: {sorted(found)})")
    chosen = found[count]
    seen: dict[int, Path] = {}
    for out, manifest in chosen:
        assert manifest.shard is not None
        if manifest.shard.index in seen:
            raise MergeError(f"shard {manifest.shard.index}/{count} was found twice, in {seen[manifest.shard.index]} "
                             f"and {out}; pass each output folder once")
        seen[manifest.shard.index] = out
    missing = sorted(set(range(count)) - set(seen))
    if missing:
        raise MergeError(f"shard(s) {', '.join(f'{k}/{count}' for k in missing)} have not finished (no "
                         f"shards/K-of-{count}.json): run them (grade --shard K/{count}), then merge again")
    suites = {m.suite for _, m in chosen}
    if len(suites) > 1:
        raise MergeError("the shards were graded by different graders or with different options (--assignment, "
                         "--exclude, the hidden tests): run every shard again with the same grader and options")
    return sorted(chosen, key=lambda item: item[1].shard.index if item[1].shard else 0)


def merge(out_dirs: list[Path], dest: Path | None = None, count: int | None = None) -> MergeReport:
    """Merge the finished shards found in ``out_dirs`` into ``dest`` (default: the first of ``out_dirs``)."""
    out_dirs = [Path(p) for p in out_dirs]
    dest = Path(dest) if dest is not None else out_dirs[0]
    chosen = _choose(_manifests(out_dirs), count, out_dirs)
    records: dict[str, LearnerRecord] = {}
    owner: dict[str, str] = {}
    for out, manifest in chosen:
        assert manifest.shard is not None
        for learner, key in manifest.learners.items():
            if learner in owner:
                raise MergeError(f"'{learner}' was graded by two shards ({owner[learner]} and "
                                 f"{manifest.shard.index}/{manifest.shard.count}): the submissions changed between "
                                 "shards; run every shard again")
            path = out / "results" / f"{learner}.json"
            try:
                text = path.read_text(encoding="utf-8")
                record = LearnerRecord.from_json(json.loads(text))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise MergeError(f"{path} is missing or unreadable ({exc}); run shard "
                                 f"{manifest.shard.index}/{manifest.shard.count} again") from None
            if record.key != key:
                raise MergeError(f"{path} is not the record shard {manifest.shard.index}/{manifest.shard.count} "
                                 "wrote (it was graded again since): run that shard again, then merge")
            owner[learner] = f"{manifest.shard.index}/{manifest.shard.count}"
            records[learner] = record
            if out.resolve() != dest.resolve():
                write_if_changed(dest / "results" / f"{learner}.json", text)
    columns = chosen[0][1].columns
    for record in records.values():
        write_outputs(dest, record)
    csv_path = write_csv(dest, list(records.values()), columns)
    suite = chosen[0][1].suite
    write_manifest(dest, Manifest(suite, columns, {name: r.key for name, r in records.items()}))
    shard_count = chosen[0][1].shard.count if chosen[0][1].shard else 1
    regrades = regrade.load([out / "regrades" / f"{m.shard.name}.json" for out, m in chosen if m.shard], suite)
    report = regrade.write_report(dest, regrades) if regrades else None
    return MergeReport(dest, csv_path, shard_count, sorted(records),
                       {name: r.ungraded for name, r in sorted(records.items()) if r.ungraded}, report)
