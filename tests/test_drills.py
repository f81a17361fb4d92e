"""Drills: fresh items from a seed, checked at once by an independent computation, fluency recorded."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys

import pytest
import torch

from exercises.checks import progress_view
from exercises.kit import drills as drills_module
from exercises.kit.drills import DRILLS, DrillItem, drill, drills, matches, parse_answer
from exercises.kit.progress import FLUENT_SECONDS, FLUENT_STREAK, drill_progress, load_events
from grading import PROJECT_ROOT

# Items per drill in the agreement test: those that run real convolutions or matrix products get fewer.
ITEMS = {name: {"conv_shapes": 10, "linear_shapes": 15}.get(name, 30) for name in DRILLS}


class Clock:
    """An injectable clock: seconds pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def right_answer(item: DrillItem) -> tuple[float, ...]:
    return item.item.by_hand()[1]


def wrong_answer(item: DrillItem) -> tuple[float, ...]:
    value = list(right_answer(item))
    value[0] += 1 if item.item.integers else max(0.05, 10 * item.item.tolerance, 0.01 * abs(value[0]))
    return tuple(value)


def test_every_chapter_offers_drills() -> None:
    assert {d.chapter for d in drills()} == {0, 1, 2, 3, 4, 5}
    assert [d.name for d in drills(3)] == ["conv_output_size", "conv_shapes", "param_count"]
    assert "conv_shapes" in repr(drills()) and "not tried" in repr(drills(3))


@pytest.mark.parametrize("name", list(DRILLS))
def test_items_are_generated_fresh_from_a_seed(name: str) -> None:
    questions = [DrillItem(DRILLS[name], seed, record=False).question for seed in range(20)]
    assert len(set(questions)) >= 8, f"{name}: only {len(set(questions))} different items in 20 seeds"
    assert DrillItem(DRILLS[name], 7, record=False).question == questions[7]  # reproducible from its seed
    a, b = drill(name, show=False, record=False), drill(name, show=False, record=False)
    assert a.seed != b.seed  # a new seed every time unless one is given


@pytest.mark.parametrize("name", list(DRILLS))
def test_the_checker_agrees_with_the_worked_solution_on_many_items(name: str, capsys) -> None:
    """The answer is PyTorch's (or counting's), computed when it is checked; the worked solution is the same
    reasoning by hand: on many random items both agree, the right answer passes and a wrong one fails."""
    for seed in range(ITEMS[name]):
        item = DrillItem(DRILLS[name], seed, record=False)
        lines, by_hand = item.item.by_hand()
        oracle = item.item.oracle()
        assert len(oracle) == len(by_hand) and all(
            math.isclose(o, h, rel_tol=1e-9, abs_tol=1e-9) for o, h in zip(oracle, by_hand, strict=True)), \
            f"{name} seed {seed}: {item.question} -> torch {oracle}, by hand {by_hand}"
        assert matches(by_hand, oracle, item.item.integers, item.item.tolerance)
        assert not matches(wrong_answer(item), oracle, item.item.integers, item.item.tolerance)
        item.answer(by_hand)
        assert item.result.correct
        wrong = DrillItem(DRILLS[name], seed, record=False)
        wrong.answer(wrong_answer(wrong))
        assert not wrong.result.correct and wrong.result.solution == lines
    capsys.readouterr()


def test_the_answer_is_computed_by_torch_at_check_time_not_stored(monkeypatch, capsys) -> None:
    item = drill("conv_output_size", seed=11, record=False, show=False)
    right = right_answer(item)
    real = torch.nn.functional.conv2d
    monkeypatch.setattr(drills_module.F, "conv2d", lambda *a, **k: real(*a, **k)[..., :1, :1])
    item.answer(right)  # PyTorch, patched here to answer 1, is the judge: the formula's answer is now wrong
    assert not item.result.correct and item.result.expected == (1.0,)
    counted = drill("precision_recall", seed=3, record=False, show=False)
    monkeypatch.setattr(counted.item, "oracle", lambda: (0.0, 0.0))
    counted.answer(right_answer(counted))
    assert not counted.result.correct
    capsys.readouterr()


def test_a_wrong_answer_shows_the_worked_solution(capsys) -> None:
    item = drill("conv_output_size", seed=4, record=False)
    shown = capsys.readouterr().out
    assert item.question in shown and "an integer" in shown
    expected = int(right_answer(item)[0])
    item.answer(expected + 3)
    out = capsys.readouterr().out
    assert f"✗ Not quite: the answer is {expected}" in out and "Worked solution:" in out
    assert "⌊(H + 2P" in out and f"= {expected}" in out
    item.answer(expected)  # one answer per item
    assert "This item is answered" in capsys.readouterr().out


def test_answers_in_any_reasonable_form() -> None:
    assert parse_answer("(8, 16, 14, 14)") == parse_answer("8x16x14x14") == parse_answer(torch.Size([8, 16, 14, 14]))
    assert parse_answer((8, 16, 14, 14)) == [8.0, 16.0, 14.0, 14.0] == parse_answer(torch.tensor([8, 16, 14, 14]))
    assert parse_answer("2/3, −0.5") == pytest.approx([2 / 3, -0.5])
    assert parse_answer(None) is None and parse_answer("  ") is None
    with pytest.raises(TypeError):
        parse_answer(True)
    assert matches([0.67], [2 / 3], integers=False) and not matches([0.6], [2 / 3], integers=False)
    assert not matches([14.0], [14.0, 14.0], integers=True)


def test_headless_runs_neither_fail_nor_record(capsys) -> None:
    """What CI's headless run does with a chapter's drill cells: show an item, then run d.answer(None)."""
    d = drill("conv_shapes")
    d.answer(None)
    assert "No answer yet" in capsys.readouterr().out
    assert load_events() == [] and d.result is None
    d.answer("(1, 2)")  # the wrong number of values: said, not recorded, and the item stays open
    assert "Expected 4 numbers" in capsys.readouterr().out and load_events() == [] and d.result is None
    d.answer(right_answer(d))
    assert d.result.correct and [e["drill"] for e in load_events()] == ["conv_shapes"]


def test_fluency_is_recorded_with_the_time_from_when_the_item_was_shown(capsys) -> None:
    clock = Clock()

    def answer(right: bool, seconds: float, seed: int) -> DrillItem:
        item = drill("param_count", seed=seed, clock=clock)
        clock.now += seconds
        item.answer(right_answer(item) if right else wrong_answer(item))
        return item

    def row():
        return drill_progress([("param_count", 3)])[0]

    for seed in range(FLUENT_STREAK - 1):
        answer(True, 12.5, seed)
    assert (row().streak, row().mastered) == (FLUENT_STREAK - 1, False)
    assert [e["seconds"] for e in load_events()] == [12.5] * (FLUENT_STREAK - 1)  # from when it was shown
    slow = answer(True, FLUENT_SECONDS + 1, 10)  # right, but not fluent: the streak starts again
    assert slow.result.correct and not slow.result.fluent and row().streak == 0
    assert "not yet fluent" in capsys.readouterr().out
    for seed in range(20, 20 + FLUENT_STREAK):
        answer(True, FLUENT_SECONDS - 1, seed)
    assert row().mastered and row().right == 2 * FLUENT_STREAK and row().answers == 2 * FLUENT_STREAK
    assert "mastered!" in capsys.readouterr().out
    assert any("★ mastered" in line and 'drill("param_count")' in line for line in progress_view().splitlines())
    answer(False, 5, 99)  # a wrong answer ends the streak: practise again
    assert (row().streak, row().mastered, row().best_streak) == (0, False, FLUENT_STREAK)
    assert "◐ practising" in progress_view()


def test_drill_without_a_name_picks_a_drill_of_the_chapter_not_yet_mastered(capsys) -> None:
    clock = Clock()
    for seed in range(FLUENT_STREAK):
        item = drill("precision_recall", seed=seed, clock=clock)
        item.answer(right_answer(item))
    assert drill(chapter=5, seed=1).drill.name == "precision_recall"  # the only one: offered even when mastered
    names = {drill(chapter=3, seed=s, show=False).drill.name for s in range(30)}
    assert names == {"conv_output_size", "conv_shapes", "param_count"}
    with pytest.raises(ValueError, match="no drill named 'conv'"):
        drill("conv")
    capsys.readouterr()


def test_drilling_from_a_terminal() -> None:
    rng = random.Random(3)
    first = DrillItem(DRILLS["conv_output_size"], rng.randrange(1, 1_000_000), record=False)
    second = DrillItem(DRILLS["conv_output_size"], rng.randrange(1, 1_000_000), record=False)
    lines = [" ".join(map(str, map(int, right_answer(first)))), "", str(int(right_answer(second)[0]) + 1)]
    proc = subprocess.run([sys.executable, "-m", "exercises", "drill", "conv_output_size", "-n", "2", "--seed", "3"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120,
                          cwd=PROJECT_ROOT, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert first.question in out and second.question in out
    assert "✓ Right" in out and "No answer yet" in out and "Worked solution:" in out and "1 of 2 right" in out
    assert [(e["drill"], e["correct"]) for e in load_events()] == [("conv_output_size", True),
                                                                  ("conv_output_size", False)]


def test_the_drill_command_says_what_it_expected(capsys) -> None:
    from exercises.__main__ import main

    assert main(["drill", "conv_shapes", "-n", "0"]) == 2
    assert "expected 1 or more, got 0" in capsys.readouterr().err
    assert main(["drill", "--chapter", "9"]) == 2
    err = capsys.readouterr().err
    assert "chapter 9 has no drills" in err and "0, 1, 2, 3, 4, 5" in err
    assert main(["drill", "conv_shape"]) == 2
    captured = capsys.readouterr()
    assert "no drill named conv_shape" in captured.err and 'drill("conv_shapes")' in captured.out
    assert main(["drill"]) == 0 and 'drill("precision_recall")' in capsys.readouterr().out
    assert load_events() == []
