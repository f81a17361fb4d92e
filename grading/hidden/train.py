"""Hidden tests of ``exercises.train``: the probes of ``exercises.checks.train`` on other inputs, and
``build_cnn`` trained with the course's fixed CPU budget by a loop that is part of the test (a
program of plain steps: torch's AdamW and cross-entropy, never the learner's own loop), judged on
validation digits whose labels never leave the grader."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch

from exercises.checks import Mistake, Property
from exercises.checks.program import Program
from exercises.checks.train import (
    cnn_shapes,
    evaluate_changes_nothing,
    evaluate_mode_and_no_grad,
    evaluate_moves_batches,
    evaluate_values,
    seed_reproduces,
    train_clears_stale_gradients,
    train_gradients,
    train_moves_batches,
    train_returns_sample_mean,
    train_sets_training_mode,
    train_uses_autocast,
    train_uses_scaler,
)
from exercises.kit.training import CPU_BUDGET, MNIST_MEAN, MNIST_STD
from grading.suite import hidden_test

# ----------------------------------------------------------------------------- train_one_epoch


@hidden_test("train_one_epoch")
def train_gradients_uneven() -> Property:
    return train_gradients(seed=11, n=14, batch_size=5)


@hidden_test("train_one_epoch")
def train_gradients_even() -> Property:
    return train_gradients(seed=12, n=9, batch_size=3, lr=0.3)


@hidden_test("train_one_epoch")
def train_sample_mean() -> Property:
    return train_returns_sample_mean(seed=13, n=11, batch_size=4)


@hidden_test("train_one_epoch")
def train_sample_mean_small_last_batch() -> Property:
    return train_returns_sample_mean(seed=14, n=8, batch_size=3)


@hidden_test("train_one_epoch")
def train_mode() -> Property:
    return train_sets_training_mode(seed=15)


@hidden_test("train_one_epoch")
def train_stale_gradients() -> Property:
    return train_clears_stale_gradients(seed=16)


@hidden_test("train_one_epoch")
def train_device() -> Property:
    return train_moves_batches(seed=17)


@hidden_test("train_one_epoch")
def train_scaler() -> Property:
    return train_uses_scaler(seed=18, n=11, batch_size=4)


@hidden_test("train_one_epoch", points=0.5)
def train_autocast() -> Property:
    return train_uses_autocast(seed=19)


# ----------------------------------------------------------------------------- evaluate


@hidden_test("evaluate")
def evaluate_uneven_batches() -> Property:
    return evaluate_values(seed=21, n=11, batch_size=4)


@hidden_test("evaluate")
def evaluate_other_batches() -> Property:
    return evaluate_values(seed=22, n=13, batch_size=5)


@hidden_test("evaluate")
def evaluate_mode() -> Property:
    return evaluate_mode_and_no_grad(seed=23)


@hidden_test("evaluate")
def evaluate_leaves_model_alone() -> Property:
    return evaluate_changes_nothing(seed=24)


@hidden_test("evaluate")
def evaluate_device() -> Property:
    return evaluate_moves_batches(seed=25)


# ----------------------------------------------------------------------------- build_cnn


@hidden_test("build_cnn")
def cnn_shapes_and_size() -> Property:
    return cnn_shapes([(1, 10, 28), (3, 10, 32), (3, 7, 32), (1, 4, 28)], batch=3, seed=31)


SPLIT_SEED, INIT_SEED, ORDER_SEED = 4242, 77, 1313
TRAIN_TIMEOUT = 240.0  # seconds; the reference takes about 15 s on one core of a quiet machine


@lru_cache(maxsize=1)
def _embedded() -> Any:
    from exercises.kit.datasets import load_embedded_mnist

    return load_embedded_mnist()


def _stratified_split(labels: torch.Tensor, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    shuffler = torch.Generator().manual_seed(seed)
    val, train = [], []
    for c in range(10):
        index = (labels == c).nonzero().flatten()
        index = index[torch.randperm(len(index), generator=shuffler)]
        val.append(index[:per_class])
        train.append(index[per_class:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def _normalized(p: Program, images: torch.Tensor) -> Any:
    """``(x/255 − mean)/std`` computed in the learner's process from ``uint8`` images (4× less to send)."""
    x = p.method(p.method(p.put(images), "float"), "div", 255.0)
    return p.method(p.method(x, "sub", MNIST_MEAN[0]), "div", MNIST_STD[0])


def cnn_trained_with_the_budget(seed: int = INIT_SEED) -> Property:
    """``build_cnn(1, 10)``, trained by a fixed loop with ``CPU_BUDGET`` (AdamW, warmup-cosine, cross-entropy)
    on 4,000 digits of the embedded subset, classifies at least 97 % of the other 1,000 correctly."""
    budget = CPU_BUDGET
    data = _embedded()
    train_idx, val_idx = _stratified_split(data.labels, budget.val_size // 10, SPLIT_SEED)
    val_labels = data.labels[val_idx]
    p = Program(timeout=TRAIN_TIMEOUT)
    p.call("torch.manual_seed", seed)  # the learner's initialization draws from torch's generator
    x_train = _normalized(p, data.images[train_idx])
    y_train = p.put(data.labels[train_idx])
    x_val = _normalized(p, data.images[val_idx])
    net = p.call("train.build_cnn", 1, 10)
    size = p.call("checks.train.count_parameters", net)
    p.method(net, "train")
    adamw = p.call("torch.optim.AdamW", p.method(net, "parameters"), lr=0.0)
    group = p.item(p.attr(adamw, "param_groups"), 0)
    n, bs = len(train_idx), budget.batch_size
    steps_per_epoch = math.ceil(n / bs)
    total = budget.epochs * steps_per_epoch
    warmup = round(budget.warmup_fraction * total)
    order = torch.Generator().manual_seed(ORDER_SEED)
    step = 0
    for _ in range(budget.epochs):
        perm = p.put(torch.randperm(n, generator=order))
        xe, ye = p.call("torch.index_select", x_train, 0, perm), p.call("torch.index_select", y_train, 0, perm)
        for start in range(0, n, bs):
            length = min(bs, n - start)
            if step < warmup:
                lr = budget.peak_lr * (step + 1) / warmup
            else:
                lr = 0.5 * budget.peak_lr * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
            p.call("operator.setitem", group, "lr", lr)
            scores = p.method(net, "__call__", p.method(xe, "narrow", 0, start, length))
            objective = p.call("torch.nn.functional.cross_entropy", scores, p.method(ye, "narrow", 0, start, length))
            p.method(adamw, "zero_grad")
            p.method(objective, "backward")
            p.method(adamw, "step")
            step += 1
    p.method(net, "eval")
    p.call("torch.set_grad_enabled", False)
    logits = p.method(net, "__call__", x_val)
    p.call("torch.set_grad_enabled", True)  # as it was (this matters when the program runs in-process)
    p.fetch(logits=logits, size=size)

    def judge_training(got: dict[str, Any]) -> None:
        if got["size"] == -1:
            raise Mistake("build_cnn must return a torch.nn.Module.")
        if got["size"] > 2_000_000:
            raise Mistake(f"build_cnn(1, 10) has {got['size']:,} parameters; the limit is 2,000,000.")
        logits = got["logits"]
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (len(val_idx), 10):
            raise Mistake("after training, the model did not return N×10 logits for the validation digits.")
        if not bool(torch.isfinite(logits).all()):
            raise Mistake("after training with the budget the model's logits are not finite: the training diverged.")
        accuracy = (logits.argmax(1) == val_labels).double().mean().item()
        if accuracy >= 0.97:
            return
        raise Mistake(f"trained with the course's CPU budget ({budget.epochs} epochs of AdamW, peak lr "
                      f"{budget.peak_lr:g}, batch {budget.batch_size}, on {n:,} digits), your CNN classifies "
                      f"{accuracy:.1%} of the validation digits correctly; the contract asks for at least 97 %. "
                      "Batch normalization after each convolution, ReLU, and two or three poolings usually get "
                      "there; the notebook's fast mode trains with the same budget.")

    return Property("build_cnn", f"reaches 97 % validation accuracy with the CPU budget ({budget.epochs} epochs)",
                    p, judge_training)


@hidden_test("build_cnn", points=3)
def cnn_budget_accuracy() -> Property:
    return cnn_trained_with_the_budget()


# ----------------------------------------------------------------------------- set_seed


@hidden_test("set_seed")
def seed_small() -> Property:
    return seed_reproduces(123, 124)


@hidden_test("set_seed")
def seed_large() -> Property:
    return seed_reproduces(4_000_000_000, 5)
