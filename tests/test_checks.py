"""The ReLU properties accept every correct implementation and name each realistic mistake.

Each variant is the reference with one change. The properties run in-process here, exactly as the
visible check runs them; test_grading.py runs the same through the sandbox.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import exercises
from exercises.checks import CheckFailed, check, evaluate
from exercises.checks.layers import relu_check
from tests.conftest import BACKWARD_LINE, FORWARD_LINE, REFERENCE_LAYERS, STUB_LAYERS, throwaway_packages, variant

CORRECT = {
    "reference": REFERENCE_LAYERS,
    "clamp": variant(FORWARD_LINE, "    out = x.clamp(min=0)\n"),
    "multiply by mask": variant(FORWARD_LINE, "    out = x * (x > 0)\n"),
    "maximum": variant(FORWARD_LINE, "    out = torch.maximum(x, torch.zeros_like(x))\n"),
    "cache the output": variant("    return out, x\n", "    return out, out\n"),
    "float mask": variant(BACKWARD_LINE, "    return dout * (x > 0).to(dout.dtype)\n"),
    "masked_fill": variant(BACKWARD_LINE, "    return dout.masked_fill(x <= 0, 0)\n"),
    "clone then assign": variant(BACKWARD_LINE, "    dx = dout.clone()\n    dx[x <= 0] = 0\n    return dx\n"),
}

MISTAKES = {  # variant -> (failing exercise, words the diagnosis must contain)
    "x >= 0 in backward": (variant(BACKWARD_LINE, "    return torch.where(x >= 0, dout, torch.zeros_like(dout))\n"),
                           {"relu_backward": "gradient at x == 0 is 1"}),
    "forgot dout": (variant(BACKWARD_LINE, "    return (x > 0).to(x.dtype)\n"),
                    {"relu_backward": "without multiplying by dout"}),
    "no mask": (variant(BACKWARD_LINE, "    return dout.clone()\n"), {"relu_backward": "passed dout through"}),
    "reversed mask": (variant(BACKWARD_LINE, "    return torch.where(x < 0, dout, torch.zeros_like(dout))\n"),
                      {"relu_backward": "where x < 0 instead of where x > 0"}),
    "in place forward": (variant(FORWARD_LINE, "    out = x.clamp_(min=0)\n"), {"relu_forward": "in place"}),
    "in place backward": (variant(BACKWARD_LINE, "    dout[x <= 0] = 0\n    return dout\n"),
                          {"relu_backward": "changed its input `dout` in place"}),
    "abs": (variant(FORWARD_LINE, "    out = x.abs()\n"), {"relu_forward": "|x|"}),
    "mask as output": (variant(FORWARD_LINE, "    out = (x > 0).to(x.dtype)\n"), {"relu_forward": "the mask"}),
    "no cache": (variant("    return out, x\n", "    return out\n"), {"relu_forward": "must return a pair"}),
    "float64 output": (variant(FORWARD_LINE, "    out = torch.where(x > 0, x, torch.zeros_like(x)).double()\n"),
                       {"relu_forward": "dtype"}),
}


@pytest.fixture
def as_package(tmp_path: Path):
    """Install a layers.py source as a throwaway package; return a program runner for it."""
    yield from throwaway_packages("layers.py", tmp_path)


@pytest.mark.parametrize("name", CORRECT)
def test_correct_implementations_pass_every_property(name: str, as_package) -> None:
    run = as_package(CORRECT[name])
    for prop in relu_check():
        assert evaluate(prop, run) == (True, ""), f"{name}: {prop.exercise}: {prop.title}"


@pytest.mark.parametrize("name", MISTAKES)
def test_each_mistake_fails_with_its_diagnosis(name: str, as_package) -> None:
    source, expected = MISTAKES[name]
    run = as_package(source)
    failures = {}
    for prop in relu_check():
        passed, message = evaluate(prop, run)
        if not passed:
            failures.setdefault(prop.exercise, []).append(message)
    assert failures, f"{name} passed every property"
    for exercise, words in expected.items():
        assert any(words in m for m in failures.get(exercise, [])), f"{name}: {failures}"


def test_stub_fails_with_not_implemented(as_package) -> None:
    run = as_package(STUB_LAYERS)
    for prop in relu_check():
        passed, message = evaluate(prop, run)
        assert not passed and "not implemented yet" in message


@pytest.fixture
def learner_file(tmp_path: Path, monkeypatch):
    """Point ``exercises.layers`` at a file the test writes, as a learner's edited file."""
    monkeypatch.setattr(exercises, "__path__", [str(tmp_path), *exercises.__path__])
    monkeypatch.delitem(sys.modules, "exercises.layers", raising=False)
    yield tmp_path / "layers.py"
    sys.modules.pop("exercises.layers", None)


def test_check_passes_on_the_reference_and_prints_each_property(learner_file: Path, capsys) -> None:
    learner_file.write_text(REFERENCE_LAYERS)
    assert check("relu") is None  # passes without a value for the notebook to print
    out = capsys.readouterr().out
    assert out.count("✓") == 5 and "✗" not in out


def test_check_rereads_the_file_after_an_edit(learner_file: Path, capsys) -> None:
    learner_file.write_text(MISTAKES["x >= 0 in backward"][0])
    with pytest.raises(CheckFailed, match="1 of 5 properties"):
        check("relu")
    assert "your gradient at x == 0 is 1" in capsys.readouterr().out
    learner_file.write_text(REFERENCE_LAYERS)
    assert check("relu") is None  # passes without a value for the notebook to print


def test_check_reports_a_syntax_error_plainly(learner_file: Path) -> None:
    learner_file.write_text(REFERENCE_LAYERS.replace("def relu_backward(", "def relu_backward(("))
    with pytest.raises(CheckFailed, match=r"exercises/layers.py has a syntax error on line \d+"):
        check("relu")


def test_check_failure_renders_without_a_traceback_in_ipython() -> None:
    lines = CheckFailed("✗ relu: something")._render_traceback_()
    assert len(lines) == 1 and "something" in lines[0]


def test_unknown_check_name_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match="no check named .rleu.; available: .*relu"):
        check("rleu")


def test_properties_do_not_depend_on_the_dtype_of_their_inputs(as_package) -> None:
    from exercises.checks.layers import relu_backward_values, relu_forward_values

    run = as_package(REFERENCE_LAYERS)
    x = torch.randn(4, 3, dtype=torch.float64)
    x[x == 0] = 1.0
    assert evaluate(relu_forward_values(x), run) == (True, "")
    assert evaluate(relu_backward_values(x, torch.randn(4, 3, dtype=torch.float64)), run) == (True, "")
