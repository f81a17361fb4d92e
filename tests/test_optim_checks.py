"""The chapter 4 optimizer and schedule properties accept correct implementations and name each mistake.

Each variant is ``solutions/optim.py`` with one solution region replaced. The properties run in-process
here, as the visible checks run them; test_train_grading.py runs the hidden tests through the sandbox.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from exercises.checks import evaluate
from exercises.checks.optim import adamw_check, sgd_check, warmup_cosine_check
from grading import PROJECT_ROOT
from grading.stubs import BEGIN, END, strip_markers
from tests.conftest import forget_module, module_installer

SOLUTION = (PROJECT_ROOT / "solutions" / "optim.py").read_text(encoding="utf-8")
REFERENCE = strip_markers(SOLUTION)
STUB = (PROJECT_ROOT / "exercises" / "optim.py").read_text(encoding="utf-8")
CHECKS = {"SGD": sgd_check, "AdamW": adamw_check, "warmup_cosine_lr": warmup_cosine_check}
OWNER = {"SGD": "class SGD(", "AdamW": "class AdamW(", "warmup_cosine_lr": "def warmup_cosine_lr("}


def with_body(exercise: str, body: str, source: str = SOLUTION) -> str:
    """``source`` with the first solution region after ``exercise``'s definition replaced by ``body``."""
    start = source.index(OWNER[exercise])
    begin = source.index(BEGIN, start)
    line_start = source.rindex("\n", 0, begin) + 1
    indent = source[line_start:begin]
    end = source.index("\n", source.index(END, begin)) + 1
    new = source[:line_start] + textwrap.indent(textwrap.dedent(body).strip("\n") + "\n", indent) + source[end:]
    return strip_markers(new)


SGD_LOOP = """
for group in self.param_groups:
    lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
    for p in group["params"]:
        if p.grad is None:
            continue
        {body}
"""


def sgd(body: str) -> str:
    return SGD_LOOP.format(body=textwrap.indent(textwrap.dedent(body).strip("\n"), " " * 8).lstrip())


ADAM_LOOP = """
for group in self.param_groups:
    lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
    for p in group["params"]:
        if p.grad is None:
            continue
        state = self.state[p]
        if not state:
            state["step"], state["m"], state["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
        state["step"] += 1
        t, m, v, g = state["step"], state["m"], state["v"], p.grad
        {body}
"""


def adam(body: str) -> str:
    return ADAM_LOOP.format(body=textwrap.indent(textwrap.dedent(body).strip("\n"), " " * 8).lstrip())


CORRECT = {
    "SGD": {
        "zeros buffer, then μ·b + g": sgd("""
            g = p.grad + wd * p
            if mu:
                buf = self.state[p].setdefault("buf", torch.zeros_like(p))
                buf.mul_(mu).add_(g)
                g = g + mu * buf if group["nesterov"] else buf
            p.data -= lr * g
        """),
        "new tensors through p.data, no in-place update": sgd("""
            d_p = p.grad + wd * p.data
            if mu:
                st = self.state[p]
                st["v"] = d_p.clone() if "v" not in st else mu * st["v"] + d_p
                d_p = d_p + mu * st["v"] if group["nesterov"] else st["v"]
            p.data = p.data - lr * d_p
        """),
        "foreach over a group": """
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                grads = [p.grad.add(p, alpha=group["weight_decay"]) for p in params]
                if group["momentum"]:
                    bufs = []
                    for p, g in zip(params, grads):
                        if "b" not in self.state[p]:
                            self.state[p]["b"] = g.clone()
                        else:
                            self.state[p]["b"].mul_(group["momentum"]).add_(g)
                        bufs.append(self.state[p]["b"])
                    if group["nesterov"]:
                        grads = [g + group["momentum"] * b for g, b in zip(grads, bufs)]
                    else:
                        grads = bufs
                torch._foreach_add_(params, grads, alpha=-group["lr"])
        """,
    },
    "AdamW": {
        "step size folded, ε scaled (Adam paper's form)": adam("""
            p.data.mul_(1 - lr * wd)
            m.mul_(beta1).add_(g, alpha=1 - beta1)
            v.mul_(beta2).add_(g.pow(2), alpha=1 - beta2)
            step_size = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
            p.data.addcdiv_(m, v.sqrt().add(eps * math.sqrt(1 - beta2 ** t)), value=-step_size)
        """),
        "explicit m̂ and v̂": adam("""
            p.mul_(1 - lr * wd)
            m.mul_(beta1).add_((1 - beta1) * g)
            v.mul_(beta2).add_((1 - beta2) * g * g)
            m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
            p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
        """),
    },
    "warmup_cosine_lr": {
        "NumPy's cos (a float64)": """
            import numpy as np
            if step < warmup_steps:
                return peak_lr * (step + 1) / warmup_steps
            t = np.clip((step - warmup_steps) / max(1, total_steps - warmup_steps), 0, 1)
            return final_lr + 0.5 * (peak_lr - final_lr) * (1 + np.cos(np.pi * t))
        """,
        "float32 tensors, then .item()": """
            if step < warmup_steps:
                return torch.tensor(peak_lr * (step + 1) / warmup_steps).item()
            t = torch.tensor((step - warmup_steps) / max(1, total_steps - warmup_steps)).clamp(max=1.0)
            return (final_lr + 0.5 * (peak_lr - final_lr) * (1 + torch.cos(torch.pi * t))).item()
        """,
        "branch on the phase": """
            if step >= warmup_steps:
                progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
                return float(final_lr + (peak_lr - final_lr) * (1 + math.cos(math.pi * progress)) / 2)
            return float(peak_lr * (step + 1) / warmup_steps)
        """,
    },
}

MISTAKES = {  # exercise -> name -> (body, words the diagnosis of some property must contain)
    "SGD": {
        "decay after momentum": (sgd("""
            g = p.grad
            if mu:
                s = self.state[p]
                s["b"] = g.clone() if "b" not in s else s["b"].mul_(mu).add_(g)
                g = g + mu * s["b"] if group["nesterov"] else s["b"]
            p.add_(g + wd * p, alpha=-lr)
        """), "the order is wrong"),
        "momentum buffer never kept": (sgd("""
            g = p.grad.add(p, alpha=wd)
            buf = g.clone()
            if mu:
                g = g + mu * buf if group["nesterov"] else buf
            p.add_(g, alpha=-lr)
        """), "keep one buffer per parameter"),
        "exponential average": (sgd("""
            g = p.grad.add(p, alpha=wd)
            if mu:
                s = self.state[p]
                s["b"] = (1 - mu) * g if "b" not in s else mu * s["b"] + (1 - mu) * g
                g = g + mu * s["b"] if group["nesterov"] else s["b"]
            p.add_(g, alpha=-lr)
        """), "b = g on its first step"),
        "Nesterov ignored": (sgd("""
            g = p.grad.add(p, alpha=wd)
            if mu:
                s = self.state[p]
                s["b"] = g.clone() if "b" not in s else s["b"].mul_(mu).add_(g)
                g = s["b"]
            p.add_(g, alpha=-lr)
        """), "step along g + μ·b"),
        "constructor's settings instead of the group's": ("""
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad.add(p, alpha=self.defaults["weight_decay"])
                    mu = self.defaults["momentum"]
                    if mu:
                        s = self.state[p]
                        s["b"] = g.clone() if "b" not in s else s["b"].mul_(mu).add_(g)
                        g = g + mu * s["b"] if self.defaults["nesterov"] else s["b"]
                    p.add_(g, alpha=-self.defaults["lr"])
        """, "Each parameter group has its own settings"),
        "rebinding instead of updating in place": (sgd("""
            p = p - lr * p.grad
        """), "still hold their initial values"),
        "frozen parameters decayed": ("""
            for group in self.param_groups:
                for p in group["params"]:
                    g = torch.zeros_like(p) if p.grad is None else p.grad
                    g = g.add(p, alpha=group["weight_decay"])
                    if group["momentum"]:
                        s = self.state[p]
                        s["b"] = g.clone() if "b" not in s else s["b"].mul_(group["momentum"]).add_(g)
                        g = g + group["momentum"] * s["b"] if group["nesterov"] else s["b"]
                    p.add_(g, alpha=-group["lr"])
        """, "whose .grad is None was changed"),
        "delegating to torch": ("""
            torch.optim._functional.sgd([p for g in self.param_groups for p in g["params"]],
                                        [p.grad for g in self.param_groups for p in g["params"]], [None],
                                        weight_decay=0.0, momentum=0.0, lr=self.defaults["lr"], dampening=0.0,
                                        nesterov=False, maximize=False)
        """, "must not use"),
    },
    "AdamW": {
        "no bias correction": (adam("""
            p.mul_(1 - lr * wd)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.addcdiv_(m, v.sqrt().add_(eps), value=-lr)
        """), "there is no bias correction"),
        "L2 in the gradient (Adam, not AdamW)": (adam("""
            g = g + wd * p
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.addcdiv_(m, (v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps), value=-lr / (1 - beta1**t))
        """), "added to the gradient"),
        "decay after the step": (adam("""
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.addcdiv_(m, (v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps), value=-lr / (1 - beta1**t))
            p.mul_(1 - lr * wd)
        """), "applied after the Adam step"),
        "ε inside the square root": (adam("""
            p.mul_(1 - lr * wd)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            p.addcdiv_(m, (v / (1 - beta2**t) + eps).sqrt(), value=-lr / (1 - beta1**t))
        """), "inside the square root"),
        "one step counter for all parameters": ("""
            self.t = getattr(self, "t", 0)
            for group in self.param_groups:
                lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    self.t += 1
                    s = self.state[p]
                    if not s:
                        s["m"], s["v"] = torch.zeros_like(p), torch.zeros_like(p)
                    p.mul_(1 - lr * wd)
                    s["m"].lerp_(p.grad, 1 - beta1)
                    s["v"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                    denom = (s["v"].sqrt() / math.sqrt(1 - beta2**self.t)).add_(eps)
                    p.addcdiv_(s["m"], denom, value=-lr / (1 - beta1**self.t))
        """, "departs from torch.optim.AdamW"),
    },
    "warmup_cosine_lr": {
        "warmup starts at 0": ("""
            if step < warmup_steps:
                return peak_lr * step / warmup_steps
            t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
            return final_lr + 0.5 * (peak_lr - final_lr) * (1 + math.cos(math.pi * t))
        """, "first step's learning rate is 0"),
        "cosine one step ahead": ("""
            if step < warmup_steps:
                return peak_lr * (step + 1) / warmup_steps
            t = min(1.0, (step - warmup_steps + 1) / max(1, total_steps - warmup_steps))
            return final_lr + 0.5 * (peak_lr - final_lr) * (1 + math.cos(math.pi * t))
        """, "one step ahead"),
        "no clamp": ("""
            if step < warmup_steps:
                return peak_lr * (step + 1) / warmup_steps
            t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
            return final_lr + 0.5 * (peak_lr - final_lr) * (1 + math.cos(math.pi * t))
        """, "clamp t"),
        "final_lr ignored": ("""
            if step < warmup_steps:
                return peak_lr * (step + 1) / warmup_steps
            t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
            return 0.5 * peak_lr * (1 + math.cos(math.pi * t))
        """, "ignores final_lr"),
        "a tensor": ("""
            if step < warmup_steps:
                return torch.tensor(peak_lr * (step + 1) / warmup_steps)
            t = torch.tensor(min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps)))
            return final_lr + 0.5 * (peak_lr - final_lr) * (1 + torch.cos(math.pi * t))
        """, "returned a tensor"),
        "a NumPy float32 (not a float, unlike NumPy's float64)": ("""
            import numpy as np
            if step < warmup_steps:
                return np.float32(peak_lr * (step + 1) / warmup_steps)
            t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
            return np.float32(final_lr + 0.5 * (peak_lr - final_lr) * (1 + np.cos(np.pi * t)))
        """, "must return a Python float"),
    },
}


@pytest.fixture
def install(tmp_path: Path, monkeypatch):
    """Make ``exercises.optim`` a file the test writes; return a runner for programs against it."""
    yield module_installer("optim", tmp_path, monkeypatch)
    forget_module("optim")


def _failures(exercise: str, run) -> list[str]:
    return [f"{prop.title}: {message}" for prop in CHECKS[exercise]()
            for passed, message in [evaluate(prop, run)] if not passed]


def test_reference_passes_every_property(install) -> None:
    run = install(REFERENCE)
    for exercise in CHECKS:
        assert _failures(exercise, run) == [], exercise


@pytest.mark.parametrize("exercise, name", [(e, n) for e, variants in CORRECT.items() for n in variants])
def test_correct_implementations_pass(exercise: str, name: str, install) -> None:
    run = install(with_body(exercise, CORRECT[exercise][name]))
    assert _failures(exercise, run) == [], f"{exercise}: {name}"


@pytest.mark.parametrize("exercise, name", [(e, n) for e, variants in MISTAKES.items() for n in variants])
def test_each_mistake_fails_with_its_diagnosis(exercise: str, name: str, install) -> None:
    body, words = MISTAKES[exercise][name]
    failures = _failures(exercise, install(with_body(exercise, body)))
    assert failures, f"{exercise}: '{name}' passed every property"
    assert any(words in f for f in failures), f"{exercise}: '{name}': {failures}"


def test_stubs_fail_every_property_as_not_implemented(install) -> None:
    run = install(STUB)
    for exercise, factory in CHECKS.items():
        for prop in factory():
            passed, message = evaluate(prop, run)
            assert not passed and "not implemented yet" in message, (exercise, prop.title, message)


def test_the_oracles_are_restored_after_a_forbidden_call(install) -> None:
    """Blocking torch.optim's own steps during a program must leave them working afterwards."""
    import torch

    run = install(with_body("SGD", MISTAKES["SGD"]["delegating to torch"][0]))
    _failures("SGD", run)
    for oracle in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
        p = torch.nn.Parameter(torch.ones(2))
        p.grad = torch.ones(2)
        oracle([p], lr=0.1).step()
        assert p.detach().lt(1).all(), oracle


def test_validation_is_given_code_that_rejects_bad_settings() -> None:
    namespace: dict = {}
    exec(compile(STUB, "exercises/optim.py", "exec"), namespace)
    import torch

    p = [torch.nn.Parameter(torch.ones(2))]
    for make in (lambda: namespace["SGD"](p, lr=-1), lambda: namespace["SGD"](p, lr=0.1, nesterov=True),
                 lambda: namespace["SGD"](p, lr=0.1, momentum=1.5), lambda: namespace["AdamW"](p, betas=(0.9, 1.0)),
                 lambda: namespace["AdamW"](p, eps=-1.0), lambda: namespace["warmup_cosine_lr"](0, 0, 0.1, 0)):
        with pytest.raises(ValueError):
            make()
