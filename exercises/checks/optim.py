"""Properties of the optimizers and the schedule in ``exercises.optim`` (chapter 4), and their visible checks.

The oracles are ``torch.optim.SGD`` and ``torch.optim.AdamW`` themselves, driven through the same
50 steps on the same parameters with the same gradients (``drive``), and the schedule's formula.
Each configuration (momentum alone, weight decay alone, both, Nesterov, several groups, ...) is its
own property, so which ones fail tells the mistake apart; a few first-step hypotheses (Adam without
bias correction, weight decay added to the gradient) are recognised by name.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import torch

from exercises.checks import Mistake, Property, register
from exercises.checks.program import Program, fetch_number, fetched_number


def _exists(dotted: str) -> bool:
    module, _, attr = dotted.rpartition(".")
    try:
        return hasattr(importlib.import_module(module), attr)
    except ImportError:
        return False


STEPS = 50
RTOL = 1e-6  # the contract's tolerance, for float64 parameters
# The optimizers must compute their update, not delegate it to torch.optim. A class's ``step`` is
# named only where the class defines it (AdamW inherits Adam's in recent torch), so that blocking
# and restoring it never touches another class.
FORBIDDEN = tuple(
    [f"torch.optim.{name}.step" for name in ("SGD", "Adam", "AdamW") if "step" in vars(getattr(torch.optim, name))]
    + [name for name in ("torch.optim.sgd.sgd", "torch.optim.adam.adam", "torch.optim.adamw.adamw",
                         "torch.optim._functional.sgd", "torch.optim._functional.adam", "torch.optim._functional.adamw",
                         "torch._fused_sgd_", "torch._fused_adam_", "torch._fused_adamw_")
       if _exists(name)]
)

# ----------------------------------------------------------------------------- the landscape both run on


def _landscape(shape: torch.Size, dtype: torch.dtype, seed: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    draw_from = torch.Generator().manual_seed(seed * 1000 + index)
    a = torch.rand(shape, generator=draw_from, dtype=torch.float64) * 1.5 + 0.2
    c = torch.randn(shape, generator=draw_from, dtype=torch.float64)
    return a.to(dtype), c.to(dtype)


def gradient(p: torch.Tensor, seed: int, index: int, grad_scale: float = 1.0) -> torch.Tensor:
    """The gradient ``drive`` gives parameter number ``index`` at value ``p``: that of
    ``Σ ½·a·p² + c·p − ½·cos(2p)`` (a bumpy bowl, so a trajectory depends on where it has been)."""
    a, c = _landscape(p.shape, p.dtype, seed, index)
    x = p.detach()
    return (a * x + c + torch.sin(2 * x)) * grad_scale


def set_gradients(params: list[torch.Tensor], seed: int = 0, frozen: list[int] | tuple[int, ...] = (),
                  grad_scale: float = 1.0) -> None:
    """Set every parameter's ``.grad`` to ``gradient(...)`` at its current value, except the ``frozen``
    ones, whose ``.grad`` stays ``None``."""
    for i, p in enumerate(params):
        if i not in frozen:
            p.grad = gradient(p, seed, i, grad_scale)


def values(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Copies of the parameters' current values."""
    return [p.detach().clone() for p in params]


def drive(optimizer: Any, params: list[torch.Tensor], steps: int = STEPS, seed: int = 0,
          frozen: list[int] | tuple[int, ...] = (), grad_scale: float = 1.0) -> list[list[torch.Tensor]]:
    """Run ``optimizer`` for ``steps`` steps, each ``set_gradients`` then ``step()``; return the
    parameters' values after each step (``steps`` lists of copies). The programs make the same calls
    one by one, so that a failing ``step()`` is named as such."""
    trajectory = []
    for _ in range(steps):
        set_gradients(params, seed, frozen, grad_scale)
        optimizer.step(None)
        trajectory.append(values(params))
    return trajectory


def _drive_in_program(p: Program, optimizer: Any, refs: list[Any], steps: int, seed: int, frozen: tuple[int, ...],
                      grad_scale: float) -> list[Any]:
    """``drive``, written out as program steps (three per optimizer step)."""
    trajectory = []
    for _ in range(steps):
        p.call("checks.optim.set_gradients", refs, seed, list(frozen), grad_scale)
        p.method(optimizer, "step")
        trajectory.append(p.call("checks.optim.values", refs))
    return trajectory


# ----------------------------------------------------------------------------- optimizer properties


def _initial(shapes: list[tuple[int, ...]], dtype: torch.dtype, seed: int) -> list[torch.Tensor]:
    draw_from = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=draw_from, dtype=torch.float64).to(dtype) for s in shapes]


def _params_argument(refs: list[Any], groups: list[dict[str, Any]] | None) -> Any:
    """``refs`` as a plain list, or split into parameter groups: each group names its parameters by
    index (``{"params": [0, 2], "lr": 0.05}``)."""
    if groups is None:
        return list(refs)
    return [{**{k: v for k, v in grp.items() if k != "params"}, "params": [refs[i] for i in grp["params"]]}
            for grp in groups]


def _expected(kind: str, initial: list[torch.Tensor], groups: list[dict[str, Any]] | None, kwargs: dict[str, Any],
              seed: int, frozen: tuple[int, ...], grad_scale: float) -> list[list[torch.Tensor]]:
    params = [torch.nn.Parameter(t.clone()) for t in initial]
    oracle = {"SGD": torch.optim.SGD, "AdamW": torch.optim.AdamW}[kind]
    optimizer = oracle(_params_argument(params, groups), **kwargs)
    return drive(optimizer, params, STEPS, seed, frozen, grad_scale)


def _first_difference(got: list[list[torch.Tensor]], expected: list[list[torch.Tensor]], rtol: float,
                      atol: float) -> tuple[int, int, float] | None:
    """``(step, parameter, largest relative error)`` at the first step that differs, or ``None``."""
    for step, (g_params, e_params) in enumerate(zip(got, expected, strict=True)):
        for i, (g, e) in enumerate(zip(g_params, e_params, strict=True)):
            if not torch.allclose(g.double(), e.double(), rtol=rtol, atol=atol):
                rel = ((g.double() - e.double()).abs() / e.double().abs().clamp_min(atol)).max().item()
                return step, i, rel
    return None


def optimizer_trajectory(kind: str, title: str, hint: str, *, shapes: list[tuple[int, ...]], kwargs: dict[str, Any],
                         groups: list[dict[str, Any]] | None = None, seed: int = 0, dtype: torch.dtype = torch.float64,
                         frozen: tuple[int, ...] = (), grad_scale: float = 1.0) -> Property:
    """The learner's ``kind`` (``"SGD"`` or ``"AdamW"``) and ``torch.optim``'s, built with the same
    arguments on the same parameters, follow the same trajectory through ``STEPS`` steps of
    ``drive``: to 1e-6 relative in float64 (1e-3 in float32). ``hint`` is the likely mistake when
    only this configuration fails."""
    initial = _initial(shapes, dtype, seed)
    p = Program().forbid(*FORBIDDEN)
    refs = [p.call("torch.nn.Parameter", p.put(t.clone())) for t in initial]
    optimizer = p.call(f"optim.{kind}", _params_argument(refs, groups), **kwargs)
    p.fetch(trajectory=_drive_in_program(p, optimizer, refs, STEPS, seed, frozen, grad_scale))
    # In float32, correct implementations that order the arithmetic differently (p - lr*g against
    # p.add_(g, alpha=-lr)) drift apart by more than 1e-5 over 50 steps of momentum; the float64 tests
    # judge the algorithm, this one that float32 stays float32 and the trajectory stays on course.
    rtol = RTOL if dtype == torch.float64 else 1e-3
    atol = rtol * 1e-3

    def judge(got: dict[str, Any]) -> None:
        trajectory = got["trajectory"]
        if (not isinstance(trajectory, list) or len(trajectory) != STEPS
                or not all(isinstance(s, list) and len(s) == len(initial) for s in trajectory)):
            raise Mistake(f"{kind}.step() did not run {STEPS} times over the parameters "
                          "(the check could not read them).")
        for i, t in enumerate(trajectory[-1]):
            if not isinstance(t, torch.Tensor) or t.shape != initial[i].shape:
                raise Mistake(f"parameter {i} is no longer a tensor of shape {tuple(initial[i].shape)}: update it in "
                              "place (p.add_(...)), never replace it.")
            if t.dtype != dtype:
                raise Mistake(f"a {dtype} parameter became {t.dtype}: keep every state tensor in the parameter's "
                              "dtype (torch.zeros_like(p), g.clone()).")
        moving = [i for i in range(len(initial)) if i not in frozen]
        if all(torch.equal(trajectory[-1][i], initial[i]) for i in moving):
            raise Mistake(f"after {STEPS} steps the parameters still hold their initial values: step() must change "
                          "each parameter in place (p.add_(...)); `p = p - lr * g` only rebinds a local name.")
        for i in frozen:
            if not torch.equal(trajectory[-1][i], initial[i]):
                raise Mistake("a parameter whose .grad is None was changed: skip it (`if p.grad is None: continue`), "
                              "as torch.optim does (frozen layers have no gradient).")
        expected = _expected(kind, initial, groups, kwargs, seed, frozen, grad_scale)
        where = _first_difference(trajectory, expected, rtol, atol)
        if where is None:
            return
        step, index, rel = where
        named = _first_step_mistake(kind, initial, kwargs, groups, seed, frozen, grad_scale, trajectory[0], rtol, atol)
        if named:
            raise Mistake(named)
        raise Mistake(f"your {kind} departs from torch.optim.{kind} at step {step + 1} of {STEPS} (parameter {index}, "
                      f"relative error {rel:.1e}). {hint}")

    return Property(kind, title, p, judge)


def _first_step_mistake(kind: str, initial: list[torch.Tensor], kwargs: dict[str, Any], groups: Any, seed: int,
                        frozen: tuple[int, ...], grad_scale: float, first: list[torch.Tensor], rtol: float,
                        atol: float) -> str | None:
    """Name a classic AdamW mistake from the first step alone, when one explains it (single group)."""
    if kind != "AdamW" or groups is not None:
        return None
    lr = kwargs.get("lr", 1e-3)
    beta1, beta2 = kwargs.get("betas", (0.9, 0.999))
    eps, wd = kwargs.get("eps", 1e-8), kwargs.get("weight_decay", 1e-2)
    hypotheses: dict[str, Any] = {
        "there is no bias correction: on the first step m = (1−β1)·g and v = (1−β2)·g² are far too small "
        "because both start at 0; divide by (1 − β1^t) and (1 − β2^t), with t the parameter's step count "
        "starting at 1":
            lambda p, g: p * (1 - lr * wd) - lr * ((1 - beta1) * g) / (((1 - beta2) * g * g).sqrt() + eps),
        "the weight decay is added to the gradient (Adam's L2 penalty), where AdamW decays the weights "
        "directly: p ← p·(1 − lr·λ), separately from the Adam step":
            lambda p, g: p - lr * (g + wd * p) / ((g + wd * p).abs() + eps),
        "the weight decay is applied after the Adam step; AdamW shrinks p first, p ← p·(1 − lr·λ), "
        "then subtracts lr·m̂/(√v̂ + ε)": lambda p, g: (p - lr * g / (g.abs() + eps)) * (1 - lr * wd),
        "ε is inside the square root: the denominator is √v̂ + ε, not √(v̂ + ε)":
            lambda p, g: p * (1 - lr * wd) - lr * g / (g * g + eps).sqrt(),
    }
    for words, hypothesis in hypotheses.items():
        if all(i in frozen or torch.allclose(first[i].double(),
                                             hypothesis(t.double(), gradient(t.double(), seed, i, grad_scale)),
                                             rtol=rtol, atol=atol) for i, t in enumerate(initial)):
            if _is_torch_first_step(kind, initial, kwargs, seed, frozen, grad_scale, first, rtol, atol):
                return None  # the hypothesis happens to agree with torch here: nothing to name
            return f"your AdamW's first step shows that {words}."
    return None


def _is_torch_first_step(kind: str, initial: list[torch.Tensor], kwargs: dict[str, Any], seed: int,
                         frozen: tuple[int, ...], grad_scale: float, first: list[torch.Tensor], rtol: float,
                         atol: float) -> bool:
    expected = _expected(kind, initial, None, kwargs, seed, frozen, grad_scale)[0]
    return all(torch.allclose(f.double(), e.double(), rtol=rtol, atol=atol)
               for f, e in zip(first, expected, strict=True))


def zero_grad_clears(kind: str, kwargs: dict[str, Any]) -> Property:
    """``zero_grad()`` leaves no gradient behind: each ``.grad`` is ``None`` or all zeros."""
    p = Program().forbid(*FORBIDDEN)
    refs = [p.call("torch.nn.Parameter", p.put(torch.ones(3))), p.call("torch.nn.Parameter", p.put(torch.ones(2, 2)))]
    optimizer = p.call(f"optim.{kind}", refs, **kwargs)
    _drive_in_program(p, optimizer, refs, 1, 0, (), 1.0)
    p.method(optimizer, "zero_grad")
    p.fetch(grads=[p.attr(r, "grad") for r in refs])

    def judge(got: dict[str, Any]) -> None:
        for grad in got["grads"]:
            if grad is not None and not (isinstance(grad, torch.Tensor) and bool((grad == 0).all())):
                raise Mistake(f"after {kind}.zero_grad() a parameter still has a non-zero .grad: "
                              "zero_grad must set each grad to None (or zero it), or the next backward adds into "
                              "the old gradient.")

    return Property(kind, "zero_grad() clears every gradient", p, judge)


# ----------------------------------------------------------------------------- the schedule


def _schedule(step: int, total: int, peak: float, warmup: int, final: float) -> float:
    """The contract's formula (the oracle)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + 0.5 * (peak - final) * (1 + math.cos(math.pi * t))


def schedule_values(total: int, peak: float, warmup: int, final: float, steps: list[int] | None = None) -> Property:
    """``warmup_cosine_lr`` equals the contract's formula at every step of ``steps`` (default: 0 to
    ``total + 5``), as a Python float, to float32 precision."""
    steps = steps if steps is not None else list(range(total + 6))
    p = Program()
    for i, s in enumerate(steps):
        fetch_number(p, f"lr{i}", p.call("optim.warmup_cosine_lr", s, total, peak, warmup, final))

    def judge(got: dict[str, Any]) -> None:
        values = [fetched_number(got, f"lr{i}") for i in range(len(steps))]  # NumPy's float64 is a float too
        for v in values:
            if isinstance(v, torch.Tensor):
                raise Mistake("warmup_cosine_lr returned a tensor; return a Python float (math.cos, not torch.cos).")
            if type(v) not in (int, float):  # e.g. NumPy's float32, which is no float (float64 is one)
                name = getattr(v, "type_name", type(v).__name__)
                raise Mistake(f"warmup_cosine_lr must return a Python float; it returned {name}: use math.cos "
                              "(not numpy's), or convert with float(...).")
        expected = [_schedule(s, total, peak, warmup, final) for s in steps]
        # To float32 precision: computing it with float32 tensors (torch.cos(...).item()) is correct too; near
        # the end 1 + cos(π·t) cancels, so allow float32's error on the scale of peak_lr there.
        scale = 1e-6 * max(peak, final)
        wrong = [i for i, (v, e) in enumerate(zip(values, expected, strict=True))
                 if not math.isclose(v, e, rel_tol=1e-6, abs_tol=max(scale, 1e-12))]
        if not wrong:
            return
        raise Mistake(_schedule_diagnosis(steps, values, expected, wrong, total, peak, warmup, final))

    title = f"equals the formula for {total} steps, {warmup} of warmup, peak {peak:g}, final {final:g}"
    return Property("warmup_cosine_lr", title, p, judge)


def _schedule_diagnosis(steps: list[int], values: list[float], expected: list[float], wrong: list[int], total: int,
                        peak: float, warmup: int, final: float) -> str:
    def close(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)

    at = dict(zip(steps, values, strict=True))
    after = [s for s in steps if warmup < s < total]
    if warmup > 0 and 0 in at and close(at[0], 0.0) and peak > 0:
        return ("the first step's learning rate is 0, so step 0 learns nothing: during warmup the rate is "
                "peak_lr·(step + 1)/warmup_steps (off by one step).")
    if after and all(close(at[s], _schedule(s + 1, total, peak, warmup, final)) for s in after):
        return ("after the warmup your schedule is one step ahead of the formula: t = (step − warmup_steps)/"
                "max(1, total_steps − warmup_steps), so the rate is exactly peak_lr at step == warmup_steps "
                "(off by one step).")
    if after and all(close(at[s], _schedule(s - 1, total, peak, warmup, final)) for s in after):
        return "after the warmup your schedule is one step behind the formula (off by one step)."
    if final != 0 and after and all(close(at[s], _schedule(s, total, peak, warmup, 0.0)) for s in after):
        return "the cosine ignores final_lr: it goes from peak_lr down to final_lr, not to 0."
    if any(s > total for s in steps) and not all(close(at[s], final) for s in steps if s >= total):
        return ("from total_steps on the rate must stay at final_lr: clamp t = min(1, ...) so that the cosine "
                "does not come back up.")
    first = steps[wrong[0]]
    if first < warmup:
        return (f"during the warmup (step {first} here) the rate must be peak_lr·(step + 1)/warmup_steps, rising "
                "linearly to peak_lr.")
    return (f"at step {first} you return {values[wrong[0]]:.6g} where the formula gives {expected[wrong[0]]:.6g}. "
            "After the warmup: final_lr + ½(peak_lr − final_lr)(1 + cos(π·t)), t = min(1, (step − warmup_steps)/"
            "max(1, total_steps − warmup_steps)).")


# ----------------------------------------------------------------------------- visible checks

SGD_HINTS = {
    "plain": "Plain SGD is p ← p − lr·g with the group's lr (group['lr']).",
    "momentum": ("With momentum, keep one buffer per parameter in self.state[p]: b = g on its first step, then "
                 "b ← μ·b + g, and step p ← p − lr·b."),
    "nesterov": "With Nesterov, after updating b, step along g + μ·b (not along b).",
    "decay": "Weight decay adds λ·p to the gradient: g ← g + λ·p, before anything else.",
    "momentum+decay": ("If momentum alone and weight decay alone pass, the order is wrong: add λ·p to the gradient "
                       "*before* it enters the momentum buffer, as torch.optim.SGD does."),
    "groups": ("Each parameter group has its own settings: read lr, momentum, weight_decay and nesterov from the "
               "group (group['lr']), not from the constructor's arguments."),
}

ADAMW_HINTS = {
    "default": ("AdamW: p ← p·(1 − lr·λ); m ← β1·m + (1 − β1)·g; v ← β2·v + (1 − β2)·g²; "
                "p ← p − lr·m̂/(√v̂ + ε) with m̂ = m/(1 − β1^t), v̂ = v/(1 − β2^t) and t counting from 1."),
    "groups": "Read lr, betas, eps and weight_decay from each parameter group, and keep m, v and t per parameter.",
    "tiny": "With tiny gradients ε matters: the denominator is √v̂ + ε (ε outside the square root).",
}


@register("sgd")
def sgd_check() -> list[Property]:
    """The visible check for ``SGD``: each feature alone, then together, against ``torch.optim.SGD``."""
    shapes = [(4,), (2, 3)]
    return [
        optimizer_trajectory("SGD", "plain SGD follows torch.optim.SGD for 50 steps", SGD_HINTS["plain"],
                             shapes=shapes, kwargs={"lr": 0.1}),
        optimizer_trajectory("SGD", "with momentum", SGD_HINTS["momentum"], shapes=shapes,
                             kwargs={"lr": 0.05, "momentum": 0.9}),
        optimizer_trajectory("SGD", "with Nesterov momentum", SGD_HINTS["nesterov"], shapes=shapes,
                             kwargs={"lr": 0.05, "momentum": 0.8, "nesterov": True}),
        optimizer_trajectory("SGD", "with weight decay", SGD_HINTS["decay"], shapes=shapes,
                             kwargs={"lr": 0.1, "weight_decay": 0.1}),
        optimizer_trajectory("SGD", "with momentum and weight decay together", SGD_HINTS["momentum+decay"],
                             shapes=shapes, kwargs={"lr": 0.05, "momentum": 0.9, "weight_decay": 0.05}),
        optimizer_trajectory("SGD", "two parameter groups, and a parameter without a gradient", SGD_HINTS["groups"],
                             shapes=[(3,), (2, 2), (5,)], kwargs={"lr": 0.1, "momentum": 0.5, "weight_decay": 0.01},
                             groups=[{"params": [0, 2]}, {"params": [1], "lr": 0.02, "momentum": 0.9}], frozen=(2,)),
        zero_grad_clears("SGD", {"lr": 0.1}),
    ]


@register("adamw")
def adamw_check() -> list[Property]:
    """The visible check for ``AdamW`` against ``torch.optim.AdamW``."""
    shapes = [(4,), (2, 3)]
    return [
        optimizer_trajectory("AdamW", "default settings follow torch.optim.AdamW for 50 steps", ADAMW_HINTS["default"],
                             shapes=shapes, kwargs={"lr": 0.01}),
        optimizer_trajectory("AdamW", "large learning rate and weight decay", ADAMW_HINTS["default"], shapes=shapes,
                             kwargs={"lr": 0.1, "betas": (0.8, 0.99), "weight_decay": 0.2}),
        optimizer_trajectory("AdamW", "tiny gradients, where ε matters", ADAMW_HINTS["tiny"], shapes=shapes,
                             kwargs={"lr": 0.01, "eps": 1e-6}, grad_scale=1e-7),
        optimizer_trajectory("AdamW", "two parameter groups, and a parameter without a gradient", ADAMW_HINTS["groups"],
                             shapes=[(3,), (2, 2), (5,)], kwargs={"lr": 0.01},
                             groups=[{"params": [0, 2]}, {"params": [1], "lr": 0.05, "weight_decay": 0.0}],
                             frozen=(2,)),
        zero_grad_clears("AdamW", {"lr": 0.01}),
    ]


@register("warmup_cosine_lr")
def warmup_cosine_check() -> list[Property]:
    """The visible check for ``warmup_cosine_lr``."""
    return [
        schedule_values(40, 0.1, 8, 0.0),
        schedule_values(30, 0.5, 5, 0.01),
        schedule_values(10, 0.2, 0, 0.0),
    ]
