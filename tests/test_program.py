"""Programs: the calls a property makes, run the same way in a notebook and in the sandbox."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from exercises.checks.program import Program, StepFailed, run_program
from grading.sandbox import Limits, Sandbox
from grading.submissions import Submission, stage

MODULE = '''
import torch
import torch.nn.functional as F


def by_hand(x):
    return torch.where(x > 0, x, torch.zeros_like(x))


def with_torch(x):
    return F.relu(x)


def sneaky(x):
    try:
        return x.relu()
    except Exception:
        return torch.where(x > 0, x, torch.zeros_like(x))


def with_autograd(x):
    x = x.clone().requires_grad_()
    (x * x).sum().backward()
    return x.grad


def validating(x):
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D, got {x.ndim}-D")
    return x
'''
FORBID = ("torch.nn.functional.relu", "torch.relu", "torch.Tensor.relu", "torch.Tensor.backward")


def _program(target: str, x: torch.Tensor) -> Program:
    p = Program().forbid(*FORBID)
    return p.fetch(out=p.call(f"probe.{target}", p.put(x)))


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    root = tmp_path_factory.mktemp("pkg")
    (root / "demo_pkg").mkdir()
    (root / "demo_pkg" / "__init__.py").write_text("")
    (root / "demo_pkg" / "probe.py").write_text(MODULE)
    sys.path.insert(0, str(root))
    yield lambda p: run_program(p.steps, p.fetches, package="demo_pkg", forbidden=p.forbidden)
    sys.path.remove(str(root))


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory):
    root = stage(Submission("probe", Path("."), files={"probe.py": MODULE.encode()}), tmp_path_factory.mktemp("s"))
    with Sandbox(root, Limits(timeout=10)) as box:
        yield box.run


@pytest.mark.parametrize("where", ["in_process", "sandboxed"])
def test_forbidden_operations_fail_even_when_the_error_is_caught(where: str, request) -> None:
    run = request.getfixturevalue(where)
    x = torch.tensor([-1.0, 2.0])
    assert torch.equal(run(_program("by_hand", x))["out"], torch.tensor([0.0, 2.0]))
    for target, op in (("with_torch", "torch.nn.functional.relu"), ("sneaky", "torch.Tensor.relu"),
                       ("with_autograd", "torch.Tensor.backward")):
        with pytest.raises(StepFailed) as info:
            run(_program(target, x))
        assert info.value.error_type == "ForbiddenCall" and op in info.value.message, target


def test_forbidden_operations_are_restored_afterwards(in_process) -> None:
    with pytest.raises(StepFailed):
        in_process(_program("with_torch", torch.ones(2)))
    assert torch.equal(torch.nn.functional.relu(torch.tensor([-1.0])), torch.tensor([0.0]))
    x = torch.ones(1, requires_grad=True)
    (2 * x).sum().backward()
    assert x.grad.item() == 2.0


@pytest.mark.parametrize("where", ["in_process", "sandboxed"])
def test_raises_reports_the_exception_type_and_message(where: str, request) -> None:
    run = request.getfixturevalue(where)
    p = Program()
    bad = p.raises("probe.validating", p.put(torch.zeros(3)))
    good = p.raises("probe.validating", p.put(torch.zeros(1, 3)))
    got = run(p.fetch(bad=bad, good=good))
    assert got["bad"] == {"raised": "ValueError", "message": "x must be 2-D, got 1-D"}
    assert got["good"] == {"raised": None, "message": ""}


@pytest.mark.parametrize("where", ["in_process", "sandboxed"])
def test_programs_can_build_torch_objects_such_as_seeded_generators(where: str, request) -> None:
    run = request.getfixturevalue(where)
    p = Program()
    generator = p.method(p.call("torch.Generator"), "manual_seed", 7)
    draw = p.call("torch.rand", 3, generator=generator)
    total = p.call("operator.add", 2, 3)
    got = run(p.fetch(draw=draw, total=total))
    assert torch.equal(got["draw"], torch.rand(3, generator=torch.Generator().manual_seed(7)))
    assert got["total"] == 5


def test_each_run_gets_its_own_copy_of_the_programs_inputs() -> None:
    """Code that changes its input in place cannot change what the next run of the same program sees
    (visible checks and in-process judges run one program many times)."""
    original = torch.zeros(3, requires_grad=False)
    p = Program()
    p.fetch(out=p.call("operator.iadd", p.put(original), 1.0), literal=p.call("operator.iadd", original, 1.0))
    first = run_program(p.steps, p.fetches)
    second = run_program(p.steps, p.fetches)
    assert torch.equal(first["out"], torch.ones(3)) and torch.equal(second["out"], torch.ones(3))
    assert torch.equal(second["literal"], torch.ones(3)) and torch.equal(original, torch.zeros(3))
    leaf = torch.ones(2, requires_grad=True)
    q = Program()
    q.fetch(is_leaf=q.attr(q.put(leaf), "is_leaf"), requires_grad=q.attr(q.put(leaf), "requires_grad"))
    got = run_program(q.steps, q.fetches)
    assert got["is_leaf"] is True and got["requires_grad"] is True
