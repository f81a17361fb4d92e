"""Hidden tests of ``exercises.optim``: trajectories against ``torch.optim`` and the schedule's formula,
on shapes, settings and parameter groups the visible checks do not use."""

from __future__ import annotations

import torch

from exercises.checks import Property
from exercises.checks.optim import (
    ADAMW_HINTS,
    SGD_HINTS,
    optimizer_trajectory,
    schedule_values,
    zero_grad_clears,
)
from grading.suite import hidden_test

SHAPES = [(5,), (3, 4), (), (2, 3, 3, 3)]  # a vector, a matrix, a scalar, a convolution's weight


@hidden_test("SGD")
def sgd_plain() -> Property:
    return optimizer_trajectory("SGD", "plain SGD, four parameter shapes", SGD_HINTS["plain"], shapes=SHAPES,
                                kwargs={"lr": 0.07}, seed=101)


@hidden_test("SGD")
def sgd_momentum() -> Property:
    return optimizer_trajectory("SGD", "momentum 0.95", SGD_HINTS["momentum"], shapes=SHAPES,
                                kwargs={"lr": 0.02, "momentum": 0.95}, seed=102)


@hidden_test("SGD")
def sgd_nesterov_with_decay() -> Property:
    return optimizer_trajectory("SGD", "Nesterov momentum with weight decay", SGD_HINTS["nesterov"], shapes=SHAPES,
                                kwargs={"lr": 0.03, "momentum": 0.9, "nesterov": True, "weight_decay": 0.02}, seed=103)


@hidden_test("SGD")
def sgd_decay_only() -> Property:
    return optimizer_trajectory("SGD", "weight decay without momentum", SGD_HINTS["decay"], shapes=SHAPES,
                                kwargs={"lr": 0.05, "weight_decay": 0.3}, seed=104)


@hidden_test("SGD")
def sgd_momentum_and_decay_order() -> Property:
    return optimizer_trajectory("SGD", "momentum and weight decay: their order", SGD_HINTS["momentum+decay"],
                                shapes=SHAPES, kwargs={"lr": 0.04, "momentum": 0.8, "weight_decay": 0.2}, seed=105)


@hidden_test("SGD")
def sgd_param_groups() -> Property:
    groups = [{"params": [0, 3]}, {"params": [1], "lr": 0.01, "momentum": 0.0},
              {"params": [2, 4], "momentum": 0.6, "weight_decay": 0.1, "nesterov": True}]
    return optimizer_trajectory("SGD", "three parameter groups with their own settings, one frozen parameter",
                                SGD_HINTS["groups"], shapes=[*SHAPES, (6,)], groups=groups, frozen=(4,),
                                kwargs={"lr": 0.05, "momentum": 0.9}, seed=106)


@hidden_test("SGD")
def sgd_float32() -> Property:
    return optimizer_trajectory("SGD", "float32 parameters stay float32", SGD_HINTS["momentum"], shapes=SHAPES,
                                kwargs={"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, seed=107,
                                dtype=torch.float32)


@hidden_test("SGD", points=0.5)
def sgd_zero_grad() -> Property:
    return zero_grad_clears("SGD", {"lr": 0.3, "momentum": 0.5})


@hidden_test("AdamW")
def adamw_defaults() -> Property:
    return optimizer_trajectory("AdamW", "default settings, four parameter shapes", ADAMW_HINTS["default"],
                                shapes=SHAPES, kwargs={}, seed=201)


@hidden_test("AdamW")
def adamw_large_decay() -> Property:
    return optimizer_trajectory("AdamW", "large learning rate and weight decay", ADAMW_HINTS["default"], shapes=SHAPES,
                                kwargs={"lr": 0.2, "weight_decay": 0.5}, seed=202)


@hidden_test("AdamW")
def adamw_betas_and_eps() -> Property:
    return optimizer_trajectory("AdamW", "other betas and eps", ADAMW_HINTS["default"], shapes=SHAPES,
                                kwargs={"lr": 0.03, "betas": (0.5, 0.9), "eps": 1e-4, "weight_decay": 0.0}, seed=203)


@hidden_test("AdamW")
def adamw_tiny_gradients() -> Property:
    return optimizer_trajectory("AdamW", "tiny gradients, where eps matters", ADAMW_HINTS["tiny"], shapes=SHAPES,
                                kwargs={"lr": 0.02, "eps": 1e-5}, grad_scale=1e-6, seed=204)


@hidden_test("AdamW")
def adamw_param_groups() -> Property:
    groups = [{"params": [0, 1]}, {"params": [2, 3], "lr": 0.05, "betas": (0.8, 0.95), "weight_decay": 0.0},
              {"params": [4], "eps": 1e-3}]
    return optimizer_trajectory("AdamW", "three parameter groups with their own settings, one frozen parameter",
                                ADAMW_HINTS["groups"], shapes=[*SHAPES, (6,)], groups=groups, frozen=(4,),
                                kwargs={"lr": 0.01, "weight_decay": 0.1}, seed=205)


@hidden_test("AdamW")
def adamw_float32() -> Property:
    return optimizer_trajectory("AdamW", "float32 parameters stay float32", ADAMW_HINTS["default"], shapes=SHAPES,
                                kwargs={"lr": 0.01}, seed=206, dtype=torch.float32)


@hidden_test("AdamW", points=0.5)
def adamw_zero_grad() -> Property:
    return zero_grad_clears("AdamW", {"lr": 0.05})


@hidden_test("warmup_cosine_lr")
def schedule_long() -> Property:
    return schedule_values(200, 0.3, 17, 0.0, steps=[*range(0, 40), *range(190, 215)])


@hidden_test("warmup_cosine_lr")
def schedule_with_final_lr() -> Property:
    return schedule_values(60, 1.5, 9, 0.05)


@hidden_test("warmup_cosine_lr")
def schedule_no_warmup() -> Property:
    return schedule_values(25, 0.08, 0, 0.001)


@hidden_test("warmup_cosine_lr")
def schedule_all_warmup() -> Property:
    return schedule_values(12, 0.4, 12, 0.0)
