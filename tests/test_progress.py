"""The progress view: attempts recorded by every check, summed up per chapter, with a next step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import exercises
from exercises.checks import CheckFailed, check, check_catalogue, progress_view
from exercises.kit.progress import (
    drill_progress,
    load_events,
    load_history,
    plot_history,
    practice_plan,
    progress_file,
    progress_report,
    record_attempt,
    record_drill,
    reflect,
    summarize,
)
from grading.release import build_release
from tests.conftest import BACKWARD_LINE, REFERENCE_LAYERS, STUB_LAYERS, TEST_SOURCE, variant


@pytest.fixture
def learner_file(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(exercises, "__path__", [str(tmp_path), *exercises.__path__])
    monkeypatch.delitem(sys.modules, "exercises.layers", raising=False)
    yield tmp_path / "layers.py"
    sys.modules.pop("exercises.layers", None)


def test_each_check_run_is_recorded_with_per_exercise_results(learner_file: Path, capsys) -> None:
    learner_file.write_text(variant(BACKWARD_LINE, "    return torch.where(x >= 0, dout, torch.zeros_like(dout))\n"))
    with pytest.raises(CheckFailed):
        check("relu")
    learner_file.write_text(REFERENCE_LAYERS)
    check("relu")
    check("relu")
    history = load_history()
    assert [a["passed"] for a in history] == [False, True, True]
    assert history[0]["exercises"] == {"relu_forward": True, "relu_backward": False}
    assert "x == 0" in history[0]["failed"][0]
    row = next(r for r in summarize(check_catalogue()) if r.check == "relu")
    # The third run had the same code as the second: not a new attempt.
    assert (row.attempts, row.attempts_to_pass, row.passing_now) == (2, 2, True)
    report = progress_report(check_catalogue())
    assert "✓ passing" in report and "2 attempts, first passed on attempt 2" in report


def test_runs_on_the_untouched_stub_or_on_unchanged_code_are_not_attempts(learner_file: Path) -> None:
    learner_file.write_text(STUB_LAYERS)  # what Run All on a fresh copy checks
    for _ in range(2):
        with pytest.raises(CheckFailed):
            check("relu", verbose=False)
    assert [a["untouched"] for a in load_history()] == [True, True]
    row = next(r for r in summarize(check_catalogue()) if r.check == "relu")
    assert row.attempts == 0 and "Next: chapter 0, relu_forward" in progress_report(check_catalogue())
    learner_file.write_text(variant(BACKWARD_LINE, "    return torch.where(x >= 0, dout, torch.zeros_like(dout))\n"))
    learner_file.write_text(learner_file.read_text() + "\n# a comment is not code\n")
    for _ in range(3):
        with pytest.raises(CheckFailed):
            check("relu", verbose=False)
    row = next(r for r in summarize(check_catalogue()) if r.check == "relu")
    assert row.attempts == 1
    report = progress_report(check_catalogue())
    assert "1 attempt so far. Last time:" in report and ".." not in report


def test_next_step_follows_the_learner(tmp_path: Path) -> None:
    checks = check_catalogue()
    assert "Next: chapter 0, relu_forward, relu_backward" in progress_report(checks, [])
    failing = [{"check": "relu", "passed": False, "exercises": {"relu_backward": False}, "failed": ["at zero"]}]
    report = progress_report(checks, failing)
    assert 'Keep going with check("relu") (chapter 0)' in report and "at zero" in report
    passed = [{"check": "relu", "passed": True, "exercises": {"relu_forward": True, "relu_backward": True}}]
    assert 'Next: chapter 1, stratified_split — then run check("stratified_split")' in progress_report(checks, passed)


def test_unreadable_history_is_set_aside_not_fatal() -> None:
    path = progress_file()
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="could not be read"):
        assert load_history() == []
    assert list(path.parent.glob("progress.json.unreadable-*"))
    record_attempt("relu", "layers", {"relu_forward": True}, [])
    assert json.loads(path.read_text())["attempts"][0]["check"] == "relu"


def test_entries_that_cannot_be_read_are_kept_and_never_crash_the_view() -> None:
    path = progress_file()
    odd = [5, {"check": "relu", "exercises": ["relu_forward"]}, {"kind": "drill", "check": "drill:normalize",
           "drill": "normalize", "chapter": 1, "correct": True, "seconds": "fast"},
           {"kind": "reflection", "check": "reflection:2", "chapter": 2, "practise": ["not", "text"]},
           {"kind": "from-a-newer-release", "check": "x:y"}]
    path.write_text(json.dumps({"version": 3, "attempts": [_run("relu", "c1", True), *odd], "mine": 1}))
    with pytest.warns(UserWarning, match="4 entries of your progress file .* kept in the file, unchanged"):
        assert [e["check"] for e in load_events()] == ["relu", "x:y"]
    with pytest.warns(UserWarning):
        report = progress_view()
        plot_history()
    assert "Course progress: 1 of" in report
    record_drill("normalize", 1, seed=1, correct=True, seconds=3.0)
    data = json.loads(path.read_text())
    assert data["attempts"][1:-1] == odd and data["mine"] == 1 and data["version"] == 3  # nothing lost


def test_a_corrupted_file_is_set_aside_each_time_never_overwritten() -> None:
    path = progress_file()
    for text in ("{not json", '{"attempts": 3}', "[1, 2]"):
        path.write_text(text)
        with pytest.warns(UserWarning, match="Nothing is lost: it was kept as .* rename it to progress.json"):
            assert load_events() == []
    kept = sorted(p.read_text() for p in path.parent.glob("progress.json.unreadable-*"))
    assert kept == sorted(["{not json", '{"attempts": 3}', "[1, 2]"])


def test_progress_lives_beside_the_course_copy(monkeypatch) -> None:
    monkeypatch.delenv("COURSE_PROGRESS_FILE")
    assert progress_file() == Path(exercises.__file__).resolve().parent.parent / ".course-progress.json"


def test_command_line_progress_view() -> None:
    proc = subprocess.run([sys.executable, "-m", "exercises", "progress"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Course progress:" in proc.stdout and 'check("relu")' in proc.stdout


# ----------------------------------------------------------------------------- drills, reflections, the plan


def _run(check: str, code: str, passed: bool, when: str = "2026-01-05T10:00:00") -> dict:
    return {"check": check, "passed": passed, "exercises": {}, "failed": [], "code": {"x": code}, "time": when}


def _answer(name: str, chapter: int, correct: bool = True, seconds: float = 10.0,
            when: str = "2026-01-05T11:00:00") -> dict:
    return {"kind": "drill", "check": f"drill:{name}", "drill": name, "chapter": chapter, "seed": 1,
            "correct": correct, "seconds": seconds, "time": when}


def _plan(events: list[dict]) -> list[str]:
    from exercises.kit.drills import DRILLS

    catalogue = [(d.name, d.chapter) for d in DRILLS.values()]
    return practice_plan(summarize(check_catalogue(), events), drill_progress(catalogue, events), events)


def test_the_plan_follows_the_data() -> None:
    events = [_run("relu", c, c == "c3") for c in ("c1", "c2", "c3")] + [_run("linear", c, c == "d2")
                                                                           for c in ("d1", "d2")]
    events += [_answer("conv_shapes", 3), _answer("conv_shapes", 3)]
    events += [{"kind": "reflection", "check": "reflection:2", "chapter": 2, "hard": "", "caught": "",
                "practise": "batchnorm backward from memory", "time": "2026-01-05T12:00:00"}]
    plan = _plan(events)
    assert plan[0].startswith("Re-do from scratch, without looking: relu_forward, relu_backward (3 attempts")
    assert plan[0].index("relu_forward") < plan[0].index("linear_forward")  # the most attempts first
    drills_line = next(p for p in plan if p.startswith("Drills to make fluent"))
    assert 'drill("conv_shapes") (chapter 3, 2 in a row now)' in drills_line  # started first
    assert 'drill("chain_rule") (chapter 2, not tried yet)' in drills_line  # then those of chapters reached
    assert "drill(\"precision_recall\")" not in drills_line  # chapter 5 is not reached yet
    not_started = next(p for p in plan if p.startswith("Chapters not started"))
    assert "1 — Data preparation" in not_started and "5 — " in not_started and "2 — " not in not_started
    assert plan[-1] == "Your own notes: chapter 2: batchnorm backward from memory."

    events += [_answer("conv_shapes", 3) for _ in range(3)] + [_run("stratified_split", "s1", False)]
    plan = _plan(events)
    drills_line = next(p for p in plan if p.startswith("Drills to make fluent"))
    assert "conv_shapes" not in drills_line  # mastered: 5 right in a row, each in time
    assert "1 — Data preparation" not in next(p for p in plan if p.startswith("Chapters not started"))
    report = progress_view(events)
    assert "\nNext practice plan:\n  1. Re-do from scratch" in report and "batchnorm backward from memory" in report


def test_slow_or_wrong_answers_are_not_fluent() -> None:
    events = [_answer("normalize", 1, seconds=5) for _ in range(4)] + [_answer("normalize", 1, seconds=45)]
    row = drill_progress([("normalize", 1)], events)[0]
    assert (row.answers, row.right, row.streak, row.mastered, row.median_seconds) == (5, 5, 0, False, 5)
    row = drill_progress([("normalize", 1)], [*events, *[_answer("normalize", 1) for _ in range(5)]])[0]
    assert row.mastered
    row = drill_progress([("normalize", 1)], [*events, _answer("normalize", 1, correct=False)])[0]
    assert row.streak == 0 and row.best_streak == 4


def test_reflections_are_saved_only_when_written(capsys) -> None:
    reflect(chapter=2, hard="", caught="", practise="")  # what a headless run of the chapter does
    assert "Nothing saved yet" in capsys.readouterr().out and load_events() == []
    reflect(chapter=2, hard="the batchnorm backward", caught="x.var(dim=0) is the unbiased variance",
            practise="batchnorm backward from memory")
    reflect(chapter=2, hard="the batchnorm backward", caught="x.var(dim=0) is the unbiased variance",
            practise="batchnorm backward from memory")
    out = capsys.readouterr().out
    assert "Saved your reflection on chapter 2" in out and "already saved" in out
    events = load_events()
    assert [(e["kind"], e["chapter"], e["practise"]) for e in events] == [
        ("reflection", 2, "batchnorm backward from memory")]
    assert "chapter 2: batchnorm backward from memory" in progress_view()
    assert load_history() == []  # the runs of checks are only the runs of checks
    reflect(chapter="three", practise="conv shapes")
    assert "chapter is the chapter's number" in capsys.readouterr().out and len(load_events()) == 1


def test_older_files_load_and_older_code_keeps_the_new_events(tmp_path: Path) -> None:
    path = progress_file()
    path.write_text(json.dumps({"version": 1, "attempts": [_run("relu", "c1", True)]}))  # a version 1 file
    record_drill("conv_shapes", 3, seed=5, correct=True, seconds=9.5)
    reflect(chapter=3, practise="conv shapes")
    data = json.loads(path.read_text())
    assert data["version"] == 2 and [e.get("kind") for e in data["attempts"]] == [None, "drill", "reflection"]
    assert summarize(check_catalogue())[0].passing_now
    # The code of release 0.1 (a kernel not restarted after an update, say) keeps every event it does not know.
    import zipfile

    with zipfile.ZipFile(Path(__file__).with_name("fixtures") / "learner-release-0.1.zip") as z:
        z.extractall(tmp_path)
    old = tmp_path / "learner-release"
    script = ("from exercises.progress import progress_report, record_attempt; "
              "record_attempt('relu', 'layers', {'relu_forward': True, 'relu_backward': True}, []); "
              "print(progress_report())")  # its own progress view runs on the new file too
    proc = subprocess.run([sys.executable, "-c", script], cwd=old, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(old)})
    assert proc.returncode == 0 and "Course progress: 1 of" in proc.stdout, proc.stderr
    events = load_events()
    assert [e.get("kind", "check") for e in events] == ["check", "drill", "reflection", "check"]
    assert "1 of 1 answer right" in progress_view()


def test_fluency_and_reflections_survive_an_update_and_a_reinstall(tmp_path: Path) -> None:
    """The learner's copy of a release, run with its own code and finding its own progress file: drills answered
    and a reflection written there survive `python -m exercises update` to a newer release, and a reinstall."""
    v1 = build_release(tmp_path / "v1", repository=TEST_SOURCE)  # what an instructor hands out
    learner = tmp_path / "learner"
    shutil.copytree(v1, learner)
    v2 = tmp_path / "v2"
    shutil.copytree(v1, v2)
    for kit in ("drills.py", "progress.py"):  # a newer release changes the course's own code
        (v2 / "exercises" / "kit" / kit).write_text((v2 / "exercises" / "kit" / kit).read_text() + "\n# v2\n")
    (v2 / ".course-release.json").unlink()
    from exercises.kit.update import write_manifest

    write_manifest(v2)
    env = {k: v for k, v in os.environ.items() if k != "COURSE_PROGRESS_FILE"}  # the copy finds its own file
    env["PYTHONPATH"] = str(learner)

    def run(*args: str) -> str:
        proc = subprocess.run([sys.executable, *args], cwd=learner, capture_output=True, text=True, timeout=120,
                              env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    run("-c", "from exercises.kit.drills import drill\n"
              "from exercises.kit.progress import reflect\n"
              "for seed in (1, 2):\n"
              "    d = drill('conv_output_size', seed=seed)\n"
              "    d.answer(d.item.by_hand()[1])\n"
              "reflect(chapter=3, hard='dilation', caught='padding counted once', practise='conv output sizes')\n")
    progress = learner / ".course-progress.json"
    saved = progress.read_bytes()
    assert [e.get("kind") for e in json.loads(saved)["attempts"]] == ["drill", "drill", "reflection"]

    out = run("-m", "exercises", "update", str(v2))  # the copy's own updater, into the copy
    assert "exercises/kit/drills.py" in out
    assert (learner / "exercises" / "kit" / "drills.py").read_text().endswith("# v2\n")
    assert progress.read_bytes() == saved
    for name in ("course", "exercises"):  # a reinstall: the release unpacked again over the copy
        shutil.rmtree(learner / name)
        shutil.copytree(v2 / name, learner / name)
    assert progress.read_bytes() == saved

    out = run("-m", "exercises", "progress")
    assert 'drill("conv_output_size")  2 of 2 answers right, 2 in a row' in out
    assert "chapter 3: conv output sizes" in out


def test_progress_plot_writes_a_labelled_figure(tmp_path: Path, capsys) -> None:
    from PIL import Image

    from exercises.__main__ import main

    path = progress_file()
    events = [_run("relu", c, c == "c3", f"2026-01-0{i + 1}T10:00:00") for i, c in enumerate(("c1", "c2", "c3"))]
    events += [_answer("conv_shapes", 3, when=f"2026-01-0{i + 1}T11:00:00") for i in range(3)]
    events += [_answer("normalize", 1, correct=i != 1, when=f"2026-01-0{i + 1}T12:00:00") for i in range(3)]
    path.write_text(json.dumps({"version": 2, "attempts": events}))
    figure = tmp_path / "plots" / "history.png"
    assert main(["progress", "--plot", str(figure)]) == 0  # `python -m exercises progress --plot PATH`
    assert f"Your history is drawn in {figure}" in capsys.readouterr().out
    with Image.open(figure) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 300
        low, high = image.convert("L").getextrema()
        assert high - low > 100  # something is drawn
        labels = image.info["Description"]
    assert "attempts at the checks" in labels and "drill fluency" in labels and "time" in labels

    fig = plot_history(events)
    top, bottom = fig.axes
    assert top.get_ylabel() and bottom.get_ylabel() and bottom.get_xlabel() == "time"
    assert len(top.lines) == 1 and len(bottom.get_legend().get_texts()) == 2  # attempts; one line per drill
    assert [int(y) for y in top.lines[0].get_ydata()] == [1, 2, 3]
    empty = plot_history([])
    assert all(ax.get_ylabel() for ax in empty.axes)  # labelled even before any practice
