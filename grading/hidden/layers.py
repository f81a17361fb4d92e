"""Hidden tests of ``exercises.layers``: the shared properties, on inputs learners never see."""

from __future__ import annotations

import torch

from exercises.checks import Property
from exercises.checks.layers import (
    relu_backward_at_zero,
    relu_backward_keeps_inputs,
    relu_backward_values,
    relu_forward_keeps_input,
    relu_forward_values,
)
from grading.suite import hidden_test


def _randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32, zeros: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)
    if zeros:
        x[torch.rand(*shape, generator=g) < 0.2] = 0.0
    else:
        x[x == 0] = 0.5
    return x


@hidden_test("relu_forward")
def relu_forward_4d_float32() -> Property:
    return relu_forward_values(_randn(2, 3, 5, 7, seed=11, zeros=True))


@hidden_test("relu_forward")
def relu_forward_float64_large() -> Property:
    return relu_forward_values(_randn(9, 13, seed=12, dtype=torch.float64) * 1e4)


@hidden_test("relu_forward")
def relu_forward_non_contiguous() -> Property:
    return relu_forward_values(_randn(6, 8, seed=13).t())


@hidden_test("relu_forward")
def relu_forward_input_unchanged() -> Property:
    return relu_forward_keeps_input(_randn(4, 10, seed=14, zeros=True))


@hidden_test("relu_backward")
def relu_backward_4d_float64() -> Property:
    return relu_backward_values(_randn(3, 2, 4, 5, seed=21, dtype=torch.float64), _randn(3, 2, 4, 5, seed=22, dtype=torch.float64))


@hidden_test("relu_backward")
def relu_backward_float32() -> Property:
    return relu_backward_values(_randn(17, 6, seed=23), _randn(17, 6, seed=24))


@hidden_test("relu_backward")
def relu_backward_zero_input() -> Property:
    return relu_backward_at_zero(_randn(8, 9, seed=25, zeros=True), _randn(8, 9, seed=26))


@hidden_test("relu_backward")
def relu_backward_inputs_unchanged() -> Property:
    return relu_backward_keeps_inputs(_randn(5, 7, seed=27, zeros=True), _randn(5, 7, seed=28))
