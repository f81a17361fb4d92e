"""Properties of the layer exercises in ``exercises.layers`` (chapter 2), and their visible checks."""

from __future__ import annotations

from typing import Any

import torch

from exercises.checks import (
    Mistake,
    Property,
    count_mismatches,
    expect_pair,
    expect_tensor,
    expect_unchanged,
    register,
)
from exercises.checks.program import Program

# ----------------------------------------------------------------------------- ReLU


def _relu_forward_program(x: torch.Tensor) -> Program:
    p = Program()
    xr = p.put(x.clone())
    return p.fetch(result=p.call("layers.relu_forward", xr), x_after=xr)


def relu_forward_values(x: torch.Tensor) -> Property:
    """``out`` equals ``max(0, x)`` elementwise, with the input's shape, dtype and device."""

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["result"], "relu_forward")
        out = expect_tensor(out, "relu_forward's out", x)
        expected = torch.where(x > 0, x, torch.zeros_like(x))
        if count_mismatches(out, expected) == 0:
            return
        if torch.equal(out, x):
            raise Mistake("relu_forward returned its input unchanged: negative entries must become 0.")
        if torch.equal(out, x.abs()):
            raise Mistake("relu_forward returned |x|: negative entries must become 0, not positive.")
        if torch.equal(out, torch.where(x < 0, x, torch.zeros_like(x))):
            raise Mistake("relu_forward kept the negative entries and zeroed the positive ones: the comparison is reversed.")
        if torch.equal(out, (x > 0).to(x.dtype)):
            raise Mistake("relu_forward returned the mask (x > 0) rather than the values max(0, x).")
        raise Mistake(f"relu_forward's out differs from max(0, x) at {count_mismatches(out, expected)} of {x.numel()} elements.")

    return Property("relu_forward", f"equals max(0, x) on a {_describe(x)} input", _relu_forward_program(x), judge)


def relu_forward_keeps_input(x: torch.Tensor) -> Property:
    """The input holds its original values after the call."""

    def judge(got: dict[str, Any]) -> None:
        expect_unchanged(got["x_after"], x, "x", "relu_forward")

    return Property("relu_forward", "leaves its input unchanged", _relu_forward_program(x), judge)


def _relu_backward_program(x: torch.Tensor, dout: torch.Tensor) -> Program:
    p = Program()
    xr, dr = p.put(x.clone()), p.put(dout.clone())
    forward = p.call("layers.relu_forward", xr)
    dx = p.call("layers.relu_backward", dr, p.item(forward, 1))
    return p.fetch(dx=dx, x_after=xr, dout_after=dr)


def relu_backward_values(x: torch.Tensor, dout: torch.Tensor) -> Property:
    """``dx = dout`` where ``x > 0`` and 0 elsewhere (``x`` should hold no exact zeros here)."""

    def judge(got: dict[str, Any]) -> None:
        dx = expect_tensor(got["dx"], "relu_backward's dx", x)
        expected = torch.where(x > 0, dout, torch.zeros_like(dout))
        if count_mismatches(dx, expected) == 0:
            return
        if torch.equal(dx, (x > 0).to(x.dtype)):
            raise Mistake(
                "relu_backward returned the local gradient (x > 0) without multiplying by dout: "
                "the chain rule gives dx = dout · 1[x > 0]."
            )
        if torch.equal(dx, dout):
            raise Mistake("relu_backward passed dout through unchanged: where x < 0 the gradient must be 0.")
        if torch.equal(dx, torch.where(x < 0, dout, torch.zeros_like(dout))):
            raise Mistake("relu_backward lets the gradient through where x < 0 instead of where x > 0.")
        raise Mistake(f"relu_backward's dx differs from dout · 1[x > 0] at {count_mismatches(dx, expected)} of {x.numel()} elements.")

    return Property("relu_backward", f"dx = dout · 1[x > 0] on a {_describe(x)} input", _relu_backward_program(x, dout), judge)


def relu_backward_at_zero(x: torch.Tensor, dout: torch.Tensor) -> Property:
    """Where ``x == 0`` exactly, ``dx`` is 0 (the contract's choice of subgradient)."""
    zero = x == 0
    if not bool(zero.any()):
        raise ValueError("relu_backward_at_zero needs an input with exact zeros")

    def judge(got: dict[str, Any]) -> None:
        dx = expect_tensor(got["dx"], "relu_backward's dx", x)
        at_zero = dx[zero]
        if bool((at_zero == 0).all()):
            return
        if torch.equal(at_zero, dout[zero]):
            raise Mistake(
                "your gradient at x == 0 is 1 (dout passes through); the contract says 0. "
                "The mask must be x > 0, not x >= 0."
            )
        raise Mistake("where x == 0 your dx is not 0; the contract says the gradient there is 0 (mask x > 0).")

    return Property("relu_backward", "the gradient where x == 0 is 0", _relu_backward_program(x, dout), judge)


def relu_backward_keeps_inputs(x: torch.Tensor, dout: torch.Tensor) -> Property:
    """Neither ``x`` nor ``dout`` is modified by the forward and backward calls."""

    def judge(got: dict[str, Any]) -> None:
        expect_unchanged(got["x_after"], x, "x", "relu_forward/relu_backward")
        expect_unchanged(got["dout_after"], dout, "dout", "relu_backward")

    return Property("relu_backward", "leaves x and dout unchanged", _relu_backward_program(x, dout), judge)


def _describe(x: torch.Tensor) -> str:
    return f"{'×'.join(map(str, x.shape))} {str(x.dtype).removeprefix('torch.')}"


@register("relu", module="layers")
def relu_check() -> list[Property]:
    """The visible check for ``relu_forward`` and ``relu_backward``, on small fixed inputs."""
    x = torch.tensor([[-2.0, -0.5, 0.0, 0.5], [3.0, -1.0, 0.0, 1.5], [-0.25, 2.0, -3.0, 0.75]])
    no_zeros = torch.tensor([[-2.0, -0.5, 0.25, 0.5], [3.0, -1.0, -0.1, 1.5], [-0.25, 2.0, -3.0, 0.75]])
    dout = torch.tensor([[0.5, -1.0, 2.0, 1.5], [-0.5, 1.0, 3.0, -2.0], [1.0, 0.25, -1.5, 2.5]])
    return [
        relu_forward_values(x),
        relu_forward_keeps_input(x),
        relu_backward_values(no_zeros, dout),
        relu_backward_at_zero(x, dout),
        relu_backward_keeps_inputs(x, dout),
    ]
