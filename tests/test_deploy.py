"""deploy/: the container image's Dockerfile and build context, and the Kubernetes manifests.

No Docker engine and no cluster are reachable here, so these tests check what can be checked without
them: the Dockerfile's text, what its build context (the repository root, filtered by .dockerignore as
Docker documents it) holds, and every field the manifests depend on. The entry point itself is run in
tests/test_shards.py, with the environment a Kubernetes Indexed Job gives its pods.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from grading import PROJECT_ROOT
from grading.gradescope import solution_leaks
from grading.release import find_leaks

DEPLOY = PROJECT_ROOT / "deploy"


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over a /-separated path (Go's filepath.Match, plus ``**``)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def build_context(root: Path = PROJECT_ROOT) -> list[str]:
    """The files ``docker build`` sends from ``root``: each path is matched against every line of
    .dockerignore, a path also matching when one of its parent folders does, and the last matching line
    decides (a ``!`` line keeps it). https://docs.docker.com/build/concepts/context/#dockerignore-files"""
    rules = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").strip("/")))
    compiled = [(keep, _dockerignore_regex(pattern)) for keep, pattern in rules]

    def excluded(rel: str) -> bool:
        prefixes = ["/".join(rel.split("/")[: n + 1]) for n in range(rel.count("/") + 1)]
        verdict = False
        for keep, regex in compiled:
            if any(regex.match(p) for p in prefixes):
                verdict = not keep
        return verdict

    files = []
    for folder, dirs, names in os.walk(root):
        base = Path(folder).relative_to(root).as_posix()
        base = "" if base == "." else base + "/"
        # a folder is skipped when it is excluded and no "!" line could bring back something inside it
        dirs[:] = sorted(d for d in dirs if not excluded(base + d)
                         or any(keep and pattern.startswith(base + d + "/") for keep, pattern in rules))
        files += [base + name for name in sorted(names) if not excluded(base + name)]
    return sorted(files)


def _dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def _instruction(name: str) -> list[str]:
    return [ln[len(name) + 1:] for ln in _dockerfile().splitlines() if ln.startswith(name + " ")]


def test_dockerignore_rules_behave_as_docker_documents() -> None:
    assert _dockerignore_regex("*").match("grading") and not _dockerignore_regex("*").match("grading/x.py")
    assert _dockerignore_regex("**/__pycache__").match("grading/hidden/__pycache__")
    assert _dockerignore_regex("**/*.pyc").match("a.pyc") and _dockerignore_regex("course/saved_models").match(
        "course/saved_models")


def test_the_build_context_holds_the_grader_and_no_solution_text(tmp_path: Path) -> None:
    context = build_context()
    tops = {rel.split("/")[0] for rel in context}
    assert tops == {"grading", "exercises", "course"}, tops  # no solutions/, tests/, .venv, outputs
    assert "grading/hidden/layers.py" in context and "exercises/layers.py" in context
    assert not any("__pycache__" in rel or rel.endswith(".pyc") for rel in context)
    copy = tmp_path / "context"
    for rel in context:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / rel, copy / rel)
    assert solution_leaks(copy) == []  # every exercise module is exactly its generated stub
    reference_code = [leak for leak in find_leaks(copy) if "contains reference code from solutions/" in leak]
    assert reference_code == []  # no statement of a solution region anywhere in the image


def test_the_dockerfile_installs_cpu_torch_copies_only_the_context_and_runs_the_shard_command() -> None:
    assert _instruction("FROM") == ["python:3.11-slim"]
    run = " ".join(_instruction("RUN"))
    assert "--index-url https://download.pytorch.org/whl/cpu" in run and "TORCH_SPEC" in run
    copied = [args.split()[0] for args in _instruction("COPY")]
    assert copied == ["grading/", "exercises/", "course/"]
    assert not re.search(r"\bsolutions\b", "\n".join(ln for ln in _dockerfile().splitlines()
                                                     if not ln.startswith("#")))
    assert json.loads(_instruction("ENTRYPOINT")[0]) == ["python", "-m", "grading", "grade", "--shard", "auto"]
    assert json.loads(_instruction("CMD")[0])[:3] == ["/data/submissions", "-o", "/data/out"]
    assert _instruction("USER") == ["10001"]


def _manifest(name: str) -> dict:
    documents = list(yaml.safe_load_all((DEPLOY / name).read_text()))
    assert len(documents) == 1
    return documents[0]


def _claims(pod_spec: dict) -> dict[str, str]:
    return {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod_spec["volumes"]}


def test_the_indexed_job_gives_each_pod_its_shard_and_the_shared_volume() -> None:
    job = _manifest("grade-job.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] >= 1
    assert 1 <= spec["parallelism"] <= spec["completions"]
    assert spec["backoffLimitPerIndex"] >= 1
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # what backoffLimitPerIndex requires
    (container,) = pod["containers"]
    assert "command" not in container  # the image's entry point: grade --shard auto
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SHARD_COUNT"] == str(spec["completions"])
    args = container["args"]
    assert args[0] == "/data/submissions" and args[args.index("-o") + 1] == "/data/out"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/data/submissions"]["readOnly"] is True and not mounts["/data/out"].get("readOnly")
    assert {m["name"] for m in mounts.values()} <= set(_claims(pod))
    assert pod["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["capabilities"] == {
        "drop": ["ALL"]}


def test_the_merge_job_and_the_files_pod_use_the_same_volume_and_shard_count() -> None:
    claim = _manifest("volume.yaml")
    assert claim["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in claim["spec"]["accessModes"]
    name = claim["metadata"]["name"]
    grade, merge_job, files = _manifest("grade-job.yaml"), _manifest("merge-job.yaml"), _manifest("files-pod.yaml")
    assert set(_claims(grade["spec"]["template"]["spec"]).values()) == {name}
    merge_pod = merge_job["spec"]["template"]["spec"]
    assert set(_claims(merge_pod).values()) == {name} and set(_claims(files["spec"]).values()) == {name}
    script = " ".join(merge_pod["containers"][0]["args"])
    assert f"python -m grading merge /data/out --shards {grade['spec']['completions']}" in script
    images = {grade["spec"]["template"]["spec"]["containers"][0]["image"], merge_pod["containers"][0]["image"],
              files["spec"]["containers"][0]["image"]}
    assert len(images) == 1


@pytest.mark.parametrize("claim", ["docker build -f deploy/Dockerfile", "kubectl apply -f deploy/grade-job.yaml",
                                   "python -m grading merge", "What was run here", "What was not run here"])
def test_the_readme_gives_the_steps_and_says_what_was_and_was_not_run(claim: str) -> None:
    assert claim in (DEPLOY / "README.md").read_text()
