"""Optimizers and a learning-rate schedule (chapter 4).

``SGD`` and ``AdamW`` are ``torch.optim.Optimizer`` subclasses, like PyTorch's own: the base class
keeps the parameter groups (``self.param_groups``, a list of dicts holding ``"params"`` and the
group's settings such as ``"lr"``), a per-parameter state (``self.state[p]``, a dict that starts
empty), ``zero_grad()``, ``state_dict()`` and the hooks that learning-rate schedules and
``torch.amp.GradScaler`` use. What is left to you is ``step()``: the update rule itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from exercises.kit.validate import require_betas, require_count, require_fraction, require_non_negative

Params = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


class SGD(torch.optim.Optimizer):
    """Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

    For every parameter ``p`` (any shape, float32 or float64) that has a gradient ``g = p.grad``,
    with its group's ``lr``, ``momentum`` (μ), ``weight_decay`` (λ) and ``nesterov``, in this order::

        g ← g + λ·p                                   (weight decay: an L2 term added to the gradient)
        b ← g on the first step, μ·b + g afterwards   (the momentum buffer, kept in self.state[p];
                                                       only when μ > 0)
        g ← g + μ·b with Nesterov, g ← b without       (only when μ > 0)
        p ← p − lr·g

    This is ``torch.optim.SGD`` with ``dampening=0``: the parameter trajectory equals it to 1e-6
    relative over 50 steps. Parameters whose ``grad`` is ``None`` are left alone; ``p.grad`` itself
    is not modified.

    Explained in course/04_training.ipynb, section "Optimizers: SGD with momentum, Nesterov and weight decay".
    """

    def __init__(self, params: Params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        require_non_negative("lr", lr)
        require_fraction("momentum", momentum)
        require_non_negative("weight_decay", weight_decay)
        if nesterov and momentum == 0:
            raise ValueError("nesterov=True needs a momentum > 0")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "nesterov": bool(nesterov)}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Update every parameter with a gradient, once, by the rule in the class docstring.

        ``closure`` (optional, as in ``torch.optim``) re-computes the loss and is called first.
        Gradients are not tracked here (``torch.no_grad``), so update the tensors in place
        (``p.add_(...)``, ``buf.mul_(...)``): ``p`` must stay the same tensor object.

        Explained in course/04_training.ipynb, section "Optimizers: SGD with momentum, Nesterov and weight decay".
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        ### BEGIN SOLUTION
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad if wd == 0 else p.grad.add(p, alpha=wd)
                if mu != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = g.clone()
                    else:
                        state["momentum_buffer"].mul_(mu).add_(g)
                    buf = state["momentum_buffer"]
                    g = g.add(buf, alpha=mu) if group["nesterov"] else buf
                p.add_(g, alpha=-lr)
        ### END SOLUTION
        return loss


class AdamW(torch.optim.Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    For every parameter ``p`` with a gradient ``g``, with its group's ``lr``, ``betas = (β1, β2)``,
    ``eps`` (ε) and ``weight_decay`` (λ); ``t`` counts this parameter's steps, starting at 1::

        p ← p·(1 − lr·λ)                       (decoupled weight decay: shrink the weights directly)
        m ← β1·m + (1 − β1)·g                  (first moment, starts at 0)
        v ← β2·v + (1 − β2)·g²                 (second moment, starts at 0)
        m̂ ← m / (1 − β1^t),  v̂ ← v / (1 − β2^t) (bias correction: m and v start at 0)
        p ← p − lr·m̂ / (√v̂ + ε)

    ``m``, ``v`` and ``t`` live in ``self.state[p]``. This is ``torch.optim.AdamW``: the trajectory
    equals it to 1e-6 relative over 50 steps. Parameters without a gradient are left alone.

    Explained in course/04_training.ipynb, section "Adam with decoupled weight decay: AdamW".
    """

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        require_non_negative("lr", lr)
        betas = require_betas("betas", betas)
        require_non_negative("eps", eps)
        require_non_negative("weight_decay", weight_decay)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Update every parameter with a gradient, once, by the rule in the class docstring.

        Explained in course/04_training.ipynb, section "Adam with decoupled weight decay: AdamW".
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        ### BEGIN SOLUTION
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                p.mul_(1 - lr * wd)
                m.lerp_(p.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denom = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
                p.addcdiv_(m, denom, value=-lr / (1 - beta1**t))
        ### END SOLUTION
        return loss


def warmup_cosine_lr(step: int, total_steps: int, peak_lr: float, warmup_steps: int, final_lr: float = 0.0) -> float:
    """The learning rate for optimizer step ``step`` (0, 1, 2, ...): a linear warmup, then a cosine decay.

    ::

        peak_lr·(step + 1)/warmup_steps                          while step < warmup_steps
        final_lr + ½(peak_lr − final_lr)(1 + cos(π·t))           afterwards, with
        t = min(1, (step − warmup_steps) / max(1, total_steps − warmup_steps))

    So the first step already learns (``peak_lr/warmup_steps``), the rate reaches ``peak_lr`` exactly
    at ``step == warmup_steps``, and it stays at ``final_lr`` from ``total_steps`` on. Returns a
    Python ``float``.

    Explained in course/04_training.ipynb, section "A warmup-cosine learning-rate schedule".
    """
    require_count("step", step)
    require_count("total_steps", total_steps, 1)
    require_count("warmup_steps", warmup_steps)
    require_non_negative("peak_lr", peak_lr)
    require_non_negative("final_lr", final_lr)
    ### BEGIN SOLUTION
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return final_lr + 0.5 * (peak_lr - final_lr) * (1 + math.cos(math.pi * t))
    ### END SOLUTION
