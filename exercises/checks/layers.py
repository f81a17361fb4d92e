"""Properties of the layer exercises in ``exercises.layers`` (chapter 2), and their visible checks."""

from __future__ import annotations

import math
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
from exercises.checks.program import Program, Ref

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
            raise Mistake("relu_forward kept the negative entries and zeroed the positive ones: "
                          "the comparison is reversed.")
        if torch.equal(out, (x > 0).to(x.dtype)):
            raise Mistake("relu_forward returned the mask (x > 0) rather than the values max(0, x).")
        raise Mistake(f"relu_forward's out differs from max(0, x) at {count_mismatches(out, expected)} "
                      f"of {x.numel()} elements.")

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
        raise Mistake(f"relu_backward's dx differs from dout · 1[x > 0] at {count_mismatches(dx, expected)} "
                      f"of {x.numel()} elements.")

    return Property("relu_backward", f"dx = dout · 1[x > 0] on a {_describe(x)} input", _relu_backward_program(x, dout),
                    judge)


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


@register("relu")
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


# ============================================================================= chapter 2, beyond ReLU
#
# Every judge below computes what it expects with PyTorch itself in float64 (the forward op, and
# torch.autograd for the gradients), never with the course's reference solutions.

NO_AUTOGRAD = ("torch.Tensor.backward", "torch.autograd.grad", "torch.autograd.backward")
FORBID_LINEAR = (*NO_AUTOGRAD, "torch.nn.functional.linear", "torch.nn.Linear")
FORBID_SIGMOID = (*NO_AUTOGRAD, "torch.sigmoid", "torch.Tensor.sigmoid", "torch.Tensor.sigmoid_",
                  "torch.nn.functional.sigmoid", "torch.special.expit", "torch.nn.functional.logsigmoid",
                  "torch.nn.Sigmoid")
FORBID_TANH = (*NO_AUTOGRAD, "torch.tanh", "torch.Tensor.tanh", "torch.Tensor.tanh_", "torch.nn.functional.tanh",
               "torch.nn.Tanh")
FORBID_SOFTMAX = (*NO_AUTOGRAD, "torch.softmax", "torch.Tensor.softmax", "torch.nn.functional.softmax",
                  "torch.special.softmax", "torch.log_softmax", "torch.Tensor.log_softmax",
                  "torch.nn.functional.log_softmax", "torch.special.log_softmax", "torch.nn.functional.cross_entropy",
                  "torch.nn.functional.nll_loss", "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss",
                  "torch.nn.Softmax", "torch.nn.LogSoftmax")
FORBID_DROPOUT = (*NO_AUTOGRAD, "torch.nn.functional.dropout", "torch.dropout", "torch.native_dropout",
                  "torch.nn.functional.alpha_dropout", "torch.nn.Dropout")
FORBID_BATCHNORM = (*NO_AUTOGRAD, "torch.nn.functional.batch_norm", "torch.batch_norm", "torch.native_batch_norm",
                    "torch.nn.BatchNorm1d", "torch.nn.functional.layer_norm", "torch.layer_norm",
                    "torch.nn.functional.instance_norm", "torch.instance_norm")
FORBID_NET = tuple(dict.fromkeys((*FORBID_LINEAR, *FORBID_SOFTMAX)))


def _tolerance(dtype: torch.dtype) -> tuple[float, float]:
    """``(rtol, atol relative to the largest expected magnitude)`` for comparing with a float64 oracle."""
    return (1e-4, 1e-5) if dtype != torch.float64 else (1e-7, 1e-9)


def _off(got: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> int:
    """How many elements of ``got`` miss ``expected`` (float64) beyond the tolerance for ``dtype``."""
    if tuple(got.shape) != tuple(expected.shape):
        return max(got.numel(), expected.numel(), 1)
    rtol, atol = _tolerance(dtype)
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
    return count_mismatches(got, expected, atol=atol * scale, rtol=rtol)


def _matches(got: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> bool:
    return _off(got, expected, dtype) == 0


def _seeded(seed: int) -> torch.Generator:
    """A fresh CPU generator in the given state: the visible checks' inputs are the same every time."""
    return torch.Generator().manual_seed(seed)


def _like(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype)


def expect_tuple(value: Any, n: int, function: str, names: str) -> tuple[Any, ...]:
    """``value`` must be a tuple (or list) of ``n`` results."""
    if not isinstance(value, (tuple, list)) or len(value) != n:
        got = type(value).__name__ + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
        raise Mistake(f"{function} must return {n} values ({names}); it returned {got}.")
    return tuple(value)


def _nonfinite(t: torch.Tensor) -> bool:
    return not bool(torch.isfinite(t).all())


def _grads_of(fn: Any, inputs: list[torch.Tensor],
              dout: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``fn(*inputs)`` and the gradients of ``Σ fn(...)·dout`` (or of the scalar ``fn(...)``) by torch's
    autograd, all in float64."""
    leaves = [t.detach().double().clone().requires_grad_(True) for t in inputs]
    out = fn(*leaves)
    target = out if dout is None else (out * dout.double()).sum()
    grads = torch.autograd.grad(target, leaves, allow_unused=True)
    return out.detach(), [g if g is not None else torch.zeros_like(t) for g, t in zip(grads, leaves, strict=True)]


def _fb_program(forward: str, backward: str, inputs: list[torch.Tensor], dout: torch.Tensor,
                forbid: tuple[str, ...], *extra: Any, **kwargs: Any) -> Program:
    """Forward, then backward with the forward's cache; fetches the forward's result, the gradients
    and every input (to check nothing was modified)."""
    p = Program().forbid(*forbid)
    refs = [p.put(t.clone()) for t in inputs]
    result = p.call(f"layers.{forward}", *refs, *extra, **kwargs)
    dr = p.put(dout.clone())
    grads = p.call(f"layers.{backward}", dr, p.item(result, 1))
    p.fetch(out=p.item(result, 0), grads=grads, dout_after=dr)
    return p.fetch(**{f"in{i}": r for i, r in enumerate(refs)})


def _forward_program(forward: str, inputs: list[Any], forbid: tuple[str, ...], **kwargs: Any) -> Program:
    p = Program().forbid(*forbid)
    refs = [p.put(t.clone() if isinstance(t, torch.Tensor) else t) for t in inputs]
    p.fetch(result=p.call(f"layers.{forward}", *refs, **kwargs))
    return p.fetch(**{f"in{i}": r for i, r in enumerate(refs)})


def _expect_inputs_unchanged(got: dict[str, Any], inputs: list[Any], names: list[str], function: str) -> None:
    for i, (value, name) in enumerate(zip(inputs, names, strict=True)):
        if isinstance(value, torch.Tensor):
            expect_unchanged(got[f"in{i}"], value, name, function)


def _put(p: Program, value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return p.put(value.clone())
    if isinstance(value, dict):
        return p.put({k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in value.items()})
    return p.put(value)


def _raises_property(exercise: str, title: str, target: str, good: list[Any], bad: list[Any], advice: str,
                     forbid: tuple[str, ...] = NO_AUTOGRAD, **kwargs: Any) -> Property:
    """``target(*good)`` returns (it is implemented) and ``target(*bad)`` raises ``ValueError``."""
    p = Program().forbid(*forbid)
    p.call(f"layers.{target}", *[_put(p, a) for a in good], **kwargs)
    p.fetch(result=p.raises(f"layers.{target}", *[_put(p, a) for a in bad], **kwargs))

    def judge(got: dict[str, Any]) -> None:
        raised = got["result"]["raised"]
        if raised != "ValueError":
            did = "returned normally" if raised is None else f"raised {raised}"
            raise Mistake(f"{target} {did} on bad input; it must raise ValueError: {advice}")

    return Property(exercise, title, p, judge)


# ----------------------------------------------------------------------------- linear


def linear_forward_values(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> Property:
    """``out = x @ w + b`` (``N×M``) in the input's dtype; no input is modified."""
    inputs = [x, w, b]

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["result"], "linear_forward")
        out = expect_tensor(out, "linear_forward's out", _like((x.shape[0], w.shape[1]), x.dtype))
        expected = torch.addmm(b.double(), x.double(), w.double())
        if not _matches(out, expected, x.dtype):
            if _matches(out, x.double() @ w.double(), x.dtype):
                raise Mistake("linear_forward forgot the bias: out = x @ w + b.")
            raise Mistake(f"linear_forward's out differs from x @ w + b at {_off(out, expected, x.dtype)} of "
                          f"{expected.numel()} elements.")
        _expect_inputs_unchanged(got, inputs, ["x", "w", "b"], "linear_forward")

    return Property("linear_forward", f"out = x @ w + b for x {_describe(x)}, w {_describe(w)}",
                    _forward_program("linear_forward", inputs, FORBID_LINEAR), judge)


def linear_backward_values(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, dout: torch.Tensor) -> Property:
    """``dx = dout @ wᵀ``, ``dw = xᵀ @ dout``, ``db = Σ_n dout`` against torch's autograd."""
    n, d = x.shape
    m = w.shape[1]

    def judge(got: dict[str, Any]) -> None:
        dx, dw, db = expect_tuple(got["grads"], 3, "linear_backward", "dx, dw, db")
        _, (ex, ew, eb) = _grads_of(lambda a, c, e: a @ c + e, [x, w, b], dout)
        if isinstance(dw, torch.Tensor) and tuple(dw.shape) == (m, d) and m != d:
            raise Mistake(f"dw has shape {m}×{d}, the transpose of w's {d}×{m}: dW = xᵀ·dout "
                          "(D×N times N×M), not doutᵀ·x.")
        if isinstance(db, torch.Tensor) and tuple(db.shape) == (n, m):
            raise Mistake("db has one row per sample: b was added to every row of the batch, so its gradient "
                          "sums dout over the batch, db = Σ_n dout[n] (shape M).")
        dx = expect_tensor(dx, "linear_backward's dx", x)
        dw = expect_tensor(dw, "linear_backward's dw", w)
        db = expect_tensor(db, "linear_backward's db", b)
        if not _matches(dw, ew, x.dtype):
            if d == m and _matches(dw, ew.T, x.dtype):
                raise Mistake("dw is the transpose of the right answer: dW = xᵀ·dout (D×N · N×M), not doutᵀ·x.")
            if _matches(dw, ew / n, x.dtype):
                raise Mistake("dw is divided by N: the 1/N of a mean loss is already inside dout; dW = xᵀ·dout.")
            raise Mistake(f"dw differs from xᵀ·dout at {_off(dw, ew, x.dtype)} of {dw.numel()} elements.")
        if not _matches(db, eb, x.dtype):
            if _matches(db, eb / n, x.dtype):
                raise Mistake("db is the mean of dout over the batch; it must be the sum, db = Σ_n dout[n].")
            raise Mistake(f"db differs from Σ_n dout[n] at {_off(db, eb, x.dtype)} of {db.numel()} elements.")
        if not _matches(dx, ex, x.dtype):
            if d == m and _matches(dx, dout.double() @ w.double(), x.dtype):
                raise Mistake("dx used w instead of its transpose: dx = dout·wᵀ (N×M · M×D).")
            raise Mistake(f"dx differs from dout·wᵀ at {_off(dx, ex, x.dtype)} of {dx.numel()} elements.")
        for i, name in enumerate(["x", "w", "b"]):
            expect_unchanged(got[f"in{i}"], [x, w, b][i], name, "linear_forward/linear_backward")
        expect_unchanged(got["dout_after"], dout, "dout", "linear_backward")

    return Property("linear_backward", f"dx, dw, db agree with autograd for x {_describe(x)}, w {_describe(w)}",
                    _fb_program("linear_forward", "linear_backward", [x, w, b], dout, FORBID_LINEAR), judge)


def linear_rejects_mismatched_shapes(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> Property:
    """Valid shapes work; ``b`` one element too long raises ``ValueError``."""
    longer = torch.cat([b, b[:1]])
    return _raises_property("linear_forward", "works on valid shapes; a bias of the wrong length raises ValueError",
                            "linear_forward", [x, w, b], [x, w, longer],
                            "keep the given shape checks (x: N×D, w: D×M, b: M).", FORBID_LINEAR)


@register("linear")
def linear_check() -> list[Property]:
    """The visible check for ``linear_forward`` and ``linear_backward``."""
    g = torch.Generator().manual_seed(2)
    x, w, b = torch.randn(4, 3, generator=g), torch.randn(3, 5, generator=g), torch.randn(5, generator=g)
    dout = torch.randn(4, 5, generator=g)
    xs, ws, bs = (torch.randn(6, 3, generator=g, dtype=torch.float64),
                  torch.randn(3, 3, generator=g, dtype=torch.float64),
                  torch.randn(3, generator=g, dtype=torch.float64))
    douts = torch.randn(6, 3, generator=g, dtype=torch.float64)
    return [
        linear_forward_values(x, w, b),
        linear_rejects_mismatched_shapes(x, w, b),
        linear_backward_values(x, w, b, dout),
        linear_backward_values(xs, ws, bs, douts),
    ]


# ----------------------------------------------------------------------------- sigmoid and tanh

_ACTIVATIONS = {"sigmoid": (torch.sigmoid, FORBID_SIGMOID), "tanh": (torch.tanh, FORBID_TANH)}


def _activation_tolerance(dtype: torch.dtype) -> tuple[float, float]:
    return (1e-5, 1e-6) if dtype != torch.float64 else (1e-10, 1e-12)


def _activation_off(got: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> int:
    rtol, atol = _activation_tolerance(dtype)
    return count_mismatches(got, expected, atol=atol, rtol=rtol)


def activation_forward_values(kind: str, x: torch.Tensor) -> Property:
    """``out = σ(x)`` or ``tanh(x)`` elementwise, finite even for huge inputs; ``x`` unchanged."""
    function, forbid = _ACTIVATIONS[kind]

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["result"], f"{kind}_forward")
        out = expect_tensor(out, f"{kind}_forward's out", x)
        expected = function(x.double())
        if _nonfinite(out):
            raise Mistake(f"{kind}_forward returned inf or nan for large |x|: e^x overflows (e^89 is already inf in "
                          f"float32). Write {kind} so that exp only ever sees −|x| (or a non-positive number).")
        off = _activation_off(out, expected, x.dtype)
        if off:
            raise Mistake(f"{kind}_forward's out differs from {kind}(x) at {off} of {x.numel()} elements.")
        expect_unchanged(got["in0"], x, "x", f"{kind}_forward")

    largest = float(x.abs().max()) if x.numel() else 0.0
    return Property(f"{kind}_forward", f"equals {kind}(x) on a {_describe(x)} input (|x| up to {largest:g})",
                    _forward_program(f"{kind}_forward", [x], forbid), judge)


def activation_backward_values(kind: str, x: torch.Tensor, dout: torch.Tensor) -> Property:
    """``dx = dout·σ(1−σ)`` or ``dout·(1−tanh²)``, against autograd; finite for huge inputs."""
    function, forbid = _ACTIVATIONS[kind]
    formula = "dout·σ(x)·(1 − σ(x))" if kind == "sigmoid" else "dout·(1 − tanh²(x))"

    def judge(got: dict[str, Any]) -> None:
        dx = expect_tensor(got["grads"], f"{kind}_backward's dx", x)
        value, (expected,) = _grads_of(function, [x], dout)
        if _nonfinite(dx):
            raise Mistake(f"{kind}_backward returned inf or nan for large |x|: compute the derivative from the "
                          "forward's output (cached), e.g. σ·(1 − σ), rather than from e^x.")
        if _activation_off(dx, expected, x.dtype) == 0:
            expect_unchanged(got["in0"], x, "x", f"{kind}_forward")
            expect_unchanged(got["dout_after"], dout, "dout", f"{kind}_backward")
            return
        d, v, x64 = dout.double(), value, x.double()
        candidates = {
            "forgot to multiply by dout (the chain rule)": expected / torch.where(d == 0, torch.ones_like(d), d),
        }
        if kind == "sigmoid":
            candidates.update({"it looks like dout·σ(x); the derivative is σ(x)·(1 − σ(x))": d * v,
                               "it looks like dout·x·(1 − x), with the input; use the output σ(x)": d * x64 * (1 - x64),
                               "it looks like dout·(1 − σ(x)); the derivative is σ(x)·(1 − σ(x))": d * (1 - v)})
        else:
            candidates.update({"it looks like dout·(1 − x²), with the input; use the output: 1 − tanh²(x)":
                                   d * (1 - x64 * x64),
                               "it looks like dout·(1 − tanh(x)); square it: 1 − tanh²(x)": d * (1 - v),
                               "it looks like dout·(1 + tanh²(x)); the sign is wrong: 1 − tanh²(x)": d * (1 + v * v)})
        for words, candidate in candidates.items():
            if _activation_off(dx, candidate, x.dtype) == 0:
                raise Mistake(f"{kind}_backward: {words}.")
        raise Mistake(f"{kind}_backward's dx differs from {formula} at {_activation_off(dx, expected, x.dtype)} of "
                      f"{x.numel()} elements.")

    return Property(f"{kind}_backward", f"dx = {formula} on a {_describe(x)} input",
                    _fb_program(f"{kind}_forward", f"{kind}_backward", [x], dout, forbid), judge)


def _activation_inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = _seeded(seed)
    x = torch.randn(3, 5, generator=g) * 2
    big = torch.tensor([-1e4, -500.0, -90.0, -20.0, -1.0, 0.0, 1.0, 20.0, 90.0, 500.0, 1e4])
    return x, torch.randn(3, 5, generator=g), big


@register("sigmoid")
def sigmoid_check() -> list[Property]:
    """The visible check for ``sigmoid_forward`` and ``sigmoid_backward``."""
    x, dout, big = _activation_inputs(3)
    return [
        activation_forward_values("sigmoid", x),
        activation_forward_values("sigmoid", big),
        activation_backward_values("sigmoid", x, dout),
        activation_backward_values("sigmoid", big, torch.ones_like(big)),
    ]


@register("tanh")
def tanh_check() -> list[Property]:
    """The visible check for ``tanh_forward`` and ``tanh_backward``."""
    x, dout, _ = _activation_inputs(4)
    moderate = torch.tensor([-15.0, -3.0, -0.5, 0.0, 1e-3, 0.5, 3.0, 15.0], dtype=torch.float64)
    return [
        activation_forward_values("tanh", x),
        activation_forward_values("tanh", moderate),
        activation_backward_values("tanh", x, dout),
        activation_backward_values("tanh", moderate, torch.linspace(-1, 1, 8, dtype=torch.float64)),
    ]


# ----------------------------------------------------------------------------- softmax cross-entropy


def _cross_entropy_oracle(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    value, (gradient,) = _grads_of(lambda z: torch.nn.functional.cross_entropy(z, labels), [logits])
    return value, gradient


def softmax_cross_entropy_values(logits: torch.Tensor, labels: torch.Tensor) -> Property:
    """The mean loss (0-d, logits' dtype) and ``dlogits = (softmax − onehot)/N``, against torch."""
    n = len(logits)
    big = float(logits.abs().max()) >= 100

    def judge(got: dict[str, Any]) -> None:
        loss, dlogits = expect_tuple(got["result"], 2, "softmax_cross_entropy", "loss, dlogits")
        if isinstance(loss, torch.Tensor) and tuple(loss.shape) == (n,) and n > 1:
            raise Mistake("loss has one value per sample: return the mean over the batch, a 0-d tensor.")
        if type(loss) in (int, float):
            raise Mistake("loss must be a 0-d tensor, not a Python number (do not call .item()).")
        loss = expect_tensor(loss, "the loss", _like((), logits.dtype))
        dlogits = expect_tensor(dlogits, "dlogits", logits)
        expected_loss, expected_d = _cross_entropy_oracle(logits, labels)
        if _nonfinite(loss) or _nonfinite(dlogits):
            if _nonfinite(dlogits) or not _matches(dlogits, expected_d, logits.dtype):
                raise Mistake("inf or nan for large logits: e^z overflows (e^89 is inf in float32). Subtract each "
                              "row's maximum before exponentiating: softmax(z) = softmax(z − max z).")
            raise Mistake("the loss is inf for large logits although dlogits is finite: log(softmax) underflowed to "
                          "log(0). Compute log-softmax directly, (z − m) − log Σ exp(z − m) with m the row's max "
                          "(log-sum-exp), and never take the log of a probability.")
        rtol, atol = _tolerance(logits.dtype)
        if abs(float(loss) - float(expected_loss)) > rtol * abs(float(expected_loss)) + atol:
            if abs(float(loss) - n * float(expected_loss)) <= rtol * n * abs(float(expected_loss)) + atol:
                raise Mistake("the loss is the sum over the batch; the contract takes the mean (divide by N).")
            raise Mistake("the loss differs from the mean of −log softmax(logits)[label].")
        if _matches(dlogits, expected_d, logits.dtype):
            expect_unchanged(got["in0"], logits, "logits", "softmax_cross_entropy")
            expect_unchanged(got["in1"], labels, "labels", "softmax_cross_entropy")
            return
        if _matches(dlogits, n * expected_d, logits.dtype):
            raise Mistake("dlogits is N times too large: the loss is a mean, so its gradient is "
                          "(softmax − onehot) / N.")
        onehot = torch.nn.functional.one_hot(labels, logits.shape[1]).double()
        if (_matches(dlogits, expected_d + onehot / n, logits.dtype)
                or _matches(dlogits, n * expected_d + onehot, logits.dtype)):
            raise Mistake("dlogits is softmax without subtracting the one-hot labels: (softmax − onehot) / N.")
        if _matches(dlogits, -expected_d, logits.dtype):
            raise Mistake("dlogits has the wrong sign: it is (softmax − onehot) / N.")
        raise Mistake(f"dlogits differs from (softmax − onehot) / N at {_off(dlogits, expected_d, logits.dtype)} of "
                      f"{logits.numel()} elements.")

    p = _forward_program("softmax_cross_entropy", [logits, labels], FORBID_SOFTMAX)
    size = "huge logits (±1e4)" if big else "logits"
    return Property("softmax_cross_entropy", f"loss and dlogits agree with torch on {_describe(logits)} {size}", p,
                    judge)


def softmax_cross_entropy_rejects_bad_labels(logits: torch.Tensor, labels: torch.Tensor) -> Property:
    """Valid labels work; ``labels`` holds one out of range and raises ``ValueError``."""
    good = labels.clamp(0, logits.shape[1] - 1)
    return _raises_property("softmax_cross_entropy", "works on valid labels; a label out of range raises ValueError",
                            "softmax_cross_entropy", [logits, good], [logits, labels],
                            "keep the given checks of labels (int64, N of them, in 0..C−1).", FORBID_SOFTMAX)


def huge_logits(n: int, c: int, seed: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of ±1e4 where some labels sit on the largest logit and some on a tiny one."""
    g = _seeded(seed)
    logits = (torch.randn(n, c, generator=g, dtype=torch.float64) * 1e4).clamp(-1e4, 1e4)
    logits[0, :] = torch.linspace(-1e4, 1e4, c, dtype=torch.float64)
    labels = torch.randint(0, c, (n,), generator=g)
    labels[0] = 0  # the smallest logit of row 0: a loss of 2e4, and softmax underflows to exactly 0 there
    labels[1] = int(logits[1].argmax())
    return logits.to(dtype), labels


@register("softmax_cross_entropy")
def softmax_cross_entropy_check() -> list[Property]:
    """The visible check for ``softmax_cross_entropy``."""
    g = torch.Generator().manual_seed(5)
    logits, labels = torch.randn(6, 4, generator=g) * 3, torch.randint(0, 4, (6,), generator=g)
    big_logits, big_labels = huge_logits(5, 4, seed=6)
    return [
        softmax_cross_entropy_values(logits, labels),
        softmax_cross_entropy_values(logits.double(), labels),
        softmax_cross_entropy_values(big_logits, big_labels),
        softmax_cross_entropy_rejects_bad_labels(logits, torch.tensor([0, 1, 2, 3, 4, 0])),
    ]


# ----------------------------------------------------------------------------- dropout


def _ulps(dtype: torch.dtype) -> float:
    return 4 * torch.finfo(dtype).eps


def _generator(p: Program, seed: int) -> Ref:
    return p.method(p.call("torch.Generator"), "manual_seed", seed)


def _dropout_program(x: torch.Tensor, prob: float, training: bool, seed: int,
                     dout: torch.Tensor | None = None) -> Program:
    p = Program().forbid(*FORBID_DROPOUT)
    xr = p.put(x.clone())
    result = p.call("layers.dropout_forward", xr, prob, training, _generator(p, seed))
    p.fetch(result=result, in0=xr)
    if dout is not None:
        dr = p.put(dout.clone())
        p.fetch(dx=p.call("layers.dropout_backward", dr, p.item(result, 1)), dout_after=dr)
    return p


def _scaled(x: torch.Tensor, prob: float) -> torch.Tensor:
    return x.double() / (1 - prob)


def _exactly(got: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> bool:
    """Equal up to rounding: x/(1−p) and x·(1/(1−p)) may differ in the last place, and a mask built in
    float32 (torch.rand's default dtype) scales a float64 x by 1/(1−p) rounded to float32 (about 6e-8)."""
    rtol = max(_ulps(dtype), 1e-6)
    return got.shape == expected.shape and bool(torch.isclose(got.double(), expected, rtol=rtol, atol=0).all())


def dropout_train_statistics(x: torch.Tensor, prob: float, seed: int) -> Property:
    """In training each element is 0 or exactly ``x/(1−p)``, and about ``1−p`` of them are kept."""
    if bool((x == 0).any()):
        raise ValueError("dropout_train_statistics needs an input without zeros")

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["result"], "dropout_forward")
        out = expect_tensor(out, "dropout_forward's out", x)
        kept = out != 0
        values = out[kept]
        if not _exactly(values, _scaled(x[kept], prob), x.dtype):
            if _exactly(values, x[kept].double(), x.dtype):
                raise Mistake("in training the kept elements must be scaled by 1/(1 − p) (inverted dropout), so that "
                              "the expected output equals x and evaluation needs no scaling; yours are unscaled.")
            if _exactly(values, x[kept].double() * (1 - prob), x.dtype):
                raise Mistake("the kept elements are multiplied by (1 − p); inverted dropout divides by (1 − p).")
            raise Mistake("in training every element must be either 0 or exactly x/(1 − p).")
        count = x.numel()
        fraction = float(kept.double().mean())
        spread = 6 * math.sqrt(prob * (1 - prob) / count) + 1 / count
        if abs(fraction - (1 - prob)) > spread:
            if abs(fraction - prob) <= spread:
                raise Mistake("about p of the elements are kept; p is the probability of *dropping* an element, so "
                              "keep each with probability 1 − p.")
            raise Mistake(f"the fraction of elements kept is far from 1 − p = {1 - prob:g} (p = {prob:g}).")
        expect_unchanged(got["in0"], x, "x", "dropout_forward")

    return Property("dropout_forward", f"training, p = {prob:g}: each element is 0 or x/(1 − p), "
                    f"about 1 − p of them kept ({_describe(x)})", _dropout_program(x, prob, True, seed), judge)


def dropout_identity(x: torch.Tensor, prob: float, training: bool) -> Property:
    """``training=False`` (any ``p``) or ``p == 0``: the output is ``x`` exactly."""

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["result"], "dropout_forward")
        out = expect_tensor(out, "dropout_forward's out", x)
        if torch.equal(out, x):
            expect_unchanged(got["in0"], x, "x", "dropout_forward")
            return
        if not training and prob > 0 and (_exactly(out, _scaled(x, prob), x.dtype) or
                                          _exactly(out, x.double() * (1 - prob), x.dtype)):
            raise Mistake("in evaluation (training=False) dropout must return x unchanged: with inverted dropout the "
                          "scaling happens at training time, never at test time.")
        if not training:
            raise Mistake("in evaluation (training=False) dropout must be the identity: "
                          "nothing dropped, nothing scaled.")
        raise Mistake("with p = 0 nothing is dropped and nothing scaled: the output must equal x.")

    title = "evaluation (training=False) returns x unchanged" if not training else "p = 0 returns x unchanged"
    return Property("dropout_forward", title, _dropout_program(x, prob, training, 0), judge)


def dropout_uses_generator(x: torch.Tensor, prob: float, seed: int) -> Property:
    """The mask comes from the ``generator`` argument only: the same seed gives the same output whatever
    the global seed, another seed another mask."""
    p = Program().forbid(*FORBID_DROPOUT)
    outs = []
    for global_seed, gen_seed in ((1, seed), (2, seed), (1, seed + 1)):
        p.call("torch.manual_seed", global_seed)
        xr = p.put(x.clone())
        outs.append(p.item(p.call("layers.dropout_forward", xr, prob, True, _generator(p, gen_seed)), 0))
    p.fetch(first=outs[0], same_seed=outs[1], other_seed=outs[2])

    def judge(got: dict[str, Any]) -> None:
        first = expect_tensor(got["first"], "dropout_forward's out", x)
        same = expect_tensor(got["same_seed"], "dropout_forward's out", x)
        other = expect_tensor(got["other_seed"], "dropout_forward's out", x)
        if not torch.equal(first, same):
            raise Mistake("two generators with the same seed gave different masks: draw the mask from the generator "
                          "argument (torch.rand(x.shape, generator=generator, ...)), never from the global RNG.")
        if torch.equal(first, other):
            raise Mistake("generators with different seeds gave the same mask: is the mask drawn from the generator?")

    return Property("dropout_forward", "the mask comes from the generator argument (same seed, same mask)", p, judge)


def dropout_backward_same_mask(x: torch.Tensor, prob: float, seed: int, dout: torch.Tensor) -> Property:
    """``dx = dout/(1−p)`` exactly where the forward kept an element, 0 where it dropped one."""
    if bool((x == 0).any()):
        raise ValueError("dropout_backward_same_mask needs an input without zeros")

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["result"], "dropout_forward")
        out = expect_tensor(out, "dropout_forward's out", x)
        dx = expect_tensor(got["dx"], "dropout_backward's dx", x)
        kept = out != 0
        if torch.equal(dx, dout):
            raise Mistake("dropout_backward passed dout through unchanged: apply the forward's mask and scale, "
                          "dx = dout · mask / (1 − p).")
        if not torch.equal(dx != 0, kept & (dout != 0)):
            raise Mistake("dropout_backward's zeros are not where the forward dropped elements: use the forward's "
                          "own mask (keep it in the cache) instead of drawing a new one.")
        if not _exactly(dx[kept], _scaled(dout[kept], prob), x.dtype):
            if _exactly(dx[kept], dout[kept].double(), x.dtype):
                raise Mistake("dropout_backward forgot the scale: the forward multiplied kept elements by 1/(1 − p), "
                              "so the gradient is dout · mask / (1 − p).")
            raise Mistake("where an element was kept, dx must be dout/(1 − p).")
        expect_unchanged(got["dout_after"], dout, "dout", "dropout_backward")

    return Property("dropout_backward", f"uses the forward's mask: dx = dout/(1 − p) where kept, 0 where dropped "
                    f"(p = {prob:g})", _dropout_program(x, prob, True, seed, dout), judge)


def dropout_backward_identity(x: torch.Tensor, dout: torch.Tensor) -> Property:
    """After an evaluation-mode forward, ``dx`` is ``dout``."""

    def judge(got: dict[str, Any]) -> None:
        dx = expect_tensor(got["dx"], "dropout_backward's dx", x)
        if not torch.equal(dx, dout):
            raise Mistake("after a forward with training=False (the identity) the backward must return dout unchanged.")

    return Property("dropout_backward", "after an evaluation-mode forward, dx = dout",
                    _dropout_program(x, 0.5, False, 0, dout), judge)


def dropout_rejects_bad_p(x: torch.Tensor, prob: float) -> Property:
    """``p = 0.5`` works; ``p`` outside ``[0, 1)`` raises ``ValueError``."""
    p = Program().forbid(*FORBID_DROPOUT)
    p.call("layers.dropout_forward", p.put(x.clone()), 0.5, True, _generator(p, 0))
    p.fetch(result=p.raises("layers.dropout_forward", p.put(x.clone()), prob, True, _generator(p, 0)))

    def judge(got: dict[str, Any]) -> None:
        if got["result"]["raised"] != "ValueError":
            raise Mistake(f"dropout_forward with p = {prob!r} must raise ValueError (0 <= p < 1): "
                          "keep the given check.")

    return Property("dropout_forward", f"works for p = 0.5; p = {prob:g} raises ValueError", p, judge)


@register("dropout")
def dropout_check() -> list[Property]:
    """The visible check for ``dropout_forward`` and ``dropout_backward``."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(50, 40, generator=g)
    x[x == 0] = 1.0
    dout = torch.randn(50, 40, generator=g)
    return [
        dropout_train_statistics(x, 0.3, seed=1),
        dropout_identity(x, 0.3, training=False),
        dropout_identity(x, 0.0, training=True),
        dropout_uses_generator(x, 0.5, seed=3),
        dropout_backward_same_mask(x, 0.3, seed=4, dout=dout),
        dropout_backward_identity(x, dout),
        dropout_rejects_bad_p(x, 1.0),
    ]


# ----------------------------------------------------------------------------- batch normalization


def _bn_oracle(eps: float) -> Any:
    """Training-mode batch norm by its definition, in float64, for torch's autograd to differentiate.
    (The same as ``torch.nn.functional.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)``,
    which the tests confirm, but that is some 40 ms a call on a CPU: too slow for a judge.)"""
    return lambda a, g, b: _bn_manual(a, g, b, eps, "biased")


def _bn_manual(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, variant: str) -> torch.Tensor:
    """Batch norm's forward (``variant="biased"``), and the wrong variants behind the diagnoses:
    the unbiased variance, eps outside the root, no eps."""
    x64, mu = x.double(), x.double().mean(0)
    spread = x64.var(0, correction=1 if variant == "unbiased" else 0)
    if variant == "eps outside":
        denominator = spread.sqrt() + eps
    elif variant == "no eps":
        denominator = spread.sqrt()
    else:
        denominator = (spread + eps).sqrt()
    return gamma.double() * (x64 - mu) / denominator + beta.double()


def batchnorm_forward_values(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> Property:
    """Training-mode batch norm with the biased variance, against torch's ``batch_norm``."""
    inputs = [x, gamma, beta]

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["result"], "batchnorm_forward")
        out = expect_tensor(out, "batchnorm_forward's out", x)
        expected = _bn_oracle(eps)(x.double(), gamma.double(), beta.double())
        if not _matches(out, expected, x.dtype):
            if _matches(out, _bn_manual(x, gamma, beta, eps, "unbiased"), x.dtype):
                raise Mistake("batchnorm_forward used the unbiased variance (divide by N − 1); batch norm divides by "
                              "N: x.var(dim=0, unbiased=False), or the mean of the squared deviations.")
            if _matches(out, _bn_manual(x, gamma, beta, eps, "eps outside"), x.dtype):
                raise Mistake("eps belongs inside the square root: x̂ = (x − μ) / √(σ² + eps).")
            if _matches(out, _bn_manual(x, gamma, beta, eps, "no eps"), x.dtype):
                raise Mistake("eps is missing: x̂ = (x − μ) / √(σ² + eps).")
            if _matches(out, _bn_oracle(eps)(x.double(), beta.double(), gamma.double()), x.dtype):
                raise Mistake("gamma and beta are swapped: out = γ·x̂ + β.")
            raise Mistake(f"batchnorm_forward's out differs at {_off(out, expected, x.dtype)} of {x.numel()} elements.")
        _expect_inputs_unchanged(got, inputs, ["x", "gamma", "beta"], "batchnorm_forward")

    return Property("batchnorm_forward", f"normalizes over the batch with the biased variance ({_describe(x)}, "
                    f"eps = {eps:g})", _forward_program("batchnorm_forward", inputs, FORBID_BATCHNORM, eps=eps), judge)


def _bn_dx_candidates(x: torch.Tensor, gamma: torch.Tensor, dout: torch.Tensor, eps: float) -> dict[str, torch.Tensor]:
    """dx with one of its parts missing: the realistic mistakes of a hand-derived batch-norm backward."""
    x64, d64 = x.double(), dout.double()
    count = x64.shape[0]
    centred = x64 - x64.mean(0)
    inverse = 1 / (centred.pow(2).mean(0) + eps).sqrt()
    normalized = centred * inverse
    upstream = d64 * gamma.double()
    through_mean = upstream.mean(0)
    through_var = normalized * (upstream * normalized).mean(0)
    return {
        "dx is missing the term that flows through the variance σ² (− x̂ · mean(g·x̂), with g = γ·dout)":
            inverse * (upstream - through_mean),
        "dx is missing the term that flows through the mean μ (− mean(g), with g = γ·dout)":
            inverse * (upstream - through_var),
        "dx is only γ·dout/√(σ² + eps): x also reaches the loss through the batch mean and variance":
            inverse * upstream,
        "dx lacks the factor γ: the gradient with respect to x̂ is g = γ·dout":
            inverse * (d64 - d64.mean(0) - normalized * (d64 * normalized).mean(0)),
        "dx is N times too large: the mean and variance carry a 1/N":
            count * inverse * (upstream - through_mean - through_var),
    }


def batchnorm_backward_values(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, dout: torch.Tensor,
                              eps: float = 1e-5) -> Property:
    """``dx``, ``dgamma``, ``dbeta`` against torch's autograd through ``batch_norm``."""
    n = x.shape[0]

    def judge(got: dict[str, Any]) -> None:
        dx, dgamma, dbeta = expect_tuple(got["grads"], 3, "batchnorm_backward", "dx, dgamma, dbeta")
        for value, name in ((dgamma, "dgamma"), (dbeta, "dbeta")):
            if isinstance(value, torch.Tensor) and tuple(value.shape) == tuple(x.shape):
                raise Mistake(f"{name} has one row per sample: γ and β are shared by the whole batch, so their "
                              "gradients sum over it (shape D).")
        dx = expect_tensor(dx, "batchnorm_backward's dx", x)
        dgamma = expect_tensor(dgamma, "dgamma", gamma)
        dbeta = expect_tensor(dbeta, "dbeta", beta)
        forward, (ex, eg, eb) = _grads_of(_bn_oracle(eps), [x, gamma, beta], dout)
        out = got["out"]
        if isinstance(out, torch.Tensor) and out.shape == x.shape and not _matches(out, forward, x.dtype):
            if _matches(out, _bn_manual(x, gamma, beta, eps, "unbiased"), x.dtype):
                raise Mistake("batchnorm_forward uses the unbiased variance (N − 1), so the backward differentiates "
                              "the wrong function: use the biased variance, dividing by N.")
            raise Mistake("batchnorm_forward's output is wrong, so its backward cannot be right: "
                          "fix the forward first.")
        if not _matches(dbeta, eb, x.dtype):
            raise Mistake("dbeta must be Σ_n dout[n] (β is added to every row).")
        if not _matches(dgamma, eg, x.dtype):
            if _matches(dgamma, eb, x.dtype):
                raise Mistake("dgamma = Σ_n dout[n]·x̂[n]: you summed dout alone, without x̂.")
            raise Mistake("dgamma must be Σ_n dout[n]·x̂[n].")
        if _matches(dx, ex, x.dtype):
            _expect_inputs_unchanged(got, [x, gamma, beta], ["x", "gamma", "beta"], "batchnorm_forward/backward")
            expect_unchanged(got["dout_after"], dout, "dout", "batchnorm_backward")
            return
        if _nonfinite(dx):
            raise Mistake("dx holds inf or nan.")
        unbiased = _grads_of(lambda a: _bn_manual(a, gamma, beta, eps, "unbiased"), [x], dout)[1][0]
        if _matches(dx, unbiased, x.dtype):
            raise Mistake("dx is the gradient of batch norm with the unbiased variance (N − 1): use the biased one, "
                          "dividing by N, in the forward (and in the backward).")
        for words, candidate in _bn_dx_candidates(x, gamma, dout, eps).items():
            if _matches(dx, candidate, x.dtype):
                raise Mistake(f"{words}.")
        raise Mistake(f"dx differs from autograd's at {_off(dx, ex, x.dtype)} of {x.numel()} elements (N = {n}).")

    return Property("batchnorm_backward", f"dx, dgamma, dbeta agree with autograd ({_describe(x)})",
                    _fb_program("batchnorm_forward", "batchnorm_backward", [x, gamma, beta], dout, FORBID_BATCHNORM,
                                eps=eps), judge)


def batchnorm_rejects_bad_gamma(x: torch.Tensor) -> Property:
    """Valid parameters work; ``gamma`` one element too long raises ``ValueError``."""
    d = x.shape[1]
    ones, zeros = torch.ones(d, dtype=x.dtype), torch.zeros(d, dtype=x.dtype)
    return _raises_property("batchnorm_forward", "works on valid shapes; gamma of the wrong length raises ValueError",
                            "batchnorm_forward", [x, ones, zeros], [x, torch.ones(d + 1, dtype=x.dtype), zeros],
                            "keep the given shape checks (gamma and beta of length D).", FORBID_BATCHNORM)


def batchnorm_inputs(n: int, d: int, seed: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    """``x`` with features of different means and scales, ``gamma``, ``beta``, ``dout``.

    In float64 one feature is nearly constant (eps matters there) and the means are far from 0; float32
    inputs are kept well conditioned, so that any sound way of computing the variance passes."""
    g = _seeded(seed)
    wide = dtype == torch.float64
    shift = torch.randn(d, generator=g, dtype=torch.float64) * (5 if wide else 1)
    scale = torch.rand(d, generator=g, dtype=torch.float64) * 3 + 0.1
    if wide:
        scale[0] = 1e-3
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift
    gamma = torch.randn(d, generator=g, dtype=torch.float64)
    beta = torch.randn(d, generator=g, dtype=torch.float64)
    dout = torch.randn(n, d, generator=g, dtype=torch.float64)
    return tuple(t.to(dtype) for t in (x, gamma, beta, dout))


@register("batchnorm")
def batchnorm_check() -> list[Property]:
    """The visible check for ``batchnorm_forward`` and ``batchnorm_backward``."""
    x, gamma, beta, dout = batchnorm_inputs(8, 5, seed=8)
    x32, gamma32, beta32, dout32 = batchnorm_inputs(16, 3, seed=9, dtype=torch.float32)
    return [
        batchnorm_forward_values(x, gamma, beta),
        batchnorm_forward_values(x32, gamma32, beta32, eps=1e-3),
        batchnorm_rejects_bad_gamma(x),
        batchnorm_backward_values(x, gamma, beta, dout),
        batchnorm_backward_values(x32, gamma32, beta32, dout32, eps=1e-3),
    ]


# ----------------------------------------------------------------------------- batch norm at test time

FORBID_NORMS = (*FORBID_BATCHNORM, "torch.nn.BatchNorm2d", "torch.nn.LayerNorm", "torch.native_layer_norm",
                "torch.nn.functional.group_norm", "torch.group_norm")


def _running_oracle(running_mean: torch.Tensor, running_var: torch.Tensor, batches: list[torch.Tensor],
                    momentum: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The running statistics after ``batches``, by ``torch.nn.functional.batch_norm`` in training mode (it
    updates the buffers it is given), in float64."""
    mean, var = running_mean.double().clone(), running_var.double().clone()
    for x in batches:
        torch.nn.functional.batch_norm(x.double(), mean, var, training=True, momentum=momentum)
    return mean, var


def _running_candidates(running_mean: torch.Tensor, running_var: torch.Tensor, batches: list[torch.Tensor],
                        momentum: float) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Running statistics computed the wrong ways, each with its diagnosis."""
    def run(correction: int, weight_new: float, keep: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        mean, var = running_mean.double(), running_var.double()
        for x in batches:
            x64 = x.double()
            if keep:
                mean = (1 - weight_new) * mean + weight_new * x64.mean(0)
                var = (1 - weight_new) * var + weight_new * x64.var(0, correction=correction)
            else:
                mean, var = x64.mean(0), x64.var(0, correction=correction)
        return mean, var

    return {
        "running_var uses the biased batch variance (divide by N); torch's running statistics keep the unbiased "
        "one, Σ(x − μ)² / (N − 1), although the batch itself is normalized with the biased one": run(0, momentum),
        "momentum weighs the old statistics instead of the new batch: running ← (1 − momentum)·running + "
        "momentum·batch statistic": run(1, 1 - momentum),
        "it returns the batch's own statistics: blend them into the running ones, (1 − momentum)·running + "
        "momentum·batch statistic": run(1, 1.0, keep=False),
    }


def batchnorm_running_values(running_mean: torch.Tensor, running_var: torch.Tensor, batches: list[torch.Tensor],
                             momentum: float = 0.1) -> Property:
    """``batchnorm_running_update`` applied batch after batch gives the buffers ``F.batch_norm`` keeps, and
    leaves its arguments unchanged."""
    p = Program().forbid(*FORBID_NORMS)
    mean, var = p.put(running_mean.clone()), p.put(running_var.clone())
    given = (mean, var)
    refs = []
    for x in batches:
        xr = p.put(x.clone())
        result = p.call("layers.batchnorm_running_update", mean, var, xr, momentum=momentum)
        refs.append((result, xr))
        mean, var = p.item(result, 0), p.item(result, 1)
    p.fetch(result=refs[-1][0], mean_before=given[0], var_before=given[1], x_after=refs[0][1])
    dtype = running_mean.dtype

    def judge(got: dict[str, Any]) -> None:
        got_mean, got_var = expect_tuple(got["result"], 2, "batchnorm_running_update", "running_mean, running_var")
        got_mean = expect_tensor(got_mean, "the new running_mean", running_mean)
        got_var = expect_tensor(got_var, "the new running_var", running_var)
        expect_unchanged(got["mean_before"], running_mean, "running_mean", "batchnorm_running_update")
        expect_unchanged(got["var_before"], running_var, "running_var", "batchnorm_running_update")
        expect_unchanged(got["x_after"], batches[0], "x", "batchnorm_running_update")
        want_mean, want_var = _running_oracle(running_mean, running_var, batches, momentum)
        if _matches(got_mean, want_mean, dtype) and _matches(got_var, want_var, dtype):
            return
        for why, (m, v) in _running_candidates(running_mean, running_var, batches, momentum).items():
            if _matches(got_mean, m, dtype) and _matches(got_var, v, dtype):
                raise Mistake(f"{why}.")
        which = "running_mean" if not _matches(got_mean, want_mean, dtype) else "running_var"
        raise Mistake(f"the new {which} differs from torch's after {len(batches)} batch(es) (momentum {momentum:g}): "
                      "running ← (1 − momentum)·running + momentum·(the batch's mean, or its unbiased variance).")

    n = batches[0].shape[0]
    return Property("batchnorm_running_update", f"{len(batches)} update(s) give the buffers torch keeps "
                    f"({len(batches)}×{n}×{batches[0].shape[1]} {str(dtype).removeprefix('torch.')}, "
                    f"momentum {momentum:g})", p, judge)


def _eval_oracle(eps: float) -> Any:
    return lambda a, g, b, m, v: torch.nn.functional.batch_norm(a, m, v, g, b, training=False, eps=eps)


def running_statistics(x: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Running statistics unlike ``x``'s own (so that using the batch's statistics shows)."""
    g = _seeded(seed)
    d = x.shape[1]
    mean = x.double().mean(0) + torch.randn(d, generator=g, dtype=torch.float64)
    var = x.double().var(0) * (torch.rand(d, generator=g, dtype=torch.float64) * 2 + 0.5)
    return mean.to(x.dtype), var.to(x.dtype)


def batchnorm_eval_forward_values(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                                  running_mean: torch.Tensor, running_var: torch.Tensor, eps: float = 1e-5) -> Property:
    """Test-time batch norm equals ``F.batch_norm(..., training=False)``; no input is modified."""
    inputs = [x, gamma, beta, running_mean, running_var]

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["result"], "batchnorm_eval_forward")
        out = expect_tensor(out, "batchnorm_eval_forward's out", x)
        expected = _eval_oracle(eps)(*(t.double() for t in inputs))
        if not _matches(out, expected, x.dtype):
            x64, g64, b64, m64, v64 = (t.double() for t in inputs)
            if x.shape[0] > 1 and _matches(out, _bn_oracle(eps)(x64, g64, b64), x.dtype):
                raise Mistake("batchnorm_eval_forward normalized with the batch's own mean and variance; at test time "
                              "batch norm uses the running statistics, so that each sample's output depends on it "
                              "alone.")
            if _matches(out, g64 * (x64 - m64) / (v64 + eps) + b64, x.dtype):
                raise Mistake("batchnorm_eval_forward divides by the variance: divide by the standard deviation, "
                              "√(running_var + eps).")
            if _matches(out, g64 * (x64 - m64) / (v64.sqrt() + eps) + b64, x.dtype):
                raise Mistake("eps belongs inside the square root: √(running_var + eps).")
            if x.shape[0] == 1 and (not bool(torch.isfinite(out).all()) or bool((out == beta).all())):
                raise Mistake("on a batch of one sample, batchnorm_eval_forward gives nan or β: it used the batch's "
                              "own statistics. At test time use the running ones.")
            raise Mistake(f"batchnorm_eval_forward's out differs from γ·(x − running_mean)/√(running_var + eps) + β at "
                          f"{_off(out, expected, x.dtype)} of {x.numel()} elements.")
        _expect_inputs_unchanged(got, inputs, ["x", "gamma", "beta", "running_mean", "running_var"],
                                 "batchnorm_eval_forward")

    return Property("batchnorm_eval_forward", f"equals F.batch_norm(..., training=False) ({_describe(x)}, "
                    f"eps = {eps:g})", _forward_program("batchnorm_eval_forward", inputs, FORBID_NORMS, eps=eps), judge)


def batchnorm_eval_backward_values(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                                   running_mean: torch.Tensor, running_var: torch.Tensor, dout: torch.Tensor,
                                   eps: float = 1e-5) -> Property:
    """``dx``, ``dgamma``, ``dbeta`` against autograd through ``F.batch_norm(..., training=False)``."""
    stats = [running_mean, running_var]

    def judge(got: dict[str, Any]) -> None:
        dx, dgamma, dbeta = expect_tuple(got["grads"], 3, "batchnorm_eval_backward", "dx, dgamma, dbeta")
        for value, name in ((dgamma, "dgamma"), (dbeta, "dbeta")):
            if isinstance(value, torch.Tensor) and tuple(value.shape) == tuple(x.shape):
                raise Mistake(f"{name} has one row per sample: γ and β are shared by the whole batch, so their "
                              "gradients sum over it (shape D).")
        dx = expect_tensor(dx, "batchnorm_eval_backward's dx", x)
        dgamma = expect_tensor(dgamma, "dgamma", gamma)
        dbeta = expect_tensor(dbeta, "dbeta", beta)
        m64, v64 = running_mean.double(), running_var.double()
        _, (ex, eg, eb) = _grads_of(lambda a, g, b: _eval_oracle(eps)(a, g, b, m64, v64), [x, gamma, beta], dout)
        if not _matches(dbeta, eb, x.dtype):
            raise Mistake("dbeta must be Σ_n dout[n] (β is added to every row).")
        if not _matches(dgamma, eg, x.dtype):
            raise Mistake("dgamma must be Σ_n dout[n]·x̂[n], with x̂ = (x − running_mean)/√(running_var + eps).")
        if _matches(dx, ex, x.dtype):
            _expect_inputs_unchanged(got, [x, gamma, beta, *stats], ["x", "gamma", "beta", "running_mean",
                                                                     "running_var"], "batchnorm_eval_forward/backward")
            expect_unchanged(got["dout_after"], dout, "dout", "batchnorm_eval_backward")
            return
        s = 1 / (v64 + eps).sqrt()
        xhat = (x.double() - m64) * s
        g = dout.double() * gamma.double()
        n = x.shape[0]
        training_formula = s / n * (n * g - g.sum(0) - xhat * (g * xhat).sum(0))
        if _matches(dx, training_formula, x.dtype):
            raise Mistake("dx is training mode's formula, with the paths through the batch mean and variance; at test "
                          "time the running statistics are constants, so dx = dout·γ/√(running_var + eps).")
        if _matches(dx, dout.double() * s, x.dtype):
            raise Mistake("dx lacks the factor γ: dx = dout·γ/√(running_var + eps).")
        raise Mistake(f"dx differs from autograd's at {_off(dx, ex, x.dtype)} of {x.numel()} elements: "
                      "dx = dout·γ/√(running_var + eps).")

    return Property("batchnorm_eval_backward", f"dx, dgamma, dbeta agree with autograd ({_describe(x)})",
                    _fb_program("batchnorm_eval_forward", "batchnorm_eval_backward", [x, gamma, beta, *stats], dout,
                                FORBID_NORMS, eps=eps), judge)


def batchnorm_running_rejects_single_sample(x: torch.Tensor) -> Property:
    d = x.shape[1]
    mean, var = torch.zeros(d, dtype=x.dtype), torch.ones(d, dtype=x.dtype)
    return _raises_property("batchnorm_running_update",
                            "works on a batch of 2 or more; a batch of one raises ValueError",
                            "batchnorm_running_update", [mean, var, x], [mean, var, x[:1]],
                            "keep the given checks (an unbiased variance needs 2 samples).", FORBID_NORMS)


@register("batchnorm_eval")
def batchnorm_eval_check() -> list[Property]:
    """The visible check for ``batchnorm_running_update``, ``batchnorm_eval_forward`` and
    ``batchnorm_eval_backward``."""
    x, gamma, beta, dout = batchnorm_inputs(8, 5, seed=20)
    x32, gamma32, beta32, dout32 = batchnorm_inputs(16, 3, seed=21, dtype=torch.float32)
    batches = [batchnorm_inputs(6, 4, seed=22 + k)[0] for k in range(3)]
    mean, var = running_statistics(x, seed=25)
    mean32, var32 = running_statistics(x32, seed=26)
    return [
        batchnorm_running_values(torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64),
                                 batches[:1]),
        batchnorm_running_values(torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64),
                                 batches, momentum=0.3),
        batchnorm_running_rejects_single_sample(x),
        batchnorm_eval_forward_values(x, gamma, beta, mean, var),
        batchnorm_eval_forward_values(x[:1], gamma, beta, mean, var),
        batchnorm_eval_forward_values(x32, gamma32, beta32, mean32, var32, eps=1e-3),
        batchnorm_eval_backward_values(x, gamma, beta, mean, var, dout),
        batchnorm_eval_backward_values(x32, gamma32, beta32, mean32, var32, dout32, eps=1e-3),
    ]


# ----------------------------------------------------------------------------- spatial batch norm


def _spatial_manual(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float,
                    dims: tuple[int, ...] = (0, 2, 3)) -> torch.Tensor:
    """Normalization of ``x: N×C×H×W`` over ``dims`` (biased variance), then ``γ[c]``, ``β[c]``: the spatial batch
    norm for ``(0, 2, 3)``, and the wrong groupings behind the diagnoses for other ``dims``. (The same as
    ``F.batch_norm(..., training=True)`` for ``(0, 2, 3)``, which the tests confirm; torch's own op is slow on a
    CPU in float64.)"""
    x64 = x.double()
    mean = x64.mean(dims, keepdim=True)
    var = x64.var(dims, correction=0, keepdim=True)
    return gamma.double().view(1, -1, 1, 1) * (x64 - mean) / (var + eps).sqrt() + beta.double().view(1, -1, 1, 1)


def _spatial_scrambled(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> torch.Tensor:
    """Batch norm of ``x.reshape(-1, C)`` reshaped back: channels mixed up by a reshape without a permute."""
    channels = x.shape[1]
    return _bn_manual(x.double().reshape(-1, channels), gamma, beta, eps, "biased").reshape(x.shape)


def spatial_batchnorm_forward_values(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                                     eps: float = 1e-5) -> Property:
    """Per-channel batch norm of ``N×C×H×W`` images over ``N, H, W``; no input is modified."""
    inputs = [x, gamma, beta]

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["result"], "spatial_batchnorm_forward")
        out = expect_tensor(out, "spatial_batchnorm_forward's out", x)
        expected = _spatial_manual(x, gamma, beta, eps)
        if not _matches(out, expected, x.dtype):
            wrong = {
                (0,): "it normalized each (channel, row, column) position over the batch alone: a channel's "
                      "statistics gather its values at every position too, over N, H and W",
                (2, 3): "it normalized each image's channel on its own (instance norm): batch norm pools the whole "
                        "batch, over N, H and W",
                (1, 2, 3): "it normalized each image over all its channels and positions (layer norm): batch norm "
                           "keeps one mean and variance per channel, over N, H and W",
            }
            for dims, why in wrong.items():
                if _matches(out, _spatial_manual(x, gamma, beta, eps, dims), x.dtype):
                    raise Mistake(f"spatial_batchnorm_forward's out is wrong: {why}.")
            if _matches(out, _spatial_scrambled(x, gamma, beta, eps), x.dtype):
                raise Mistake("spatial_batchnorm_forward mixes up the channels: x.reshape(-1, C) does not put a "
                              "channel's values in one column. Move the channels last first, "
                              "x.permute(0, 2, 3, 1).reshape(-1, C), and permute back at the end.")
            raise Mistake(f"spatial_batchnorm_forward's out differs from F.batch_norm's at "
                          f"{_off(out, expected, x.dtype)} of {x.numel()} elements.")
        _expect_inputs_unchanged(got, inputs, ["x", "gamma", "beta"], "spatial_batchnorm_forward")

    return Property("spatial_batchnorm_forward", f"one mean and variance per channel, over N, H, W ({_describe(x)})",
                    _forward_program("spatial_batchnorm_forward", inputs, FORBID_NORMS, eps=eps), judge)


def spatial_batchnorm_backward_values(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, dout: torch.Tensor,
                                      eps: float = 1e-5) -> Property:
    """``dx``, ``dgamma``, ``dbeta`` against autograd through spatial batch norm."""

    def judge(got: dict[str, Any]) -> None:
        dx, dgamma, dbeta = expect_tuple(got["grads"], 3, "spatial_batchnorm_backward", "dx, dgamma, dbeta")
        for value, name in ((dgamma, "dgamma"), (dbeta, "dbeta")):
            if isinstance(value, torch.Tensor) and tuple(value.shape) != tuple(gamma.shape):
                raise Mistake(f"{name} has shape {tuple(value.shape)}; it must be C = ({x.shape[1]},): γ[c] and β[c] "
                              "are shared by every image and position of channel c, so their gradients sum over "
                              "N, H and W.")
        dx = expect_tensor(dx, "spatial_batchnorm_backward's dx", x)
        dgamma = expect_tensor(dgamma, "dgamma", gamma)
        dbeta = expect_tensor(dbeta, "dbeta", beta)
        out = got["out"]
        if isinstance(out, torch.Tensor) and out.shape == x.shape and not _matches(
                out, _spatial_manual(x, gamma, beta, eps), x.dtype):
            raise Mistake("spatial_batchnorm_forward's output is wrong, so its backward cannot be right: fix the "
                          "forward first.")
        _, (ex, eg, eb) = _grads_of(lambda a, g, b: _spatial_manual(a, g, b, eps), [x, gamma, beta], dout)
        layout = ("the gradients are batch norm's in the wrong layout: bring dout to (N·H·W)×C exactly as the "
                  "forward did (permute(0, 2, 3, 1), then reshape) and dx back with the inverse (reshape to "
                  "N×H×W×C, then permute(0, 3, 1, 2)).")
        if not _matches(dbeta, eb, x.dtype):
            if _matches(dbeta, dout.double().reshape(-1, x.shape[1]).sum(0), x.dtype):
                raise Mistake(layout)
            raise Mistake("dbeta must be dout summed over N, H and W, per channel.")
        if not _matches(dgamma, eg, x.dtype):
            raise Mistake("dgamma must be dout·x̂ summed over N, H and W, per channel.")
        if _matches(dx, ex, x.dtype):
            _expect_inputs_unchanged(got, [x, gamma, beta], ["x", "gamma", "beta"],
                                     "spatial_batchnorm_forward/backward")
            expect_unchanged(got["dout_after"], dout, "dout", "spatial_batchnorm_backward")
            return
        channels = x.shape[1]
        rows = x.double().permute(0, 2, 3, 1).reshape(-1, channels)
        for dout_rows in (dout.double().reshape(-1, channels), dout.double().permute(0, 2, 3, 1).reshape(-1, channels)):
            grad = _grads_of(lambda a: _bn_manual(a, gamma, beta, eps, "biased"), [rows], dout_rows)[1][0]
            if _matches(dx, grad.reshape(x.shape), x.dtype):
                raise Mistake(layout)
        raise Mistake(f"dx differs from autograd's at {_off(dx, ex, x.dtype)} of {x.numel()} elements: use your "
                      "batchnorm_backward on the same (N·H·W)×C layout as the forward.")

    return Property("spatial_batchnorm_backward", f"dx, dgamma, dbeta agree with autograd ({_describe(x)})",
                    _fb_program("spatial_batchnorm_forward", "spatial_batchnorm_backward", [x, gamma, beta], dout,
                                FORBID_NORMS, eps=eps), judge)


def spatial_inputs(n: int, c: int, h: int, w: int, seed: int,
                   dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    """Images whose channels have different means and scales, ``gamma``, ``beta``, ``dout``."""
    g = _seeded(seed)
    shift = torch.randn(1, c, 1, 1, generator=g, dtype=torch.float64) * 3
    scale = torch.rand(1, c, 1, 1, generator=g, dtype=torch.float64) * 2 + 0.2
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * scale + shift
    gamma = torch.randn(c, generator=g, dtype=torch.float64)
    beta = torch.randn(c, generator=g, dtype=torch.float64)
    dout = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    return tuple(t.to(dtype) for t in (x, gamma, beta, dout))


@register("spatial_batchnorm")
def spatial_batchnorm_check() -> list[Property]:
    """The visible check for ``spatial_batchnorm_forward`` and ``spatial_batchnorm_backward``."""
    x, gamma, beta, dout = spatial_inputs(3, 4, 5, 6, seed=30)
    x32, gamma32, beta32, dout32 = spatial_inputs(4, 3, 4, 4, seed=31, dtype=torch.float32)
    return [
        spatial_batchnorm_forward_values(x, gamma, beta),
        spatial_batchnorm_forward_values(x32, gamma32, beta32, eps=1e-3),
        spatial_batchnorm_backward_values(x, gamma, beta, dout),
        spatial_batchnorm_backward_values(x32, gamma32, beta32, dout32, eps=1e-3),
    ]


# ----------------------------------------------------------------------------- layer norm


def _ln_oracle(eps: float) -> Any:
    return lambda a, g, b: torch.nn.functional.layer_norm(a, (a.shape[1],), g, b, eps)


def _ln_manual(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float, variant: str) -> torch.Tensor:
    """Layer norm's wrong variants: the unbiased variance, eps outside the root."""
    x64 = x.double()
    centred = x64 - x64.mean(1, keepdim=True)
    var = x64.var(1, correction=1 if variant == "unbiased" else 0, keepdim=True)
    denominator = var.sqrt() + eps if variant == "eps outside" else (var + eps).sqrt()
    return gamma.double() * centred / denominator + beta.double()


def layernorm_forward_values(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5) -> Property:
    """Layer norm equals ``F.layer_norm``; no input is modified."""
    inputs = [x, gamma, beta]

    def judge(got: dict[str, Any]) -> None:
        out, _ = expect_pair(got["result"], "layernorm_forward")
        out = expect_tensor(out, "layernorm_forward's out", x)
        expected = _ln_oracle(eps)(x.double(), gamma.double(), beta.double())
        if not _matches(out, expected, x.dtype):
            if x.shape[0] > 1 and _matches(out, _bn_manual(x, gamma, beta, eps, "biased"), x.dtype):
                raise Mistake("layernorm_forward normalized each feature over the batch: that is batch norm. Layer "
                              "norm normalizes each sample over its own features (mean and variance along dim=1).")
            if _matches(out, _ln_manual(x, gamma, beta, eps, "unbiased"), x.dtype):
                raise Mistake("layernorm_forward used the unbiased variance (divide by D − 1); layer norm divides "
                              "by D.")
            if _matches(out, _ln_manual(x, gamma, beta, eps, "eps outside"), x.dtype):
                raise Mistake("eps belongs inside the square root: x̂ = (x − μ) / √(σ² + eps).")
            raise Mistake(f"layernorm_forward's out differs from F.layer_norm's at {_off(out, expected, x.dtype)} of "
                          f"{x.numel()} elements.")
        _expect_inputs_unchanged(got, inputs, ["x", "gamma", "beta"], "layernorm_forward")

    return Property("layernorm_forward", f"equals F.layer_norm: each sample over its features ({_describe(x)}, "
                    f"eps = {eps:g})", _forward_program("layernorm_forward", inputs, FORBID_NORMS, eps=eps), judge)


def layernorm_backward_values(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, dout: torch.Tensor,
                              eps: float = 1e-5) -> Property:
    """``dx``, ``dgamma``, ``dbeta`` against autograd through ``F.layer_norm``."""
    n, d = x.shape

    def judge(got: dict[str, Any]) -> None:
        dx, dgamma, dbeta = expect_tuple(got["grads"], 3, "layernorm_backward", "dx, dgamma, dbeta")
        for value, name in ((dgamma, "dgamma"), (dbeta, "dbeta")):
            if isinstance(value, torch.Tensor) and tuple(value.shape) in ((n,), (n, 1), (n, d)) and n != d:
                raise Mistake(f"{name} has shape {tuple(value.shape)}: γ and β have one entry per feature and are "
                              "shared by every sample, so their gradients sum over the batch (dim=0), shape D.")
        dx = expect_tensor(dx, "layernorm_backward's dx", x)
        dgamma = expect_tensor(dgamma, "dgamma", gamma)
        dbeta = expect_tensor(dbeta, "dbeta", beta)
        out = got["out"]
        forward, (ex, eg, eb) = _grads_of(_ln_oracle(eps), [x, gamma, beta], dout)
        if isinstance(out, torch.Tensor) and out.shape == x.shape and not _matches(out, forward, x.dtype):
            raise Mistake("layernorm_forward's output is wrong, so its backward cannot be right: fix the forward "
                          "first.")
        if not _matches(dbeta, eb, x.dtype):
            raise Mistake("dbeta must be Σ_n dout[n], summed over the batch (dim=0).")
        if not _matches(dgamma, eg, x.dtype):
            raise Mistake("dgamma must be Σ_n dout[n]·x̂[n], summed over the batch (dim=0).")
        if _matches(dx, ex, x.dtype):
            _expect_inputs_unchanged(got, [x, gamma, beta], ["x", "gamma", "beta"], "layernorm_forward/backward")
            expect_unchanged(got["dout_after"], dout, "dout", "layernorm_backward")
            return
        x64 = x.double()
        centred = x64 - x64.mean(1, keepdim=True)
        s = 1 / (centred.pow(2).mean(1, keepdim=True) + eps).sqrt()
        xhat = centred * s
        g = dout.double() * gamma.double()
        candidates = {
            "the sums of dx run over the batch, as in batch norm; in layer norm each sample has its own mean and "
            "variance, so they run over its features (dim=1)":
                s / n * (n * g - g.sum(0) - xhat * (g * xhat).sum(0)),
            "dx is missing the term through the variance (− x̂ · mean over the features of g·x̂, with g = γ·dout)":
                s * (g - g.mean(1, keepdim=True)),
            "dx is missing the term through the mean (− the mean over the features of g, with g = γ·dout)":
                s * (g - xhat * (g * xhat).mean(1, keepdim=True)),
            "dx is only γ·dout/√(σ² + eps): each x also reaches the loss through its sample's mean and variance":
                s * g,
        }
        for why, candidate in candidates.items():
            if _matches(dx, candidate, x.dtype):
                raise Mistake(f"{why}.")
        raise Mistake(f"dx differs from autograd's at {_off(dx, ex, x.dtype)} of {x.numel()} elements.")

    return Property("layernorm_backward", f"dx, dgamma, dbeta agree with autograd ({_describe(x)})",
                    _fb_program("layernorm_forward", "layernorm_backward", [x, gamma, beta], dout, FORBID_NORMS,
                                eps=eps), judge)


def layernorm_rejects_bad_beta(x: torch.Tensor) -> Property:
    d = x.shape[1]
    ones, zeros = torch.ones(d, dtype=x.dtype), torch.zeros(d, dtype=x.dtype)
    return _raises_property("layernorm_forward", "works on valid shapes; beta of the wrong length raises ValueError",
                            "layernorm_forward", [x, ones, zeros], [x, ones, torch.zeros(d - 1, dtype=x.dtype)],
                            "keep the given shape checks (gamma and beta of length D).", FORBID_NORMS)


def layernorm_inputs(n: int, d: int, seed: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    """Samples of different means and scales (a row per sample), ``gamma``, ``beta``, ``dout``."""
    g = _seeded(seed)
    shift = torch.randn(n, 1, generator=g, dtype=torch.float64) * 4
    scale = torch.rand(n, 1, generator=g, dtype=torch.float64) * 3 + 0.2
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift
    gamma = torch.randn(d, generator=g, dtype=torch.float64)
    beta = torch.randn(d, generator=g, dtype=torch.float64)
    dout = torch.randn(n, d, generator=g, dtype=torch.float64)
    return tuple(t.to(dtype) for t in (x, gamma, beta, dout))


@register("layernorm")
def layernorm_check() -> list[Property]:
    """The visible check for ``layernorm_forward`` and ``layernorm_backward``."""
    x, gamma, beta, dout = layernorm_inputs(6, 5, seed=40)
    x32, gamma32, beta32, dout32 = layernorm_inputs(4, 8, seed=41, dtype=torch.float32)
    return [
        layernorm_forward_values(x, gamma, beta),
        layernorm_forward_values(x32, gamma32, beta32, eps=1e-3),
        layernorm_rejects_bad_beta(x),
        layernorm_backward_values(x, gamma, beta, dout),
        layernorm_backward_values(x32, gamma32, beta32, dout32, eps=1e-3),
    ]


# ----------------------------------------------------------------------------- the two-layer net

NET_KEYS = ("W1", "b1", "W2", "b2")


def _net_oracle(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                reg: float) -> tuple[float, dict[str, torch.Tensor]]:
    def loss_of(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
        scores = torch.relu(x.double() @ w1 + b1) @ w2 + b2
        penalty = 0.5 * reg * (w1.pow(2).sum() + w2.pow(2).sum())
        return torch.nn.functional.cross_entropy(scores, y) + penalty

    loss, grads = _grads_of(loss_of, [params[k] for k in NET_KEYS])
    return float(loss), dict(zip(NET_KEYS, grads, strict=True))


def two_layer_net_values(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, reg: float) -> Property:
    """The loss (data loss + ``0.5·reg·(‖W1‖² + ‖W2‖²)``) and every gradient, against torch's autograd."""
    p = Program().forbid(*FORBID_NET)
    pr, xr, yr = p.put({k: v.clone() for k, v in params.items()}), p.put(x.clone()), p.put(y.clone())
    p.fetch(result=p.call("layers.two_layer_net_loss", pr, xr, yr, reg=reg), params_after=pr, x_after=xr)
    dtype = x.dtype

    def judge(got: dict[str, Any]) -> None:
        loss, grads = expect_tuple(got["result"], 2, "two_layer_net_loss", "loss, grads")
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise Mistake(f"the loss must be a single number (a 0-d tensor); got shape {tuple(loss.shape)}.")
            loss = float(loss)
        if type(loss) not in (int, float):
            raise Mistake(f"the loss must be a 0-d tensor; got {type(loss).__name__}.")
        if not isinstance(grads, dict) or sorted(grads) != sorted(NET_KEYS):
            have = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
            raise Mistake(f"grads must be a dict with the keys W1, b1, W2, b2; got {have}.")
        for k in NET_KEYS:
            expect_tensor(grads[k], f"grads[{k!r}]", params[k])
        expected_loss, expected = _net_oracle(params, x, y, reg)
        rtol, atol = _tolerance(dtype)
        penalty = 0.5 * reg * float(params["W1"].double().pow(2).sum() + params["W2"].double().pow(2).sum())
        if abs(loss - expected_loss) > rtol * abs(expected_loss) + atol:
            if reg and abs(loss - (expected_loss - penalty)) <= rtol * abs(expected_loss) + atol:
                raise Mistake("the loss lacks the regularization term 0.5·reg·(‖W1‖² + ‖W2‖²).")
            if reg and abs(loss - (expected_loss + penalty)) <= rtol * abs(expected_loss) + atol:
                raise Mistake("the regularization term is doubled: it is 0.5·reg·(‖W1‖² + ‖W2‖²).")
            raise Mistake("the loss differs from softmax cross-entropy of the scores plus 0.5·reg·(‖W1‖² + ‖W2‖²).")
        for k in ("W2", "b2", "W1", "b1"):
            if _matches(grads[k], expected[k], dtype):
                continue
            if k[0] == "W" and reg:
                w = params[k].double()
                if _matches(grads[k], expected[k] - reg * w, dtype):
                    raise Mistake(f"grads[{k!r}] lacks the regularization term: the derivative of 0.5·reg·‖{k}‖² is "
                                  f"reg·{k}; add it to the gradient of the data loss.")
                if _matches(grads[k], expected[k] + reg * w, dtype):
                    raise Mistake(f"grads[{k!r}] has 2·reg·{k}: the derivative of 0.5·reg·‖{k}‖² is reg·{k}.")
                if _matches(grads[k], expected[k] - 0.5 * reg * w, dtype):
                    raise Mistake(f"grads[{k!r}] has 0.5·reg·{k}: the derivative of 0.5·reg·‖{k}‖² is reg·{k}.")
            if k[0] == "b" and reg and _matches(grads[k], expected[k] + reg * params[k].double(), dtype):
                raise Mistake(f"grads[{k!r}] includes reg·{k}: biases are not regularized.")
            raise Mistake(f"grads[{k!r}] differs from autograd's at {_off(grads[k], expected[k], dtype)} of "
                          f"{grads[k].numel()} elements: check the backward pass through "
                          f"{'the second linear layer' if k.endswith('2') else 'ReLU and the first linear layer'}.")
        after = got["params_after"]
        for k in NET_KEYS:
            expect_unchanged(after.get(k) if isinstance(after, dict) else None, params[k], f"params[{k!r}]",
                             "two_layer_net_loss")
        expect_unchanged(got["x_after"], x, "x", "two_layer_net_loss")

    shapes = f"D={x.shape[1]}, H={params['W1'].shape[1]}, C={params['W2'].shape[1]}"
    return Property("two_layer_net_loss",
                    f"loss and grads agree with autograd ({shapes}, {_describe(x)}, reg = {reg:g})", p, judge)


def two_layer_net_rejects_missing_key(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> Property:
    """Complete ``params`` work; ``params`` without ``b2`` raise ``ValueError``."""
    partial = {k: v for k, v in params.items() if k != "b2"}
    return _raises_property("two_layer_net_loss", "works on complete params; params without 'b2' raise ValueError",
                            "two_layer_net_loss", [params, x, y], [partial, x, y], "keep the given checks of params.",
                            FORBID_NET)


def net_inputs(n: int, d: int, h: int, c: int, seed: int,
               dtype: torch.dtype = torch.float64) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Random parameters, inputs and labels of a small two-layer net."""
    g = _seeded(seed)
    params = {"W1": torch.randn(d, h, generator=g, dtype=torch.float64) / d**0.5,
              "b1": torch.randn(h, generator=g, dtype=torch.float64) * 0.1,
              "W2": torch.randn(h, c, generator=g, dtype=torch.float64) / h**0.5,
              "b2": torch.randn(c, generator=g, dtype=torch.float64) * 0.1}
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    return {k: v.to(dtype) for k, v in params.items()}, x.to(dtype), y


@register("two_layer_net")
def two_layer_net_check() -> list[Property]:
    """The visible check for ``two_layer_net_loss``."""
    params, x, y = net_inputs(6, 5, 7, 3, seed=10)
    params32, x32, y32 = net_inputs(8, 4, 6, 5, seed=11, dtype=torch.float32)
    return [
        two_layer_net_values(params, x, y, reg=0.0),
        two_layer_net_values(params, x, y, reg=0.3),
        two_layer_net_values(params32, x32, y32, reg=0.1),
        two_layer_net_rejects_missing_key(params, x, y),
    ]
