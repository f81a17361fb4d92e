"""The properties of chapter 2's layers (linear, sigmoid, tanh, softmax cross-entropy, dropout, batch
norm, the two-layer net) accept every correct implementation and name each realistic mistake, in the
visible checks and in the hidden tests alike.

Each variant is the reference with one change. The properties run in-process here, exactly as the
visible check runs them; test_layers_grading.py runs the hidden suite through the real sandbox.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from exercises.checks import Property, evaluate
from exercises.checks.layers import (
    batchnorm_check,
    batchnorm_eval_check,
    dropout_check,
    dropout_train_statistics,
    layernorm_check,
    linear_check,
    relu_check,
    sigmoid_check,
    softmax_cross_entropy_check,
    spatial_batchnorm_check,
    tanh_check,
    two_layer_net_check,
)
from exercises.checks.program import Program
from grading import PROJECT_ROOT
from grading.stubs import strip_markers
from grading.suite import load_suite
from tests.conftest import throwaway_packages

REFERENCE = strip_markers((PROJECT_ROOT / "solutions" / "layers.py").read_text(encoding="utf-8"))
STUB = (PROJECT_ROOT / "exercises" / "layers.py").read_text(encoding="utf-8")

CHECK_OF = {  # exercise -> its visible check
    "relu_forward": relu_check, "relu_backward": relu_check,
    "linear_forward": linear_check, "linear_backward": linear_check,
    "sigmoid_forward": sigmoid_check, "sigmoid_backward": sigmoid_check,
    "tanh_forward": tanh_check, "tanh_backward": tanh_check,
    "softmax_cross_entropy": softmax_cross_entropy_check,
    "dropout_forward": dropout_check, "dropout_backward": dropout_check,
    "batchnorm_forward": batchnorm_check, "batchnorm_backward": batchnorm_check,
    "batchnorm_running_update": batchnorm_eval_check, "batchnorm_eval_forward": batchnorm_eval_check,
    "batchnorm_eval_backward": batchnorm_eval_check,
    "spatial_batchnorm_forward": spatial_batchnorm_check, "spatial_batchnorm_backward": spatial_batchnorm_check,
    "layernorm_forward": layernorm_check, "layernorm_backward": layernorm_check,
    "two_layer_net_loss": two_layer_net_check,
}
CHAPTER_2 = [e for e in CHECK_OF if not e.startswith("relu")]
# two_layer_net_loss is built from the learner's own layers, spatial batch norm from batch norm: their
# mistakes reach them too.
USED_BY = {"two_layer_net_loss": {"linear_forward", "linear_backward", "relu_forward", "relu_backward",
                                  "softmax_cross_entropy"},
           "spatial_batchnorm_forward": {"batchnorm_forward", "batchnorm_backward"},
           "spatial_batchnorm_backward": {"batchnorm_forward", "batchnorm_backward"}}
# Exercises whose properties run another exercise first (a backward runs its forward).
GROUP = {"batchnorm_running_update": "batchnorm_eval", "batchnorm_eval_forward": "batchnorm_eval",
         "batchnorm_eval_backward": "batchnorm_eval"}


def variant(*changes: tuple[str, str]) -> str:
    """The reference with each ``(old, new)`` replaced once: a mistake or a correct alternative."""
    source = REFERENCE
    for old, new in changes:
        assert old in source, f"the reference no longer contains {old!r}; update the variant"
        source = source.replace(old, new, 1)
    return source


def between(start: str, end: str) -> str:
    """The reference's text from ``start`` up to and including ``end``."""
    i = REFERENCE.index(start)
    return REFERENCE[i:REFERENCE.index(end, i) + len(end)]


def hidden_properties(exercise: str) -> list[Property]:
    return [t.build() for t in load_suite() if t.exercise == exercise and t.name.startswith("layers.")]


def visible_properties(exercise: str) -> list[Property]:
    return [p for p in CHECK_OF[exercise]() if p.exercise == exercise]


@pytest.fixture
def install(tmp_path: Path) -> Iterator[Callable[[str], Callable[[Program], dict[str, Any]]]]:
    """Install a layers.py source as a throwaway package; return a program runner for it."""
    yield from throwaway_packages("layers.py", tmp_path)


def _failures(props: list[Property], run) -> list[str]:
    return [message for prop in props for passed, message in [evaluate(prop, run)] if not passed]


# ----------------------------------------------------------------------------- correct alternatives

BN_FORWARD = between("    mean = x.mean(dim=0)\n", "    return out, (xhat, gamma, inv_std)\n")
BN_BACKWARD = between("    xhat, gamma, inv_std = cache\n", "    return dx, dgamma, dbeta\n")
BN_STAGED_FORWARD = """    mu = x.mean(dim=0)
    xmu = x - mu
    sq = xmu**2
    var = sq.mean(dim=0)
    sqrtvar = torch.sqrt(var + eps)
    ivar = 1.0 / sqrtvar
    xhat = xmu * ivar
    out = gamma * xhat + beta
    return out, (xhat, gamma, xmu, ivar, sqrtvar, var, eps)
"""
BN_STAGED_BACKWARD = """    xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    n = dout.shape[0]
    dbeta = dout.sum(dim=0)
    dgamma = (dout * xhat).sum(dim=0)
    dxhat = dout * gamma
    divar = (dxhat * xmu).sum(dim=0)
    dxmu1 = dxhat * ivar
    dsqrtvar = -1.0 / sqrtvar**2 * divar
    dvar = 0.5 / torch.sqrt(var + eps) * dsqrtvar
    dsq = torch.ones_like(dout) / n * dvar
    dxmu2 = 2 * xmu * dsq
    dx1 = dxmu1 + dxmu2
    dmu = -dx1.sum(dim=0)
    dx2 = torch.ones_like(dout) / n * dmu
    return dx1 + dx2, dgamma, dbeta
"""
SOFTMAX_BODY = between("    n = logits.shape[0]\n    shifted", "    return loss, dlogits\n")
NET_BODY = between("    hidden, cache1 = linear_forward(x, W1, b1)\n", "    return loss, grads\n")

CORRECT = {
    "reference": REFERENCE,
    "linear with addmm and einsum": variant(
        ("    out = x @ w + b\n", "    out = torch.addmm(b, x, w)\n"),
        ("    dw = x.T @ dout\n", "    dw = torch.einsum('nd,nm->dm', x, dout)\n"),
        ("    db = dout.sum(dim=0)\n    return dx, dw, db",
         "    db = torch.ones(dout.shape[0], dtype=dout.dtype) @ dout\n    return dx, dw, db")),
    "sigmoid built from tanh": variant(("    out = torch.where(x >= 0, 1 / (1 + z), z / (1 + z))\n",
                                       "    out = 0.5 * (1 + torch.tanh(x / 2))\n")),
    "sigmoid as 1 / (1 + exp(-x))": variant(("    out = torch.where(x >= 0, 1 / (1 + z), z / (1 + z))\n",
                                             "    out = 1 / (1 + torch.exp(-x))\n")),
    "tanh built from sigmoid": variant(("    out = torch.sign(x) * (1 - z) / (1 + z)\n",
                                        "    out = 2 * torch.sigmoid(2 * x) - 1\n")),
    "tanh from exp (fine for moderate inputs)": variant(
        ("    out = torch.sign(x) * (1 - z) / (1 + z)\n",
         "    out = (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x))\n")),
    "softmax with torch.logsumexp, arange indexing, in-place gradient": variant(
        (SOFTMAX_BODY, """    n = logits.shape[0]
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    rows = torch.arange(n)
    loss = -log_probs[rows, labels].mean()
    dlogits = log_probs.exp()
    dlogits[rows, labels] -= 1
    return loss, dlogits / n
""")),
    "dropout with bernoulli, returning x itself in evaluation": variant(
        ("        return x.clone(), None\n", "        return x, None\n"),
        ("    keep = torch.rand(x.shape, generator=generator, device=generator.device) >= p\n",
         "    keep = torch.bernoulli(torch.full(x.shape, 1 - p), generator=generator).bool()\n")),
    "dropout with rand < 1 - p": variant(
        ("    keep = torch.rand(x.shape, generator=generator, device=generator.device) >= p\n",
         "    keep = torch.rand(x.shape, generator=generator) < 1 - p\n")),
    "dropout with a float32 mask, CS231n style (float64 x scaled by a float32 1/(1 - p))": variant(
        ("    keep = torch.rand(x.shape, generator=generator, device=generator.device) >= p\n"
         "    scale = keep.to(device=x.device, dtype=x.dtype) / (1 - p)\n",
         "    scale = (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)\n")),
    "dropout keeping an exact count": variant(
        ("    keep = torch.rand(x.shape, generator=generator, device=generator.device) >= p\n",
         "    order = torch.randperm(x.numel(), generator=generator)\n"
         "    keep = torch.zeros(x.numel(), dtype=torch.bool)\n"
         "    keep[order[: round((1 - p) * x.numel())]] = True\n"
         "    keep = keep.reshape(x.shape)\n")),
    "batch norm, graph by graph (CS231n's staged backward)": variant((BN_FORWARD, BN_STAGED_FORWARD),
                                                                     (BN_BACKWARD, BN_STAGED_BACKWARD)),
    "batch norm, compact formula arranged differently": variant(
        ("    var = (centered * centered).mean(dim=0)  # biased: divide by N\n",
         "    var = x.var(dim=0, unbiased=False)\n"),
        ("    dx = inv_std / n * (n * g - g.sum(dim=0) - xhat * (g * xhat).sum(dim=0))\n",
         "    dx = (g - g.mean(dim=0) - xhat * (g * xhat).mean(dim=0)) * inv_std\n")),
    "batch norm with the one-pass variance E[x²] − E[x]²": variant(
        ("    var = (centered * centered).mean(dim=0)  # biased: divide by N\n",
         "    var = (x * x).mean(dim=0) - mean * mean\n")),
    "two-layer net written out without the layer functions": variant((NET_BODY, """    n = x.shape[0]
    h = (x @ W1 + b1).clamp(min=0)
    s = h @ W2 + b2
    s = s - s.max(dim=1, keepdim=True).values
    logp = s - s.exp().sum(dim=1, keepdim=True).log()
    loss = -logp[torch.arange(n), y].mean() + 0.5 * reg * (W1.pow(2).sum() + W2.pow(2).sum())
    ds = logp.exp()
    ds[torch.arange(n), y] -= 1
    ds /= n
    dh = (ds @ W2.T) * (h > 0)
    grads = {"W1": x.T @ dh + reg * W1, "b1": dh.sum(0), "W2": h.T @ ds + reg * W2, "b2": ds.sum(0)}
    return loss, grads
""")),
}


@pytest.mark.parametrize("name", CORRECT)
def test_correct_implementations_pass_every_visible_and_hidden_property(name: str, install) -> None:
    run = install(CORRECT[name])
    for exercise in CHECK_OF:
        for prop in visible_properties(exercise) + hidden_properties(exercise):
            assert evaluate(prop, run) == (True, ""), f"{name}: {prop.exercise}: {prop.title}"


# ----------------------------------------------------------------------------- realistic mistakes

DROPOUT_KEEP = "    keep = torch.rand(x.shape, generator=generator, device=generator.device) >= p\n"
DROPOUT_SCALE = "    scale = keep.to(device=x.device, dtype=x.dtype) / (1 - p)\n"
BN_DX = "    dx = inv_std / n * (n * g - g.sum(dim=0) - xhat * (g * xhat).sum(dim=0))\n"
NET_GRADS = '    grads = {"W1": dW1 + reg * W1, "b1": db1, "W2": dW2 + reg * W2, "b2": db2}\n'

MISTAKES: dict[str, tuple[str, str, str]] = {  # name -> (source, exercise, words the diagnosis must contain)
    "dW transposed": (variant(("    dw = x.T @ dout\n", "    dw = dout.T @ x\n")), "linear_backward", "transpose"),
    "dW transposed back to the right shape": (variant(("    dw = x.T @ dout\n", "    dw = (dout.T @ x).T.T\n")),
                                              "linear_backward", "transpose"),
    "db not summed over the batch": (variant(("    db = dout.sum(dim=0)\n    return dx",
                                              "    db = dout\n    return dx")),
                                     "linear_backward", "one row per sample"),
    "db averaged over the batch": (variant(("    db = dout.sum(dim=0)\n    return dx",
                                            "    db = dout.mean(dim=0)\n    return dx")),
                                   "linear_backward", "the mean of dout"),
    "dx with w instead of its transpose": (variant(("    dx = dout @ w.T\n",
                                                    "    dx = dout @ w if w.shape[0] == w.shape[1] else dout @ w.T\n")),
                                           "linear_backward", "instead of its transpose"),
    "linear forward without the bias": (variant(("    out = x @ w + b\n", "    out = x @ w\n")),
                                        "linear_forward", "forgot the bias"),
    "linear backward through autograd": (variant(("    dx = dout @ w.T\n", "    xg = x.clone().requires_grad_()\n"
                                                  "    (xg @ w).backward(dout)\n    dx = xg.grad\n")),
                                         "linear_backward", "torch.Tensor.backward, which this exercise must not use"),
    "sigmoid that overflows": (variant(("    out = torch.where(x >= 0, 1 / (1 + z), z / (1 + z))\n",
                                        "    out = torch.exp(x) / (1 + torch.exp(x))\n")),
                               "sigmoid_forward", "inf or nan for large |x|"),
    "sigmoid by torch.sigmoid": (variant(("    out = torch.where(x >= 0, 1 / (1 + z), z / (1 + z))\n",
                                          "    out = torch.sigmoid(x)\n")),
                                 "sigmoid_forward", "called torch.sigmoid"),
    "sigmoid backward from exp(-x)": (variant(("    out = torch.where(x >= 0, 1 / (1 + z), z / (1 + z))\n"
                                               "    return out, out\n",
                                               "    out = torch.where(x >= 0, 1 / (1 + z), z / (1 + z))\n"
                                               "    return out, x\n"),
                                              ("    return dout * s * (1 - s)\n",
                                               "    return dout * torch.exp(-s) / (1 + torch.exp(-s)) ** 2\n")),
                                      "sigmoid_backward", "inf or nan for large |x|"),
    "sigmoid backward without (1 - s)": (variant(("    return dout * s * (1 - s)\n", "    return dout * s\n")),
                                         "sigmoid_backward", "dout·σ(x); the derivative"),
    "sigmoid backward without dout": (variant(("    return dout * s * (1 - s)\n", "    return s * (1 - s)\n")),
                                      "sigmoid_backward", "forgot to multiply by dout"),
    "tanh backward from the input": (variant(("    out = torch.sign(x) * (1 - z) / (1 + z)\n    return out, out\n",
                                              "    out = torch.sign(x) * (1 - z) / (1 + z)\n    return out, x\n")),
                                     "tanh_backward", "with the input"),
    "tanh backward without the square": (variant(("    return dout * (1 - t * t)\n", "    return dout * (1 - t)\n")),
                                         "tanh_backward", "square it"),
    "tanh by torch.tanh": (variant(("    out = torch.sign(x) * (1 - z) / (1 + z)\n", "    out = x.tanh()\n")),
                           "tanh_forward", "called torch.Tensor.tanh"),
    "softmax without subtracting the max": (variant(("    shifted = logits - logits.max(dim=1, keepdim=True).values\n",
                                                     "    shifted = logits\n")),
                                            "softmax_cross_entropy", "Subtract each row's maximum"),
    "log of the softmax probabilities": (variant(
        ("    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()\n",
         "    log_probs = (shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)).log()\n")),
                                         "softmax_cross_entropy", "log(softmax) underflowed"),
    "dlogits without /N": (variant(("    dlogits = (log_probs.exp() - onehot) / n\n",
                                    "    dlogits = log_probs.exp() - onehot\n")),
                           "softmax_cross_entropy", "N times too large"),
    "loss summed over the batch": (variant(("    loss = -picked.mean()\n", "    loss = -picked.sum()\n")),
                                   "softmax_cross_entropy", "sum over the batch"),
    "dlogits without the one-hot": (variant(("    dlogits = (log_probs.exp() - onehot) / n\n",
                                             "    dlogits = log_probs.exp() / n\n")),
                                    "softmax_cross_entropy", "without subtracting the one-hot"),
    "softmax by torch.log_softmax": (variant(
        ("    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()\n",
         "    log_probs = torch.log_softmax(logits, dim=1)\n")),
                                     "softmax_cross_entropy", "called torch.log_softmax"),
    "dropout not scaled at training time": (variant((DROPOUT_SCALE,
                                                     "    scale = keep.to(device=x.device, dtype=x.dtype)\n")),
                                            "dropout_forward", "yours are unscaled"),
    "vanilla dropout, scaled at test time": (variant(
        (DROPOUT_SCALE, "    scale = keep.to(device=x.device, dtype=x.dtype)\n"),
        ("    if not training or p == 0:\n        return x.clone(), None\n",
         "    if not training:\n        return x * (1 - p), None\n"
         "    if p == 0:\n        return x.clone(), None\n")),
                                             "dropout_forward", "never at test time"),
    "dropout keeping with probability p": (variant((DROPOUT_KEEP, DROPOUT_KEEP.replace(">= p", "< p"))),
                                           "dropout_forward", "p is the probability of *dropping*"),
    "dropout from the global RNG": (variant((DROPOUT_KEEP, "    keep = torch.rand(x.shape) >= p\n")),
                                    "dropout_forward", "never from the global RNG"),
    "dropout backward draws a new mask": (variant(
        ("    return x * scale, scale\n", "    return x * scale, (p, generator)\n"),
        ("    scale = cache\n    if scale is None:\n        return dout.clone()\n"
         "    require_same_shape(\"dout\", dout, \"the forward's input\", scale)\n"
         "    return dout * scale\n",
         "    if cache is None:\n        return dout.clone()\n    p, generator = cache\n"
         "    keep = torch.rand(dout.shape, generator=generator) >= p\n"
         "    return dout * keep / (1 - p)\n")),
                                          "dropout_backward", "use the forward's own mask"),
    "dropout backward unscaled": (variant(("    return dout * scale\n", "    return dout * (scale != 0)\n")),
                                  "dropout_backward", "forgot the scale"),
    "dropout by torch.nn.functional.dropout": (variant((DROPOUT_KEEP,
                                                        "    torch.nn.functional.dropout(x, p)\n" + DROPOUT_KEEP)),
                                               "dropout_forward", "called torch.nn.functional.dropout"),
    "batch norm with the unbiased variance": (variant(
        ("    var = (centered * centered).mean(dim=0)  # biased: divide by N\n", "    var = x.var(dim=0)\n")),
                                              "batchnorm_forward", "unbiased variance"),
    "batch norm backward after an unbiased forward": (variant(
        ("    var = (centered * centered).mean(dim=0)  # biased: divide by N\n", "    var = x.var(dim=0)\n")),
                                                      "batchnorm_backward", "unbiased variance"),
    "batch norm eps outside the root": (variant(("    inv_std = (var + eps).rsqrt()\n",
                                                 "    inv_std = 1 / (var.sqrt() + eps)\n")),
                                        "batchnorm_forward", "eps belongs inside the square root"),
    "batch norm dx missing the variance term": (variant((BN_DX, "    dx = inv_std * (g - g.mean(dim=0))\n")),
                                                "batchnorm_backward", "through the variance"),
    "batch norm dx missing the mean term": (variant((BN_DX,
                                                     "    dx = inv_std * (g - xhat * (g * xhat).mean(dim=0))\n")),
                                            "batchnorm_backward", "through the mean"),
    "batch norm dx treating mean and variance as constants": (variant((BN_DX, "    dx = g * inv_std\n")),
                                                              "batchnorm_backward",
                                                              "through the batch mean and variance"),
    "batch norm dgamma without x-hat": (variant(("    dgamma = (dout * xhat).sum(dim=0)\n",
                                                 "    dgamma = dout.sum(dim=0)\n")),
                                        "batchnorm_backward", "summed dout alone"),
    "batch norm by torch": (variant((BN_FORWARD, "    out = torch.nn.functional.batch_norm(x, None, None, gamma, beta, "
                                                 "training=True, eps=eps)\n    return out, None\n")),
                            "batchnorm_forward", "called torch.nn.functional.batch_norm"),
    "L2 missing from the gradients": (variant((NET_GRADS,
                                               '    grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}\n')),
                                      "two_layer_net_loss", "lacks the regularization term"),
    "L2 gradient doubled": (variant((NET_GRADS,
                                     '    grads = {"W1": dW1 + 2 * reg * W1, "b1": db1, "W2": dW2 + 2 * reg * W2, '
                                     '"b2": db2}\n')),
                            "two_layer_net_loss", "2·reg·W"),
    "L2 missing from the loss": (variant(("    loss = data_loss + 0.5 * reg * ((W1 * W1).sum() + (W2 * W2).sum())\n",
                                          "    loss = data_loss\n")),
                                 "two_layer_net_loss", "loss lacks the regularization term"),
    "biases regularized": (variant((NET_GRADS,
                                    '    grads = {"W1": dW1 + reg * W1, "b1": db1 + reg * b1, "W2": dW2 + reg * W2, '
                                    '"b2": db2}\n')),
                           "two_layer_net_loss", "biases are not regularized"),
    "ReLU gradient skipped in the net": (variant(("    dhidden = relu_backward(dactivated, cache_relu)\n",
                                                  "    dhidden = dactivated\n")),
                                         "two_layer_net_loss", "ReLU and the first linear layer"),
}


@pytest.mark.parametrize("name", MISTAKES)
def test_each_mistake_fails_visible_and_hidden_with_its_diagnosis(name: str, install) -> None:
    source, exercise, words = MISTAKES[name]
    run = install(source)
    visible, hidden = _failures(visible_properties(exercise), run), _failures(hidden_properties(exercise), run)
    assert any(words in m for m in visible), f"{name}: visible check says {visible}"
    assert any(words in m for m in hidden), f"{name}: hidden tests say {hidden}"
    def group(e: str) -> str:
        return GROUP.get(e, e.rsplit("_", 1)[0])

    spared = [e for e in CHECK_OF if group(e) != group(exercise)  # a backward's properties run its forward
              and exercise not in USED_BY.get(e, set())]
    for other in spared:  # a mistake costs no other exercise anything (but those built on the broken one)
        assert _failures(visible_properties(other), run) == [], f"{name} broke {other}"


def test_the_stub_fails_every_chapter_2_property_as_not_implemented(install) -> None:
    run = install(STUB)
    for exercise in CHAPTER_2:
        for prop in visible_properties(exercise) + hidden_properties(exercise):
            passed, message = evaluate(prop, run)
            assert not passed and "not implemented yet" in message, (prop.title, message)


def test_every_exercise_has_visible_and_hidden_properties() -> None:
    for exercise in CHAPTER_2:
        assert visible_properties(exercise), exercise
        assert len(hidden_properties(exercise)) >= 2, exercise


def test_dropout_statistics_judge_rejects_a_mask_far_from_one_minus_p(install) -> None:
    """The keep fraction is judged at six standard deviations: a mask that keeps 60 % when p = 0.3
    must fail, a correct one (any seed) must pass."""
    biased = variant((DROPOUT_KEEP, "    keep = torch.rand(x.shape, generator=generator) >= p + 0.1\n"))
    x = torch.randn(50, 40)
    x[x == 0] = 1.0
    assert not evaluate(dropout_train_statistics(x, 0.3, seed=1), install(biased))[0]
    run = install(REFERENCE)
    assert all(evaluate(dropout_train_statistics(x, 0.3, seed=s), run) == (True, "") for s in range(20))


def test_batch_norm_oracle_is_torchs_batch_norm() -> None:
    """The judges differentiate batch norm's definition (torch's own op is slow on a CPU): the two agree."""
    from exercises.checks.layers import _bn_oracle, batchnorm_inputs

    for n, d, eps, seed in ((8, 5, 1e-5, 1), (3, 4, 1e-2, 2)):
        x, gamma, beta, dout = batchnorm_inputs(n, d, seed=seed)
        leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]
        mine = _bn_oracle(eps)(*leaves)
        ours = torch.autograd.grad((mine * dout).sum(), leaves)
        leaves2 = [t.clone().requires_grad_() for t in (x, gamma, beta)]
        torch_out = torch.nn.functional.batch_norm(leaves2[0], None, None, leaves2[1], leaves2[2], training=True,
                                                   eps=eps)
        theirs = torch.autograd.grad((torch_out * dout).sum(), leaves2)
        torch.testing.assert_close(mine, torch_out, rtol=1e-10, atol=1e-12)
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


# ----------------------------------------------------------------------------- test-time, spatial and layer norms

SOLUTION = (PROJECT_ROOT / "solutions" / "layers.py").read_text(encoding="utf-8")


NORM_EXERCISES = ("batchnorm_running_update", "batchnorm_eval_forward", "batchnorm_eval_backward",
                  "spatial_batchnorm_forward", "spatial_batchnorm_backward", "layernorm_forward",
                  "layernorm_backward")

LN_VIA_BATCHNORM_FORWARD = """\
n = x.shape[0]
out_t, inner = batchnorm_forward(x.T.contiguous(), torch.ones(n, dtype=x.dtype), torch.zeros(n, dtype=x.dtype), eps)
xhat = out_t.T
return gamma * xhat + beta, (inner, xhat, gamma)
"""
LN_VIA_BATCHNORM_BACKWARD = """\
inner, xhat, gamma = cache
dx_t, _, _ = batchnorm_backward((dout * gamma).T.contiguous(), inner)
return dx_t.T, (dout * xhat).sum(dim=0), dout.sum(dim=0)
"""
SPATIAL_DIRECT_FORWARD = """\
mean = x.mean(dim=(0, 2, 3), keepdim=True)
var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
xhat = (x - mean) / torch.sqrt(var + eps)
return gamma.view(1, -1, 1, 1) * xhat + beta.view(1, -1, 1, 1), (xhat, gamma, var, eps)
"""
SPATIAL_DIRECT_BACKWARD = """\
xhat, gamma, var, eps = cache
m = dout.numel() // dout.shape[1]
g = dout * gamma.view(1, -1, 1, 1)
dx = (m * g - g.sum(dim=(0, 2, 3), keepdim=True)
      - xhat * (g * xhat).sum(dim=(0, 2, 3), keepdim=True)) / (m * torch.sqrt(var + eps))
return dx, (dout * xhat).sum(dim=(0, 2, 3)), dout.sum(dim=(0, 2, 3))
"""

NORM_CORRECT = {
    "running statistics written out, momentum as a step toward the batch": [
        ("batchnorm_running_update", """\
n = x.shape[0]
mean = x.sum(dim=0) / n
var = ((x - mean) ** 2).sum(dim=0) / (n - 1)
return running_mean + momentum * (mean - running_mean), running_var + momentum * (var - running_var)
""")],
    "test-time batch norm with sqrt and a cache of the inputs": [
        ("batchnorm_eval_forward", """\
out = (x - running_mean) / torch.sqrt(running_var + eps) * gamma + beta
return out, (x, gamma, running_mean, running_var, eps)
"""),
        ("batchnorm_eval_backward", """\
x, gamma, running_mean, running_var, eps = cache
std = torch.sqrt(running_var + eps)
return dout * gamma / std, (dout * (x - running_mean) / std).sum(dim=0), dout.sum(dim=0)
""")],
    "spatial batch norm written directly over (0, 2, 3)": [
        ("spatial_batchnorm_forward", SPATIAL_DIRECT_FORWARD), ("spatial_batchnorm_backward", SPATIAL_DIRECT_BACKWARD)],
    "spatial batch norm with the channels last through transpose(1, 3)": [
        ("spatial_batchnorm_forward", """\
N, C, H, W = x.shape
out, inner = batchnorm_forward(x.transpose(1, 3).reshape(-1, C), gamma, beta, eps)
return out.reshape(N, W, H, C).transpose(1, 3), (inner, x.shape)
"""),
        ("spatial_batchnorm_backward", """\
inner, (N, C, H, W) = cache
dx, dgamma, dbeta = batchnorm_backward(dout.transpose(1, 3).reshape(-1, C), inner)
return dx.reshape(N, W, H, C).transpose(1, 3), dgamma, dbeta
""")],
    "layer norm as batch norm of the transpose (CS231n's trick)": [
        ("layernorm_forward", LN_VIA_BATCHNORM_FORWARD), ("layernorm_backward", LN_VIA_BATCHNORM_BACKWARD)],
}

RUNNING = "var = x.var(dim=0, correction=1)  # unbiased, as torch stores it\n"
EVAL_LINES = "inv_std = (running_var + eps).rsqrt()\nxhat = (x - running_mean) * inv_std\n"

NORM_MISTAKES: dict[str, tuple[list[tuple[str, str]], str, str]] = {
    "running variance biased": ([("batchnorm_running_update", """\
mean = x.mean(dim=0)
var = x.var(dim=0, correction=0)
return (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var
""")], "batchnorm_running_update", "biased batch variance"),
    "momentum weighing the old statistics": ([("batchnorm_running_update", """\
mean, var = x.mean(dim=0), x.var(dim=0)
return momentum * running_mean + (1 - momentum) * mean, momentum * running_var + (1 - momentum) * var
""")], "batchnorm_running_update", "weighs the old statistics"),
    "running statistics updated in place": ([("batchnorm_running_update", """\
running_mean.mul_(1 - momentum).add_(momentum * x.mean(dim=0))
running_var.mul_(1 - momentum).add_(momentum * x.var(dim=0))
return running_mean, running_var
""")], "batchnorm_running_update", "in place"),
    "test time with the batch's statistics": ([("batchnorm_eval_forward", """\
mean, var = x.mean(dim=0), x.var(dim=0, correction=0)
inv_std = (var + eps).rsqrt()
xhat = (x - mean) * inv_std
return gamma * xhat + beta, (xhat, gamma, inv_std)
""")], "batchnorm_eval_forward", "the batch's own"),
    "test time dividing by the variance": ([("batchnorm_eval_forward", """\
inv_std = 1 / (running_var + eps)
xhat = (x - running_mean) * inv_std
return gamma * xhat + beta, (xhat, gamma, inv_std)
""")], "batchnorm_eval_forward", "divides by the variance"),
    "test-time backward with training mode's formula": ([("batchnorm_eval_backward", """\
xhat, gamma, inv_std = cache
n = dout.shape[0]
g = dout * gamma
dx = inv_std / n * (n * g - g.sum(dim=0) - xhat * (g * xhat).sum(dim=0))
return dx, (dout * xhat).sum(dim=0), dout.sum(dim=0)
""")], "batchnorm_eval_backward", "training mode's formula"),
    "test-time backward without gamma": ([("batchnorm_eval_backward", """\
xhat, gamma, inv_std = cache
return dout * inv_std, (dout * xhat).sum(dim=0), dout.sum(dim=0)
""")], "batchnorm_eval_backward", "lacks the factor γ"),
    "spatial batch norm reshaped without the permute": ([("spatial_batchnorm_forward", """\
N, C, H, W = x.shape
out, cache = batchnorm_forward(x.reshape(-1, C), gamma, beta, eps)
return out.reshape(N, C, H, W), (cache, (N, C, H, W))
""")], "spatial_batchnorm_forward", "mixes up the channels"),
    "spatial batch norm per pixel over the batch": ([("spatial_batchnorm_forward", """\
N, C, H, W = x.shape
out, cache = batchnorm_forward(x.reshape(N, C * H * W), gamma.repeat_interleave(H * W),
                               beta.repeat_interleave(H * W), eps)
return out.reshape(N, C, H, W), (cache, (N, C, H, W))
""")], "spatial_batchnorm_forward", "over the batch alone"),
    "spatial batch norm per image (instance norm)": ([("spatial_batchnorm_forward", """\
mean = x.mean(dim=(2, 3), keepdim=True)
var = x.var(dim=(2, 3), correction=0, keepdim=True)
out = gamma.view(1, -1, 1, 1) * (x - mean) / torch.sqrt(var + eps) + beta.view(1, -1, 1, 1)
return out, None
""")], "spatial_batchnorm_forward", "instance norm"),
    "spatial backward with dout reshaped without the permute": ([("spatial_batchnorm_backward", """\
inner, (N, C, H, W) = cache
dx, dgamma, dbeta = batchnorm_backward(dout.reshape(N * H * W, C), inner)
return dx.reshape(N, H, W, C).permute(0, 3, 1, 2), dgamma, dbeta
""")], "spatial_batchnorm_backward", "wrong layout"),
    "layer norm over the batch": ([("layernorm_forward", """\
centered = x - x.mean(dim=0)
inv_std = ((centered * centered).mean(dim=0) + eps).rsqrt()
xhat = centered * inv_std
return gamma * xhat + beta, (xhat, gamma, inv_std)
""")], "layernorm_forward", "that is batch norm"),
    "layer norm with the unbiased variance": ([("layernorm_forward", """\
centered = x - x.mean(dim=1, keepdim=True)
inv_std = (x.var(dim=1, keepdim=True) + eps).rsqrt()
xhat = centered * inv_std
return gamma * xhat + beta, (xhat, gamma, inv_std)
""")], "layernorm_forward", "unbiased variance"),
    "layer norm by torch": ([("layernorm_forward", """\
out = torch.nn.functional.layer_norm(x, (x.shape[1],), gamma, beta, eps)
return out, None
""")], "layernorm_forward", "must not use"),
    "layer norm backward summing over the batch": ([("layernorm_backward", """\
xhat, gamma, inv_std = cache
n = dout.shape[0]
g = dout * gamma
dx = inv_std / n * (n * g - g.sum(dim=0) - xhat * (g * xhat).sum(dim=0))
return dx, (dout * xhat).sum(dim=0), dout.sum(dim=0)
""")], "layernorm_backward", "run over the batch, as in batch norm"),
    "layer norm backward without the variance term": ([("layernorm_backward", """\
xhat, gamma, inv_std = cache
g = dout * gamma
return inv_std * (g - g.mean(dim=1, keepdim=True)), (dout * xhat).sum(dim=0), dout.sum(dim=0)
""")], "layernorm_backward", "through the variance"),
    "layer norm dgamma summed over the features": ([("layernorm_backward", """\
xhat, gamma, inv_std = cache
d = dout.shape[1]
g = dout * gamma
dx = inv_std / d * (d * g - g.sum(dim=1, keepdim=True) - xhat * (g * xhat).sum(dim=1, keepdim=True))
return dx, (dout * xhat).sum(dim=1), dout.sum(dim=1)
""")], "layernorm_backward", "sum over the batch (dim=0)"),
}


def _norm_source(changes: list[tuple[str, str]]) -> str:
    source = SOLUTION
    for function, body in changes:
        pattern_start = source.index(f"def {function}(")
        region = source.index("    ### BEGIN SOLUTION\n", pattern_start)
        end = source.index("    ### END SOLUTION\n", region) + len("    ### END SOLUTION\n")
        indented = "".join("    " + line + "\n" if line else "\n" for line in body.rstrip("\n").split("\n"))
        source = source[:region] + "    ### BEGIN SOLUTION\n" + indented + "    ### END SOLUTION\n" + source[end:]
    return strip_markers(source)


@pytest.mark.parametrize("name", NORM_CORRECT)
def test_correct_normalizations_pass_every_visible_and_hidden_property(name: str, install) -> None:
    run = install(_norm_source(NORM_CORRECT[name]))
    for exercise in NORM_EXERCISES:
        for prop in visible_properties(exercise) + hidden_properties(exercise):
            assert evaluate(prop, run) == (True, ""), f"{name}: {prop.exercise}: {prop.title}"


@pytest.mark.parametrize("name", NORM_MISTAKES)
def test_each_normalization_mistake_fails_visible_and_hidden_with_its_diagnosis(name: str, install) -> None:
    changes, exercise, words = NORM_MISTAKES[name]
    run = install(_norm_source(changes))
    visible, hidden = _failures(visible_properties(exercise), run), _failures(hidden_properties(exercise), run)
    assert any(words in m for m in visible), f"{name}: visible check says {visible}"
    assert any(words in m for m in hidden), f"{name}: hidden tests say {hidden}"
    for other in ("batchnorm_forward", "batchnorm_backward", "layernorm_forward", "batchnorm_running_update"):
        if other != exercise and not (other == "layernorm_forward" and exercise.startswith("layernorm")):
            assert _failures(visible_properties(other), run) == [], f"{name} broke {other}"


def test_spatial_batch_norm_oracle_is_torchs_batch_norm() -> None:
    """The spatial judges differentiate batch norm's definition (torch's op is slow in float64 on a CPU)."""
    from exercises.checks.layers import _spatial_manual, spatial_inputs

    x, gamma, beta, dout = spatial_inputs(3, 4, 5, 2, seed=3)
    leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]
    mine = _spatial_manual(*leaves, 1e-5)
    ours = torch.autograd.grad((mine * dout).sum(), leaves)
    leaves2 = [t.clone().requires_grad_() for t in (x, gamma, beta)]
    theirs_out = torch.nn.functional.batch_norm(leaves2[0], None, None, leaves2[1], leaves2[2], training=True)
    theirs = torch.autograd.grad((theirs_out * dout).sum(), leaves2)
    torch.testing.assert_close(mine, theirs_out, rtol=1e-10, atol=1e-12)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
