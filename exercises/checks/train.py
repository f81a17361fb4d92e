"""Properties of ``exercises.train`` (chapter 4), and their visible checks.

How a training loop is checked without a GPU and without a reference loop:

* ``ProbeModel`` is a tiny network (linear → batch norm → tanh → linear) that writes down, at every
  forward call, whether it was in training mode, whether gradients were being tracked, whether
  autocast was on, and whether its input had been moved to the training device;
* ``RecordingSGD`` is ``torch.optim.SGD`` that writes down, at every ``step()``, the parameters and
  the gradients it was given. The judge recomputes each batch's gradient at those parameters with
  torch's autograd and compares: accumulated gradients (a missing ``zero_grad``), a scaled gradient
  (a ``GradScaler`` bypassed), a summed loss all show up as a named mismatch;
* ``OnLoaderDevice`` is a batch that behaves as if it still lived on the loader's device: any
  operation mixing it with the model's tensors raises, as a CPU batch meeting a CUDA model does,
  and only ``.to(device)`` (or ``.cpu()``, the training device here) gives an ordinary tensor. So a
  loop that forgets to move its batches fails here exactly as it would on a GPU.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from exercises.checks import Mistake, Property, register
from exercises.checks.program import Program, Ref

# ----------------------------------------------------------------------------- a batch on another device

NOT_MOVED = ("a batch was used before being moved to the training device: {what} still lives on the loader's "
             "device (simulated here; on a GPU this is torch's 'Expected all tensors to be on the same device'). "
             "Move every batch first: x, y = x.to(device), y.to(device).")


class OnLoaderDevice(torch.Tensor):
    """A tensor that acts as if it were on another device than the model (see the module docstring)."""

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if getattr(func, "__self__", None) is torch.Tensor.device:  # the .device property
            return torch.device("meta")
        if func in (torch.Tensor.to, torch.Tensor.cpu):
            targets = [*args[1:], kwargs.get("device")]
            if func is torch.Tensor.cpu or any(isinstance(t, (torch.device, str)) for t in targets):
                with torch._C.DisableTorchFunctionSubclass():
                    return func(*args, **kwargs).as_subclass(torch.Tensor)
        leaves, _ = tree_flatten((args, kwargs))
        with torch._C.DisableTorchFunctionSubclass():
            ours = [t for t in leaves if isinstance(t, cls)]
            others = [t for t in leaves if isinstance(t, torch.Tensor) and not isinstance(t, cls) and t.dim() > 0]
            if ours and others:
                what = "the labels y" if any(not t.is_floating_point() for t in ours) else "the images x"
                raise RuntimeError(NOT_MOVED.format(what=what))
            result = func(*args, **kwargs)
        if not ours:
            return result
        return tree_map(lambda r: r.as_subclass(cls) if isinstance(r, torch.Tensor) and not isinstance(r, cls) else r,
                        result)


def _on_loader_device(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = torch.utils.data.default_collate(batch)
    return x.as_subclass(OnLoaderDevice), y.as_subclass(OnLoaderDevice)


def probe_loader(x: torch.Tensor, y: torch.Tensor, batch_size: int,
                 other_device: bool = False) -> torch.utils.data.DataLoader:
    """A ``DataLoader`` over ``(x, y)`` in order (batches of ``batch_size``, the last one shorter);
    with ``other_device`` its batches are ``OnLoaderDevice`` tensors."""
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=False,
                                       collate_fn=_on_loader_device if other_device else None)


# ----------------------------------------------------------------------------- a model and an optimizer that take notes


class ProbeModel(nn.Module):
    """``N×1×H×W`` (``in_features = H·W``) → linear → batch norm → tanh → linear → ``N×num_classes``,
    initialised from ``seed`` (running statistics included), writing one entry into ``self.calls``
    per forward call."""

    def __init__(self, in_features: int = 16, num_classes: int = 3, seed: int = 0, dtype: str = "float64") -> None:
        super().__init__()
        dt = getattr(torch, dtype)
        self.fc1 = nn.Linear(in_features, 8, dtype=dt)
        self.bn = nn.BatchNorm1d(8, dtype=dt)
        self.fc2 = nn.Linear(8, num_classes, dtype=dt)
        draw_from = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=draw_from, dtype=torch.float64) * 0.7)
            self.bn.running_mean.copy_(torch.randn(8, generator=draw_from, dtype=torch.float64) * 0.5)
            self.bn.running_var.copy_(torch.rand(8, generator=draw_from, dtype=torch.float64) + 0.5)
        self.calls: list[dict[str, Any]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch._C.DisableTorchFunctionSubclass():
            moved = not isinstance(x, OnLoaderDevice)
            self.calls.append({"training": self.training, "grad_enabled": torch.is_grad_enabled(),
                               "autocast": torch.is_autocast_enabled("cpu"),
                               "autocast_dtype": str(torch.get_autocast_dtype("cpu")).removeprefix("torch."),
                               "moved": moved, "batch": int(x.shape[0])})
        if not moved:
            raise RuntimeError(NOT_MOVED.format(what="the images x"))
        return self.fc2(torch.tanh(self.bn(self.fc1(x.flatten(1)))))


class RecordingSGD(torch.optim.SGD):
    """``torch.optim.SGD`` (plain, ``lr`` only) that records, at every ``step()``, the parameters and
    gradients it receives, in ``self.records``."""

    def __init__(self, params: Any, lr: float = 0.1) -> None:
        super().__init__(params, lr=lr)
        self.records: list[dict[str, Any]] = []

    def step(self, closure: Any = None) -> Any:
        params = [p for group in self.param_groups for p in group["params"]]
        self.records.append({"params": [p.detach().clone() for p in params],
                             "grads": [None if p.grad is None else p.grad.detach().clone() for p in params]})
        return super().step(closure)


class ProbeScaler(torch.amp.GradScaler):
    """A real ``GradScaler`` on the CPU (scale 256, doubled after every step) that says plainly when it
    is used out of order, where torch's own messages are cryptic; ``self.calls`` lists what was called."""

    def __init__(self) -> None:
        super().__init__("cpu", init_scale=256.0, growth_interval=1)
        self.calls: list[str] = []

    def _since_update(self) -> list[str]:
        last = max((i for i, c in enumerate(self.calls) if c == "update"), default=-1)
        return self.calls[last + 1:]

    def scale(self, outputs: Any) -> Any:
        self.calls.append("scale")
        return super().scale(outputs)

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        if "step" in self._since_update():
            raise RuntimeError("scaler.step(optimizer) was called twice without scaler.update() in between: call "
                               "scaler.update() once after every scaler.step(optimizer).")
        self.calls.append("step")
        return super().step(optimizer, *args, **kwargs)

    def update(self, new_scale: Any = None) -> None:
        if "step" not in self._since_update():
            raise RuntimeError("scaler.update() came without a scaler.step(optimizer) before it: step with "
                               "scaler.step(optimizer), which un-scales the gradients first, not optimizer.step().")
        self.calls.append("update")
        super().update(new_scale)


def snapshot(model: nn.Module) -> dict[str, Any]:
    """Copies of every parameter and buffer of ``model``, and of every gradient (``None`` if unset)."""
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "grads": {k: None if p.grad is None else p.grad.detach().clone() for k, p in model.named_parameters()}}


def plant_gradients(model: nn.Module, value: float) -> None:
    """Leave a gradient of ``value`` everywhere, as an earlier backward pass would have."""
    for p in model.parameters():
        p.grad = torch.full_like(p, value)


def dtype(name: str) -> torch.dtype:
    """``torch.<name>``: programs carry plain data, so a dtype travels as its name."""
    return getattr(torch, name)


def count_parameters(model: Any) -> int:
    """The number of numbers in ``model``'s parameters (``-1`` if it is not an ``nn.Module``)."""
    return sum(p.numel() for p in model.parameters()) if isinstance(model, nn.Module) else -1


def draws() -> dict[str, Any]:
    """Three draws from each of Python's, NumPy's and torch's global generators."""
    return {"python": [random.random() for _ in range(3)], "numpy": [float(v) for v in np.random.random_sample(3)],
            "torch": torch.rand(3, dtype=torch.float64)}


# ----------------------------------------------------------------------------- inputs, and the judges' oracle


def probe_data(n: int, seed: int, num_classes: int = 3, side: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` float64 "images" ``n×1×side×side`` and labels in ``0..num_classes-1``."""
    draw_from = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, side, side, generator=draw_from, dtype=torch.float64)
    y = torch.randint(0, num_classes, (n,), generator=draw_from)
    return x, y


def _batches(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]


def _probe_at(params: list[torch.Tensor], seed: int, dtype_name: str, in_features: int, num_classes: int) -> ProbeModel:
    model = ProbeModel(in_features, num_classes, seed, dtype_name)
    with torch.no_grad():
        for p, value in zip(model.parameters(), params, strict=True):
            p.copy_(value)
    return model


def _loss_and_gradients(model: ProbeModel, x: torch.Tensor, y: torch.Tensor, training: bool = True
                        ) -> tuple[float, list[torch.Tensor]]:
    """The batch's mean cross-entropy and its gradient with respect to each parameter (torch autograd)."""
    model.train(training)
    batch_loss = F.cross_entropy(model(x), y)
    return batch_loss.item(), list(torch.autograd.grad(batch_loss, list(model.parameters())))


def _close(a: list[torch.Tensor], b: list[torch.Tensor], rtol: float = 1e-6) -> bool:
    return all(isinstance(u, torch.Tensor) and u.shape == v.shape
               and torch.allclose(u.double(), v.double(), rtol=rtol, atol=1e-9)
               for u, v in zip(a, b, strict=True))


def _expect_number(value: Any, what: str) -> float:
    if isinstance(value, torch.Tensor):
        raise Mistake(f"{what} is a tensor; return a Python float (loss.item(), or float(...)).")
    if type(value) not in (int, float):  # a NumPy scalar is not a Python float: the grader cannot read it
        name = getattr(value, "type_name", type(value).__name__)
        raise Mistake(f"{what} must be a Python float; got {name}: convert it with float(...).")
    if not math.isfinite(value):
        raise Mistake(f"{what} is {value}.")
    return float(value)


# ----------------------------------------------------------------------------- train_one_epoch


def _train_program(*, seed: int, n: int, batch_size: int, lr: float, start_mode: str = "train",
                   other_device: bool = False, stale: float | None = None, scaler: bool = False,
                   amp: str | None = None, dtype_name: str = "float64") -> tuple[Program, torch.Tensor, torch.Tensor]:
    x, y = probe_data(n, seed)
    x = x.to(dtype(dtype_name))
    p = Program()
    model = p.call("checks.train.ProbeModel", 16, 3, seed, dtype_name)
    p.method(model, start_mode)
    if stale is not None:
        p.call("checks.train.plant_gradients", model, stale)
    optimizer = p.call("checks.train.RecordingSGD", p.method(model, "parameters"), lr)
    loader = p.call("checks.train.probe_loader", p.put(x), p.put(y), batch_size, other_device)
    kwargs: dict[str, Any] = {}
    scaler_ref: Ref | None = None
    if scaler:
        scaler_ref = p.call("checks.train.ProbeScaler")
        kwargs["scaler"] = scaler_ref
    if amp is not None:
        kwargs["amp_dtype"] = p.call("checks.train.dtype", amp)
    result = p.call("train.train_one_epoch", model, loader, optimizer, p.call("torch.device", "cpu"), **kwargs)
    p.fetch(result=result, calls=p.attr(model, "calls"), records=p.attr(optimizer, "records"))
    if scaler_ref is not None:
        p.fetch(scale=p.method(scaler_ref, "get_scale"), scaler_calls=p.attr(scaler_ref, "calls"))
    return p, x, y


def _check_records(records: Any, n_batches: int) -> None:
    if not isinstance(records, list):
        raise Mistake("the check could not read what the optimizer received.")
    if len(records) == 0:
        raise Mistake("train_one_epoch never called optimizer.step(): the parameters never changed.")
    if len(records) != n_batches:
        raise Mistake(f"optimizer.step() ran {len(records)} times for {n_batches} batches: step once per batch.")
    for k, record in enumerate(records):
        if any(g is None for g in record["grads"]):
            raise Mistake(f"at step {k + 1} the optimizer received no gradient: call loss.backward() before "
                          "optimizer.step(), and zero the gradients before backward, not after it (zero_grad() sets "
                          "them to None).")


def _check_calls(calls: Any, n_batches: int, *, training: bool, grad_enabled: bool, function: str) -> None:
    if not isinstance(calls, list) or not calls:
        raise Mistake(f"{function} never called the model.")
    if len(calls) != n_batches:
        raise Mistake(f"{function} called the model {len(calls)} times for {n_batches} batches: once per batch.")
    if training and not all(c["training"] for c in calls):
        raise Mistake(f"{function} ran the model in evaluation mode: call model.train() at its start (the model may "
                      "arrive in eval mode, for example straight after evaluate), so that dropout and batch norm "
                      "behave as in training.")
    if not training and any(c["training"] for c in calls):
        raise Mistake(f"{function} ran the model in training mode: call model.eval() first, so that batch norm uses "
                      "its running statistics (and does not update them) and dropout is off.")
    if grad_enabled and not all(c["grad_enabled"] for c in calls):
        raise Mistake(f"{function} ran the model with gradient tracking off: no gradient can reach the parameters.")
    if not grad_enabled and any(c["grad_enabled"] for c in calls):
        raise Mistake(f"{function} tracked gradients: wrap the loop in `with torch.no_grad():` (or "
                      "torch.inference_mode()), which saves memory and time and cannot touch .grad.")


def _replay(records: list[dict[str, Any]], x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
            dtype_name: str) -> list[tuple[float, list[torch.Tensor]]]:
    """For each recorded step: the batch's loss and gradient at the parameters the optimizer had then."""
    out = []
    for record, (bx, by) in zip(records, _batches(x, y, batch_size), strict=True):
        model = _probe_at(record["params"], seed, dtype_name, x[0].numel(), 3)
        out.append(_loss_and_gradients(model, bx, by))
    return out


def train_gradients(seed: int, n: int, batch_size: int, lr: float = 0.1) -> Property:
    """Every ``optimizer.step()`` receives exactly the gradient of its own batch's mean cross-entropy,
    computed in training mode at the current parameters (so gradients were zeroed in between)."""
    program, x, y = _train_program(seed=seed, n=n, batch_size=batch_size, lr=lr)
    n_batches = math.ceil(n / batch_size)
    sizes = [len(b[1]) for b in _batches(x, y, batch_size)]

    def judge(got: dict[str, Any]) -> None:
        _check_calls(got["calls"], n_batches, training=True, grad_enabled=True, function="train_one_epoch")
        if any(c["autocast"] for c in got["calls"]):
            raise Mistake("train_one_epoch ran autocast although amp_dtype is None: None means full precision.")
        records = got["records"]
        _check_records(records, n_batches)
        fresh = _replay(records, x, y, batch_size, seed, "float64")
        running: list[torch.Tensor] | None = None
        for k, (record, (_, grads)) in enumerate(zip(records, fresh, strict=True)):
            running = grads if running is None else [r + g for r, g in zip(running, grads, strict=True)]
            if _close(record["grads"], grads):
                continue
            if k > 0 and _close(record["grads"], running):
                raise Mistake("gradients accumulate from one step to the next: backward() adds into .grad, so zero "
                              "the gradients every step (optimizer.zero_grad() before loss.backward()).")
            if all(bool((g == 0).all()) for g in record["grads"]):
                raise Mistake("the optimizer received all-zero gradients: zero_grad() must come before backward(), "
                              "not between backward() and step().")
            if _close(record["grads"], [g * sizes[k] for g in grads]):
                raise Mistake("the gradients are those of the batch's summed loss: use the batch mean "
                              "(F.cross_entropy's default reduction='mean').")
            raise Mistake(f"at step {k + 1} the optimizer received a gradient that is not that of the batch's "
                          "cross-entropy at the current parameters.")

    return Property("train_one_epoch",
                    f"each step gets its own batch's gradient ({n} samples, batches of {batch_size})", program, judge)


def train_returns_sample_mean(seed: int, n: int, batch_size: int) -> Property:
    """The result is ``Σ loss_b·n_b / Σ n_b`` over the epoch's batches, each loss measured before its step."""
    if n % batch_size == 0:
        raise ValueError("train_returns_sample_mean needs a short last batch")
    program, x, y = _train_program(seed=seed, n=n, batch_size=batch_size, lr=0.1)
    n_batches = math.ceil(n / batch_size)
    sizes = [len(b[1]) for b in _batches(x, y, batch_size)]

    def judge(got: dict[str, Any]) -> None:
        result = _expect_number(got["result"], "train_one_epoch's result")
        _check_records(got["records"], n_batches)
        losses = [loss for loss, _ in _replay(got["records"], x, y, batch_size, seed, "float64")]
        expected = sum(loss * s for loss, s in zip(losses, sizes, strict=True)) / n
        if math.isclose(result, expected, rel_tol=1e-5):
            return
        wrong = {
            "the mean of the batch means: a short last batch then counts as much as a full one. Weight each "
            "batch's loss by its size, and divide by the number of samples": sum(losses) / len(losses),
            "the sum of the batch losses; divide by the number of samples, weighting each batch by its size":
                sum(losses),
            "the last batch's loss; return the mean over every sample of the epoch": losses[-1],
            "the total over samples; divide it by the number of samples": expected * n,
        }
        for words, value in wrong.items():
            if math.isclose(result, value, rel_tol=1e-5):
                raise Mistake(f"train_one_epoch returned {words}.")
        raise Mistake("train_one_epoch's result is not the mean loss over the epoch's samples (each batch's loss, "
                      "measured before its step, weighted by the batch's size).")

    return Property("train_one_epoch", f"returns the mean loss over samples ({n} samples, batches of {batch_size})",
                    program, judge)


def train_sets_training_mode(seed: int) -> Property:
    """A model that arrives in eval mode is trained in training mode."""
    program, _, _ = _train_program(seed=seed, n=10, batch_size=4, lr=0.1, start_mode="eval")

    def judge(got: dict[str, Any]) -> None:
        _check_calls(got["calls"], 3, training=True, grad_enabled=True, function="train_one_epoch")

    return Property("train_one_epoch", "puts a model that arrives in eval mode in training mode", program, judge)


def train_moves_batches(seed: int) -> Property:
    """Batches that come from another device are moved to ``device`` before use."""
    program, _, _ = _train_program(seed=seed, n=10, batch_size=4, lr=0.1, other_device=True)

    def judge(got: dict[str, Any]) -> None:
        _check_calls(got["calls"], 3, training=True, grad_enabled=True, function="train_one_epoch")
        if not all(c["moved"] for c in got["calls"]):
            raise Mistake(NOT_MOVED.format(what="the images x"))

    return Property("train_one_epoch", "moves each batch (images and labels) to the device", program, judge)


def train_clears_stale_gradients(seed: int) -> Property:
    """Gradients left on the model before the call do not leak into the first step."""
    program, x, y = _train_program(seed=seed, n=8, batch_size=4, lr=0.1, stale=0.5)

    def judge(got: dict[str, Any]) -> None:
        _check_records(got["records"], 2)
        first = got["records"][0]
        _, grads = _replay(got["records"][:1], x[:4], y[:4], 4, seed, "float64")[0]
        if _close(first["grads"], grads):
            return
        if _close(first["grads"], [g + 0.5 for g in grads]):
            raise Mistake("the first step still carried gradients left on the model before train_one_epoch was "
                          "called: zero the gradients before each backward pass (at the top of the loop), not only "
                          "after the step.")
        raise Mistake("the first step's gradient is not that of the first batch.")

    return Property("train_one_epoch", "ignores gradients left on the model before the call", program, judge)


def train_uses_scaler(seed: int, n: int = 10, batch_size: int = 4) -> Property:
    """With a ``GradScaler``: the loss is scaled for backward, the optimizer receives unscaled
    gradients (``scaler.step``), and the scale is updated every step (``scaler.update``)."""
    program, x, y = _train_program(seed=seed, n=n, batch_size=batch_size, lr=0.1, scaler=True)
    n_batches = math.ceil(n / batch_size)

    def judge(got: dict[str, Any]) -> None:
        records = got["records"]
        _check_records(records, n_batches)
        fresh = _replay(records, x, y, batch_size, seed, "float64")
        scale = got["scale"]
        if "scale" not in got["scaler_calls"]:
            raise Mistake("a GradScaler was given but never used: back-propagate scaler.scale(loss), step with "
                          "scaler.step(optimizer), then call scaler.update() (on float16 GPUs this is what keeps "
                          "small gradients from rounding to zero).")
        for k, (record, (_, grads)) in enumerate(zip(records, fresh, strict=True)):
            if _close(record["grads"], grads):
                continue
            factor = 256.0 * 2**k
            if _close(record["grads"], [g * factor for g in grads]):
                raise Mistake("the optimizer received gradients multiplied by the scaler's scale: step with "
                              "scaler.step(optimizer), which un-scales them first (and skips a step whose gradients "
                              "overflowed), not optimizer.step().")
            raise Mistake(f"at step {k + 1} the optimizer did not receive the batch's gradient.")
        if scale == 256.0:
            raise Mistake("a GradScaler was given but never used: back-propagate scaler.scale(loss), step with "
                          "scaler.step(optimizer), then call scaler.update() (on float16 GPUs this is what keeps "
                          "small gradients from rounding to zero).")
        if scale != 256.0 * 2**n_batches:
            raise Mistake("scaler.update() must be called once after every scaler.step(optimizer): the scale did not "
                          "change as it should have.")

    return Property("train_one_epoch", "uses the GradScaler when one is given (scale, step, update)", program, judge)


def train_uses_autocast(seed: int, amp: str = "bfloat16") -> Property:
    """With ``amp_dtype``, the forward pass runs under ``torch.autocast`` with that dtype."""
    program, _, _ = _train_program(seed=seed, n=8, batch_size=4, lr=0.1, amp=amp, dtype_name="float32")

    def judge(got: dict[str, Any]) -> None:
        calls = got["calls"]
        if not calls or not all(c["autocast"] and c["autocast_dtype"] == amp for c in calls):
            raise Mistake(f"with amp_dtype=torch.{amp} the forward pass must run under "
                          "torch.autocast(device.type, dtype=amp_dtype).")

    return Property("train_one_epoch", f"runs the forward pass under autocast with amp_dtype={amp}", program, judge)


# ----------------------------------------------------------------------------- evaluate


def _evaluate_program(*, seed: int, n: int, batch_size: int,
                      other_device: bool = False) -> tuple[Program, torch.Tensor, torch.Tensor]:
    x, y = probe_data(n, seed)
    p = Program()
    model = p.call("checks.train.ProbeModel", 16, 3, seed, "float64")
    p.method(model, "train")
    before = p.call("checks.train.snapshot", model)
    loader = p.call("checks.train.probe_loader", p.put(x), p.put(y), batch_size, other_device)
    result = p.call("train.evaluate", model, loader, p.call("torch.device", "cpu"))
    p.fetch(result=result, calls=p.attr(model, "calls"), before=before, after=p.call("checks.train.snapshot", model))
    return p, x, y


def _expect_metrics(value: Any) -> tuple[float, float]:
    if not isinstance(value, dict) or set(value) != {"loss", "accuracy"}:
        keys = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise Mistake(f"evaluate must return a dict with exactly the keys 'loss' and 'accuracy'; got {keys}.")
    return (_expect_number(value["loss"], "evaluate's 'loss'"),
            _expect_number(value["accuracy"], "evaluate's 'accuracy'"))


def evaluate_values(seed: int, n: int, batch_size: int) -> Property:
    """``loss`` is the mean cross-entropy over all samples and ``accuracy`` the fraction of correct
    argmax predictions, both in evaluation mode."""
    program, x, y = _evaluate_program(seed=seed, n=n, batch_size=batch_size)
    reference = ProbeModel(16, 3, seed, "float64")

    def judge(got: dict[str, Any]) -> None:
        loss, accuracy = _expect_metrics(got["result"])
        reference.eval()
        with torch.no_grad():
            logits = reference(x)
            expected_loss = F.cross_entropy(logits, y).item()
            correct = int((logits.argmax(1) == y).sum())
        expected_accuracy = correct / n
        # (correct / n) computed in float32, as (pred == y).float().mean() does, is off by about 1e-8.
        if not math.isclose(accuracy, expected_accuracy, rel_tol=1e-6, abs_tol=1e-9):
            if math.isclose(accuracy, correct):
                raise Mistake("'accuracy' is the number of correct predictions; divide by the number of samples.")
            if math.isclose(accuracy, 100 * expected_accuracy):
                raise Mistake("'accuracy' is a percentage; return the fraction (between 0 and 1).")
        if math.isclose(loss, expected_loss, rel_tol=1e-5) and math.isclose(accuracy, expected_accuracy, rel_tol=1e-6,
                                                                             abs_tol=1e-9):
            return
        with torch.no_grad():
            means = [F.cross_entropy(reference(bx), by).item() for bx, by in _batches(x, y, batch_size)]
            train_mode = ProbeModel(16, 3, seed, "float64").train()
            train_loss = F.cross_entropy(train_mode(x[:batch_size]), y[:batch_size]).item()
        if math.isclose(loss, sum(means) / len(means), rel_tol=1e-5):
            raise Mistake("'loss' is the mean of the batch means: a short last batch then counts as much as a full "
                          "one. Sum the per-sample losses (reduction='sum') and divide by the number of samples.")
        if math.isclose(loss, sum(means), rel_tol=1e-5):
            raise Mistake("'loss' is the sum of the batch means; return the mean over samples.")
        if any(c["training"] for c in got["calls"]) or math.isclose(means[0], train_loss, rel_tol=1e-9):
            raise Mistake("evaluate ran the model in training mode: call model.eval() first.")
        raise Mistake("evaluate's 'loss' is not the mean cross-entropy over every sample"
                      + ("" if math.isclose(accuracy, expected_accuracy) else ", and 'accuracy' is not the fraction of "
                         "samples whose argmax is the label") + ".")

    return Property("evaluate",
                    f"returns the mean loss and accuracy over samples ({n} samples, batches of {batch_size})",
                    program, judge)


def evaluate_mode_and_no_grad(seed: int) -> Property:
    """The model runs in evaluation mode, with gradient tracking off."""
    program, _, _ = _evaluate_program(seed=seed, n=10, batch_size=4)

    def judge(got: dict[str, Any]) -> None:
        _check_calls(got["calls"], 3, training=False, grad_enabled=False, function="evaluate")

    return Property("evaluate", "runs the model in eval mode without tracking gradients", program, judge)


def evaluate_changes_nothing(seed: int) -> Property:
    """No parameter, buffer (batch norm's running statistics) or gradient changes."""
    program, _, _ = _evaluate_program(seed=seed, n=10, batch_size=4)

    def judge(got: dict[str, Any]) -> None:
        before, after = got["before"], got["after"]
        for name, value in before["state"].items():
            if not torch.equal(after["state"].get(name, torch.empty(0)), value):
                what = ("batch norm's running statistics (a buffer)" if "running" in name or "batches" in name
                        else "a parameter")
                raise Mistake(f"evaluate changed {what}, {name}: in eval mode (model.eval()) under torch.no_grad() "
                              "nothing about the model changes.")
        if any(g is not None for g in after["grads"].values()):
            raise Mistake("evaluate left gradients on the parameters: it must not call backward(); wrap it in "
                          "torch.no_grad().")

    return Property("evaluate", "changes no parameter, buffer or gradient", program, judge)


def evaluate_moves_batches(seed: int) -> Property:
    """Batches from another device are moved to ``device`` before use."""
    program, _, _ = _evaluate_program(seed=seed, n=10, batch_size=4, other_device=True)

    def judge(got: dict[str, Any]) -> None:
        _expect_metrics(got["result"])

    return Property("evaluate", "moves each batch (images and labels) to the device", program, judge)


# ----------------------------------------------------------------------------- build_cnn


def cnn_shapes(cases: list[tuple[int, int, int]], batch: int = 2, seed: int = 0) -> Property:
    """For each ``(in_channels, num_classes, size)``: ``build_cnn(in_channels, num_classes)`` maps a
    ``batch×in_channels×size×size`` float32 input to finite float32 logits ``batch×num_classes``, in
    eval mode and for a single image too; at most 2 million parameters."""
    draw_from = torch.Generator().manual_seed(seed)
    p = Program()
    p.call("torch.manual_seed", seed)
    outputs, counts, singles = [], [], []
    for in_channels, num_classes, size in cases:
        model = p.call("train.build_cnn", in_channels, num_classes)
        counts.append(p.call("checks.train.count_parameters", model))
        x = torch.randn(batch, in_channels, size, size, generator=draw_from)
        outputs.append(p.method(model, "__call__", p.put(x)))
        p.method(model, "eval")
        singles.append(p.method(model, "__call__", p.put(x[:1])))
    p.fetch(outputs=outputs, counts=counts, singles=singles)

    def judge(got: dict[str, Any]) -> None:
        for (in_channels, num_classes, size), out, count, single in zip(cases, got["outputs"], got["counts"],
                                                                           got["singles"], strict=True):
            where = f"build_cnn({in_channels}, {num_classes}) on {size}×{size} images"
            if count == -1:
                raise Mistake("build_cnn must return a torch.nn.Module (for example an nn.Sequential).")
            for value, n in ((out, batch), (single, 1)):
                if not isinstance(value, torch.Tensor):
                    raise Mistake(f"{where} returned {type(value).__name__}; the model must return a tensor of logits.")
                if tuple(value.shape) != (n, num_classes):
                    raise Mistake(f"{where}: a batch of {n} gave shape {tuple(value.shape)}; "
                                  f"expected ({n}, {num_classes}). "
                                  "End with a global pooling (nn.AdaptiveMaxPool2d(1) or AdaptiveAvgPool2d(1)), then "
                                  "nn.Flatten() and nn.Linear(channels, num_classes), so any image size works.")
                if value.dtype != torch.float32:
                    raise Mistake(f"{where} returned {value.dtype} logits for float32 images; keep float32.")
                if not bool(torch.isfinite(value).all()):
                    raise Mistake(f"{where} returned non-finite logits.")
            if count > 2_000_000:
                raise Mistake(f"{where} has {count:,} parameters; the limit is 2,000,000 (fewer channels, or a global "
                              "pooling instead of a big Linear on a flattened feature map).")

    described = ", ".join(f"{c}×{s}×{s}→{k}" for c, k, s in cases)
    return Property("build_cnn", f"maps images to logits ({described}), ≤ 2M parameters", p, judge)


@lru_cache(maxsize=1)
def _digits(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    from exercises.kit.datasets import load_embedded_mnist

    data = load_embedded_mnist()
    index = torch.arange(n) * (len(data.labels) // n)
    return (data.images[index].float() / 255 - 0.1307) / 0.3081, data.labels[index]


def cnn_overfits_one_batch(steps: int = 20, n: int = 32, seed: int = 0, target: float = 0.1) -> Property:
    """Karpathy's sanity check: with AdamW (lr 3e-3) the model drives the loss on one fixed batch of
    ``n`` digits below ``target`` within ``steps`` steps; its initial loss is reported when it fails."""
    x, y = _digits(n)
    p = Program()
    p.call("torch.manual_seed", seed)
    model = p.call("train.build_cnn", 1, 10)
    p.method(model, "train")
    optimizer = p.call("torch.optim.AdamW", p.method(model, "parameters"), lr=3e-3)
    xr, yr = p.put(x), p.put(y)
    losses = []
    for _ in range(steps):
        loss = p.call("torch.nn.functional.cross_entropy", p.method(model, "__call__", xr), yr)
        losses.append(p.method(loss, "item"))
        p.method(optimizer, "zero_grad")
        p.method(loss, "backward")
        p.method(optimizer, "step")
    p.fetch(losses=losses)

    def judge(got: dict[str, Any]) -> None:
        losses = got["losses"]
        first, last = losses[0], losses[-1]
        if not all(isinstance(v, float) and math.isfinite(v) for v in losses):
            raise Mistake("the loss became non-finite while overfitting one batch: look for a missing normalization "
                          "or an activation that explodes.")
        if last < target:
            return
        init = ""
        if abs(first - math.log(10)) > 1.0:
            init = (f" Its initial loss was {first:.2f}, far from ln(10) ≈ 2.30 (what uniform predictions give): "
                    "the last layer's outputs are too large or too small at initialization.")
        raise Mistake(f"after {steps} AdamW steps on one batch of {n} digits the loss is still {last:.3f} (it should "
                      f"fall below {target}): a model that cannot memorize one batch cannot learn the dataset. Check "
                      "that it returns raw logits (no softmax, no ReLU at the end), and that it is not too shallow "
                      f"or too narrow.{init}")

    return Property("build_cnn", f"can overfit one batch of {n} digits ({steps} AdamW steps)", p, judge)


# ----------------------------------------------------------------------------- set_seed


def seed_reproduces(seed: int, other: int) -> Property:
    """After ``set_seed(seed)`` Python's, NumPy's and torch's next draws are those of generators seeded
    with ``seed``; the same seed again gives the same draws, ``other`` gives different ones."""
    p = Program().forbid("exercises.kit.devices.seed_everything")  # the course's helper does this very job
    p.call("train.set_seed", seed)
    first = p.call("checks.train.draws")
    p.call("train.set_seed", seed)
    again = p.call("checks.train.draws")
    p.call("train.set_seed", other)
    different = p.call("checks.train.draws")
    p.fetch(first=first, again=again, different=different)

    def judge(got: dict[str, Any]) -> None:
        rng = random.Random(seed)
        expected = {
            "python": [rng.random() for _ in range(3)],
            "numpy": [float(v) for v in np.random.RandomState(seed).random_sample(3)],
            "torch": torch.rand(3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)),
        }
        how = {"python": "random.seed(seed)", "numpy": "np.random.seed(seed)", "torch": "torch.manual_seed(seed)"}
        names = {"python": "Python's random", "numpy": "NumPy's global generator", "torch": "torch's generator"}
        unseeded = [key for key in ("python", "numpy", "torch")
                     if not (torch.equal(got["first"][key], expected[key]) if key == "torch"
                             else got["first"][key] == expected[key])]
        if unseeded:
            raise Mistake(f"after set_seed({seed}) {' and '.join(names[k] for k in unseeded)} "
                          f"{'does' if len(unseeded) == 1 else 'do'} not draw what a generator seeded with {seed} "
                          f"draws: seed {'it' if len(unseeded) == 1 else 'them'} with "
                          f"{', '.join(how[k] for k in unseeded)} (with the seed itself, unchanged).")
        for key in ("python", "numpy", "torch"):
            if (torch.equal(got["different"][key], got["first"][key]) if key == "torch"
                    else got["different"][key] == got["first"][key]):
                raise Mistake(f"set_seed({other}) and set_seed({seed}) give {names[key]} the same draws: use the seed.")

    return Property("set_seed", f"seeds Python, NumPy and torch (seeds {seed} and {other})", p, judge)


# ----------------------------------------------------------------------------- visible checks


@register("train_one_epoch")
def train_one_epoch_check() -> list[Property]:
    """The visible check for ``train_one_epoch``."""
    return [
        train_gradients(seed=1, n=12, batch_size=4),
        train_returns_sample_mean(seed=2, n=10, batch_size=4),
        train_sets_training_mode(seed=3),
        train_clears_stale_gradients(seed=4),
        train_moves_batches(seed=5),
        train_uses_scaler(seed=6),
        train_uses_autocast(seed=7),
    ]


@register("evaluate")
def evaluate_check() -> list[Property]:
    """The visible check for ``evaluate``."""
    return [
        evaluate_values(seed=1, n=10, batch_size=4),
        evaluate_mode_and_no_grad(seed=2),
        evaluate_changes_nothing(seed=3),
        evaluate_moves_batches(seed=4),
    ]


@register("build_cnn")
def build_cnn_check() -> list[Property]:
    """The visible check for ``build_cnn`` (the grader also trains it; see the notebook)."""
    return [
        cnn_shapes([(1, 10, 28), (3, 10, 32)]),
        cnn_overfits_one_batch(),
    ]


@register("set_seed")
def set_seed_check() -> list[Property]:
    """The visible check for ``set_seed``."""
    return [seed_reproduces(0, 1), seed_reproduces(2024, 7)]
