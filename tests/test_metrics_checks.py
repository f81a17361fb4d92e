"""The chapter 5 properties accept every correct implementation and name each realistic mistake.

Each variant is the reference ``solutions/metrics.py`` with one exercise's body replaced. The properties
run in-process here, exactly as the visible checks run them; test_metrics_grading.py runs the hidden
tests through the sandbox. The reference itself is also held to its oracles on many random inputs.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import exercises
from exercises.checks import CheckFailed, check, evaluate
from exercises.checks.metrics import (
    accuracy_check,
    bootstrap_accuracy_ci_check,
    bootstrap_limits,
    bootstrap_tolerance,
    confusion_matrix_check,
    ece_oracle,
    edge_probs,
    expected_calibration_error_check,
    extreme_probs,
    precision_recall_f1_check,
    top_k_accuracy_check,
    tta_predict_check,
)
from grading import PROJECT_ROOT
from grading.stubs import strip_markers
from tests.conftest import forget_module, module_installer, solution_with_body

SOLUTION = (PROJECT_ROOT / "solutions" / "metrics.py").read_text(encoding="utf-8")
REFERENCE = strip_markers(SOLUTION)
STUB = (PROJECT_ROOT / "exercises" / "metrics.py").read_text(encoding="utf-8")
CHECKS = {
    "accuracy": accuracy_check,
    "confusion_matrix": confusion_matrix_check,
    "precision_recall_f1": precision_recall_f1_check,
    "top_k_accuracy": top_k_accuracy_check,
    "expected_calibration_error": expected_calibration_error_check,
    "tta_predict": tta_predict_check,
    "bootstrap_accuracy_ci": bootstrap_accuracy_ci_check,
}


def with_body(function: str, body: str) -> str:
    """The reference with the solution region of ``function`` replaced by ``body``."""
    return solution_with_body(SOLUTION, function, body)


# Bodies of a precision_recall_f1 variant after its per-class p, r, f (float64, 0/0 → 0).
_PRF_HEAD = """
    m = cm.double()
    tp = m.diagonal()
    den_p, den_r = m.sum(0), m.sum(1)
    p = torch.where(den_p > 0, tp / den_p.clamp(min=1), torch.zeros_like(tp))
    r = torch.where(den_r > 0, tp / den_r.clamp(min=1), torch.zeros_like(tp))
    f = torch.where(p + r > 0, 2 * p * r / (p + r).clamp(min=1e-300), torch.zeros_like(tp))
"""
_PRF_TAIL = """
    if average is None:
        return p, r, f
    if average == "micro":
        v = (tp.sum() / m.sum()).item()
        return v, v, v
    if average == "macro":
        return p.mean().item(), r.mean().item(), f.mean().item()
    w = den_r / den_r.sum()
    return (w * p).sum().item(), (w * r).sum().item(), (w * f).sum().item()
"""


def _prf(head: str = _PRF_HEAD, tail: str = _PRF_TAIL) -> str:
    return textwrap.dedent(head) + textwrap.dedent(tail)


_ECE_LOOP = """
    conf, pred = probs.max(dim=1)
    conf, correct = conf.double(), (pred == labels).double()
    ece = 0.0
    for i in range(n_bins):
        lo, hi = i / n_bins, (i + 1) / n_bins
        mask = {mask}
        if mask.any():
            ece += mask.double().mean().item() * abs(correct[mask].mean().item() - conf[mask].mean().item())
    return ece
"""

_BOOT = """
    values = correct.double()
    n = len(values)
    idx = {draw}
    means = values[idx].mean(dim=1)
    lo, hi = torch.quantile(means, torch.tensor({quantiles}, dtype=torch.float64)).tolist()
    return lo, hi
"""
_WITH_REPLACEMENT = "torch.randint(0, n, (n_boot, n), generator=generator)"
_HALVED = "[alpha / 2, 1 - alpha / 2]"

_TTA = """
    model.eval()
    with torch.no_grad():
        a, b = model(x), model({flipped})
    return {combine}
"""


def _tta(flipped: str = "torch.flip(x, dims=(-1,))",
         combine: str = "(torch.softmax(a, dim=1) + torch.softmax(b, dim=1)) / 2") -> str:
    return _TTA.format(flipped=flipped, combine=combine)


CORRECT = {
    "accuracy": {
        "numpy": """
            import numpy as np
            preds = output.argmax(1) if output.ndim == 2 else output
            return float(np.mean(preds.cpu().numpy() == labels.cpu().numpy()))
        """,
        "float32 mean": """
            preds = output.max(dim=1).indices if output.dim() > 1 else output
            return (preds == labels).float().mean().item()
        """,
        "sum over len": """
            preds = output.argmax(dim=-1) if output.is_floating_point() else output
            return (preds == labels).sum().item() / len(labels)
        """,
    },
    "confusion_matrix": {
        "index_put_ with accumulate": """
            cm = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=labels.device)
            cm.index_put_((labels, preds), torch.ones_like(labels), accumulate=True)
            return cm
        """,
        "a Python loop": """
            cm = torch.zeros(num_classes, num_classes, dtype=torch.long)
            for t, p in zip(labels.tolist(), preds.tolist()):
                cm[t, p] += 1
            return cm.to(labels.device)
        """,
        "bincount of label·C + prediction": (
            "\n            return torch.bincount(labels * num_classes + preds, minlength=num_classes ** 2)"
            ".view(num_classes, num_classes)\n        "),
        "one-hot product": """
            eye = torch.eye(num_classes, dtype=torch.int64, device=labels.device)
            return eye[labels].T @ eye[preds]
        """,
    },
    "precision_recall_f1": {
        "float64 with where": _prf(),
        "float32 with nan_to_num": """
            m = cm.float()
            tp = m.diag()
            p = torch.nan_to_num(tp / m.sum(0))
            r = torch.nan_to_num(tp / m.sum(1))
            f = torch.nan_to_num(2 * p * r / (p + r))
            if average is None:
                return p, r, f
            if average == "micro":
                v = float(torch.nan_to_num(tp.sum() / m.sum()))
                return v, v, v
            if average == "macro":
                return float(p.mean()), float(r.mean()), float(f.mean())
            w = m.sum(1) / m.sum()
            return float((w * p).sum()), float((w * r).sum()), float((w * f).sum())
        """,
        "Python floats per class": """
            c = cm.shape[0]
            rows, cols, diag = cm.sum(1).tolist(), cm.sum(0).tolist(), cm.diagonal().tolist()
            p = [d / s if s else 0.0 for d, s in zip(diag, cols)]
            r = [d / s if s else 0.0 for d, s in zip(diag, rows)]
            f = [2 * a * b / (a + b) if a + b else 0.0 for a, b in zip(p, r)]
            if average is None:
                return tuple(torch.tensor(v, dtype=torch.float64) for v in (p, r, f))
            total = sum(rows)
            if average == "micro":
                v = sum(diag) / total if total else 0.0
                return v, v, v
            if average == "macro":
                return sum(p) / c, sum(r) / c, sum(f) / c
            return tuple(sum(x * s for x, s in zip(v, rows)) / total for v in (p, r, f))
        """,
    },
    "top_k_accuracy": {
        "topk with k clamped to C, hits over N": """
            top = torch.topk(logits, min(k, logits.size(-1)), dim=-1).indices
            return (top == labels.unsqueeze(-1)).sum().item() / labels.numel()
        """,
        "argsort (needs no clamp)": """
            order = logits.argsort(dim=1, descending=True)[:, :k]
            return (order == labels[:, None]).any(dim=1).float().mean().item()
        """,
        "rank of the label": """
            rank = (logits > logits.gather(1, labels[:, None])).sum(dim=1)
            return (rank < k).double().mean().item()
        """,
    },
    "expected_calibration_error": {
        "a loop over the bins": _ECE_LOOP.format(mask="((conf > lo) & (conf <= hi)) | ((conf == 0) & (i == 0))"),
        "ceil of conf·n, float32 means per bin": """
            conf, pred = probs.max(1)
            correct = (pred == labels).float()
            idx = (conf * n_bins).ceil().long().sub(1).clamp(0, n_bins - 1)
            ece = 0.0
            for b in range(n_bins):
                m = idx == b
                if m.any():
                    ece += m.float().mean().item() * abs(correct[m].mean().item() - conf[m].mean().item())
            return ece
        """,
        "bucketize and bincount": """
            conf, pred = probs.max(dim=1)
            conf, correct = conf.double(), (pred == labels).double()
            edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64, device=probs.device)
            idx = (torch.bucketize(conf, edges, right=False) - 1).clamp(0, n_bins - 1)
            count = torch.bincount(idx, minlength=n_bins).double()
            acc = torch.bincount(idx, weights=correct, minlength=n_bins)
            cs = torch.bincount(idx, weights=conf, minlength=n_bins)
            keep = count > 0
            gap = (acc[keep] / count[keep] - cs[keep] / count[keep]).abs()
            return float((count[keep] / len(labels) * gap).sum())
        """,
    },
    "tta_predict": {
        "the reference without restoring the mode": _tta(),
        "one batch of both": """
            model.eval()
            with torch.no_grad():
                p = torch.softmax(model(torch.cat([x, x.flip(-1)])), dim=1)
            return (p[: len(x)] + p[len(x):]) / 2
        """,
        "inference_mode and a stacked mean": """
            model.eval()
            with torch.inference_mode():
                return torch.stack([model(x).softmax(1), model(x.flip(3)).softmax(1)]).mean(0).clone()
        """,
    },
    "bootstrap_accuracy_ci": {
        "binomial shortcut": """
            n = len(correct)
            acc = correct.double().mean().item()
            hits = torch.binomial(torch.full((n_boot,), float(n), dtype=torch.float64),
                                  torch.full((n_boot,), acc, dtype=torch.float64), generator=generator)
            q = torch.quantile(hits / n, torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.float64))
            return q[0].item(), q[1].item()
        """,
        "NumPy, seeded from the generator": """
            import numpy as np
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
            values = correct.cpu().numpy()
            means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
            lo, hi = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
            return float(lo), float(hi)
        """,
        "sorted means, order statistics": """
            values = correct.double()
            n = len(values)
            means = torch.stack([values[torch.randint(0, n, (n,), generator=generator)].mean() for _ in range(n_boot)])
            means = means.sort().values
            lo = means[int(alpha / 2 * (n_boot - 1))]
            hi = means[int(round((1 - alpha / 2) * (n_boot - 1)))]
            return lo.item(), hi.item()
        """,
    },
}

MISTAKES = {  # exercise -> variant -> (body, words the diagnosis must contain)
    "accuracy": {
        "the count": ("""
            preds = output.argmax(1) if output.ndim == 2 else output
            return (preds == labels).sum().item()
        """, "number of correct predictions"),
        "the error rate": ("""
            preds = output.argmax(1) if output.ndim == 2 else output
            return (preds != labels).double().mean().item()
        """, "error rate"),
        "a tensor": ("""
            preds = output.argmax(1) if output.ndim == 2 else output
            return (preds == labels).float().mean()
        """, "return a Python float"),
        "logits compared with labels": ("""
            return (output == labels).double().mean().item()
        """, "output.argmax(dim=1)"),
        "always an argmax": ("""
            return (output.argmax(dim=1) == labels).double().mean().item()
        """, "already classes"),
    },
    "confusion_matrix": {
        "transposed": ("""
            return torch.bincount(preds * num_classes + labels, minlength=num_classes ** 2).reshape(num_classes, -1)
        """, "transposed"),
        "advanced-index +=": ("""
            cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
            cm[labels, preds] += 1
            return cm
        """, "counts a repeated (true, predicted) pair only once"),
        "float counts": ("""
            cm = torch.zeros(num_classes, num_classes)
            cm.index_put_((labels, preds), torch.ones(len(labels)), accumulate=True)
            return cm
        """, "int64 counts"),
        "sized from the data": ("""
            c = int(max(labels.max(), preds.max())) + 1
            return torch.bincount(labels * c + preds, minlength=c * c).reshape(c, c)
        """, "even when some classes never occur"),
    },
    "precision_recall_f1": {
        "precision and recall swapped": (_prf(_PRF_HEAD.replace("den_p, den_r = m.sum(0), m.sum(1)",
                                                                "den_p, den_r = m.sum(1), m.sum(0)")),
                                         "swapped"),
        "0/0 left as nan": (_prf("""
            m = cm.double()
            tp = m.diagonal()
            den_p, den_r = m.sum(0), m.sum(1)
            p, r = tp / den_p, tp / den_r
            f = 2 * p * r / (p + r)
        """), "must count as 0"),
        "macro F1 from macro P and R": (_prf(tail=_PRF_TAIL.replace(
            "return p.mean().item(), r.mean().item(), f.mean().item()",
            "mp, mr = p.mean().item(), r.mean().item()\n"
            "        return mp, mr, 2 * mp * mr / (mp + mr) if mp + mr else 0.0")),
            "mean of the per-class F1"),
        "macro over present classes": (_prf(tail=_PRF_TAIL.replace(
            "return p.mean().item(), r.mean().item(), f.mean().item()",
            "k = (den_p + den_r) > 0\n        return p[k].mean().item(), r[k].mean().item(), f[k].mean().item()")),
            "all C classes"),
        "weighted by predictions": (_prf(tail=_PRF_TAIL.replace("w = den_r / den_r.sum()", "w = den_p / den_p.sum()")),
                                    "support"),
        "micro as macro": (_prf(tail=_PRF_TAIL.replace(
            "v = (tp.sum() / m.sum()).item()\n        return v, v, v",
            "return p.mean().item(), r.mean().item(), f.mean().item()")), "micro pools"),
        "averages as tensors": (_prf(tail=_PRF_TAIL.replace(
            "return p.mean().item(), r.mean().item(), f.mean().item()",
            "return p.mean(), r.mean(), f.mean()")), "returned a tensor"),
    },
    "top_k_accuracy": {
        "topk without min(k, C)": ("""
            top = logits.topk(k, dim=1).indices
            return (top == labels[:, None]).any(dim=1).double().mean().item()
        """, "use min(k, C)"),
        "top-1 only": ("""
            return (logits.argmax(dim=1) == labels).double().mean().item()
        """, "gave the top-1 accuracy"),
        "k − 1": ("""
            k = min(k, logits.shape[1])
            top = logits.topk(max(k - 1, 1), dim=1).indices
            return (top == labels[:, None]).any(dim=1).double().mean().item()
        """, "off by one"),
        "smallest scores": ("""
            k = min(k, logits.shape[1])
            top = logits.topk(k, dim=1, largest=False).indices
            return (top == labels[:, None]).any(dim=1).double().mean().item()
        """, "k lowest scores"),
    },
    "expected_calibration_error": {
        "floor, left-closed bins": ("""
            conf, pred = probs.max(dim=1)
            conf, correct = conf.double(), (pred == labels).double()
            bins = (conf * n_bins).long().clamp(max=n_bins - 1)
            gap = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, correct - conf)
            return (gap.abs().sum() / len(labels)).item()
        """, "belongs to the bin below"),
        "floor without clamping": ("""
            conf, pred = probs.max(dim=1)
            conf, correct = conf.double(), (pred == labels).double()
            bins = (conf * n_bins).long()
            gap = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, correct - conf)
            return (gap.abs().sum() / len(labels)).item()
        """, "exactly 1"),
        "half-open [lo, hi) loop": (_ECE_LOOP.format(mask="(conf >= lo) & (conf < hi)"), "exactly 1"),
        "drops a confidence of 0": (_ECE_LOOP.format(mask="(conf > lo) & (conf <= hi)"), "exactly 0"),
        "empty bins give nan": ("""
            conf, pred = probs.max(dim=1)
            conf, correct = conf.double(), (pred == labels).double()
            total = torch.zeros((), dtype=torch.float64)
            for i in range(n_bins):
                m = ((conf > i / n_bins) & (conf <= (i + 1) / n_bins)) | ((conf == 0) & (i == 0))
                total = total + m.double().mean() * (correct[m].mean() - conf[m].mean()).abs()
            return total.item()
        """, "nan"),
        "unweighted mean over bins": (_ECE_LOOP.format(
            mask="((conf > lo) & (conf <= hi)) | ((conf == 0) & (i == 0))").replace(
            "ece += mask.double().mean().item() * abs(", "ece += 1 / n_bins * abs("), "weighted by its share"),
        "probability of the true class": ("""
            conf = probs.gather(1, labels[:, None])[:, 0].double()
            correct = (probs.argmax(dim=1) == labels).double()
            bins = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
            gap = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, bins, correct - conf)
            return (gap.abs().sum() / len(labels)).item()
        """, "not the probability of the true class"),
        "signed gaps": ("""
            conf, pred = probs.max(dim=1)
            conf, correct = conf.double(), (pred == labels).double()
            return ((correct - conf).sum() / len(labels)).item()
        """, "absolute gap"),
    },
    "tta_predict": {
        "no eval()": (_tta().replace("    model.eval()\n", ""), "training mode"),
        "gradients tracked": ("""
            model.eval()
            a, b = model(x), model(torch.flip(x, dims=(-1,)))
            return ((torch.softmax(a, dim=1) + torch.softmax(b, dim=1)) / 2).detach()
        """, "gradient tracking on"),
        "averaged logits": (_tta(combine="torch.softmax((a + b) / 2, dim=1)"), "averaged the logits"),
        "no softmax": (_tta(combine="(a + b) / 2"), "returned averaged logits"),
        "vertical flip": (_tta(flipped="torch.flip(x, dims=(-2,))"), "upside down"),
        "summed": (_tta(combine="torch.softmax(a, dim=1) + torch.softmax(b, dim=1)"), "summed"),
        "no flip": (_tta(flipped="x"), "did not mirror"),
        "softmax over the batch": (_tta(combine="(torch.softmax(a, dim=0) + torch.softmax(b, dim=0)) / 2"),
                                   "over the batch"),
    },
    "bootstrap_accuracy_ci": {
        "without replacement": (_BOOT.format(
            draw="torch.stack([torch.randperm(n, generator=generator) for _ in range(n_boot)])",
            quantiles=_HALVED), "without replacement"),
        "ignores alpha": (_BOOT.format(draw=_WITH_REPLACEMENT, quantiles="[0.025, 0.975]"), "did not shrink"),
        "alpha not halved": (_BOOT.format(draw=_WITH_REPLACEMENT, quantiles="[alpha, 1 - alpha]"),
                             "not alpha and 1 − alpha"),
        "global generator": (_BOOT.format(draw="torch.randint(0, n, (n_boot, n))", quantiles=_HALVED),
                             "two different intervals"),
        "sum, not mean": (_BOOT.format(draw=_WITH_REPLACEMENT, quantiles=_HALVED).replace(
            "means = values[idx].mean(dim=1)", "means = values[idx].sum(dim=1)"), "not its sum"),
        "(hi, lo)": (_BOOT.format(draw=_WITH_REPLACEMENT, quantiles=_HALVED).replace("return lo, hi", "return hi, lo"),
                     "return (lower, upper)"),
        "half-size resamples": (_BOOT.format(draw="torch.randint(0, n, (n_boot, n // 2), generator=generator)",
                                             quantiles=_HALVED), "too wide"),
    },
}


@pytest.fixture
def install(tmp_path: Path, monkeypatch):
    """Make ``exercises.metrics`` a file the test writes; return a runner for programs against it."""
    yield module_installer("metrics", tmp_path, monkeypatch)
    forget_module("metrics")


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
            assert not passed and f"{exercise} is not implemented yet" in message, (exercise, prop.title, message)


def test_given_validation_in_the_stub_rejects_bad_input() -> None:
    """The input checks are given code: they hold in the learner's stub as shipped."""
    namespace: dict = {}
    exec(compile(STUB, "exercises/metrics.py", "exec"), namespace)
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    bad = [
        ("accuracy", (logits, labels[:3]), "one entry per sample"),
        ("accuracy", (logits, torch.tensor([0, 1, 2, 3])), "in 0..2"),
        ("accuracy", (logits.argmax(1).float(), labels), "int64"),
        ("accuracy", (logits[:0], labels[:0]), "no samples"),
        ("confusion_matrix", (labels, labels, 0), "num_classes must be an int >= 1"),
        ("confusion_matrix", (labels, torch.tensor([0, 1, 2, 3]), 3), "in 0..2"),
        ("precision_recall_f1", (torch.ones(2, 3, dtype=torch.int64),), "square"),
        ("precision_recall_f1", (-torch.eye(3, dtype=torch.int64),), "non-negative"),
        ("precision_recall_f1", (torch.eye(3, dtype=torch.int64), "mean"), "'macro'"),
        ("top_k_accuracy", (logits, labels, 0), "k must be an int >= 1"),
        ("top_k_accuracy", (labels, labels, 1), "floating-point"),
        ("expected_calibration_error", (logits - 5, labels), "softmax"),
        ("expected_calibration_error", (torch.softmax(logits, 1), labels, 0), "n_bins must be an int >= 1"),
        ("tta_predict", (lambda x: x, torch.zeros(1, 1, 2, 2)), "torch.nn.Module"),
        ("tta_predict", (torch.nn.Flatten(), torch.zeros(2, 4)), "N×C×H×W"),
        ("bootstrap_accuracy_ci", (labels == 0,), None),
        ("bootstrap_accuracy_ci", (labels,), "bool"),
        ("bootstrap_accuracy_ci", (labels == 0, 10, 0.0), "0 < alpha < 1"),
        ("bootstrap_accuracy_ci", (labels == 0, 10, 0.1, 3), "torch.Generator"),
        ("bootstrap_accuracy_ci", (torch.zeros(0, dtype=torch.bool),), "no samples"),
    ]
    for function, args, words in bad:
        if words is None:  # valid input: reaches the learner's part
            with pytest.raises(NotImplementedError):
                namespace[function](*args)
            continue
        with pytest.raises(ValueError, match=re.escape(words)):
            namespace[function](*args)


@pytest.fixture
def learner_file(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(exercises, "__path__", [str(tmp_path), *exercises.__path__])
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.delitem(sys.modules, "exercises.metrics", raising=False)
    yield tmp_path / "metrics.py"
    sys.modules.pop("exercises.metrics", None)


def test_check_prints_each_property_and_rereads_the_file(learner_file: Path, capsys) -> None:
    learner_file.write_text(with_body("confusion_matrix", MISTAKES["confusion_matrix"]["transposed"][0]))
    with pytest.raises(CheckFailed, match="properties of 'confusion_matrix' failed"):
        check("confusion_matrix")
    assert "cm is transposed" in capsys.readouterr().out
    learner_file.write_text(REFERENCE + "\n# edited\n")
    assert check("confusion_matrix") is None  # passes without a value for the notebook to print
    out = capsys.readouterr().out
    assert out.count("✓") == len(confusion_matrix_check()) and "✗" not in out


def test_every_chapter_5_exercise_has_a_visible_check() -> None:
    from exercises.checks import available_checks

    assert set(CHECKS) <= set(available_checks())


# ----------------------------------------------------------------------------- the reference against its oracles


def _reference():
    namespace: dict = {}
    exec(compile(REFERENCE, "solutions/metrics.py", "exec"), namespace)
    return namespace


def test_reference_agrees_with_scikit_learn_on_random_inputs() -> None:
    from sklearn import metrics as sk

    ref = _reference()
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        c = int(torch.randint(2, 12, (1,), generator=g))
        n = int(torch.randint(1, 80, (1,), generator=g))
        logits = torch.randn(n, c, generator=g, dtype=torch.float64)
        labels = torch.randint(0, c, (n,), generator=g)
        if bool(torch.rand(1, generator=g) < 0.3):  # a class never present
            labels[labels == c - 1] = 0
        preds = logits.argmax(1)
        assert ref["accuracy"](logits, labels) == pytest.approx(sk.accuracy_score(labels, preds), abs=1e-12)
        assert ref["accuracy"](preds, labels) == pytest.approx(sk.accuracy_score(labels, preds), abs=1e-12)
        cm = ref["confusion_matrix"](preds, labels, c)
        assert np.array_equal(cm.numpy(), sk.confusion_matrix(labels, preds, labels=np.arange(c)))
        for average in (None, "macro", "micro", "weighted"):
            ours = ref["precision_recall_f1"](cm, average)
            theirs = sk.precision_recall_fscore_support(labels, preds, labels=np.arange(c), average=average,
                                                        zero_division=0)[:3]
            for a, b in zip(ours, theirs, strict=True):
                assert np.allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12), (average, a, b)
        for k in range(1, c + 3):
            want = 1.0 if k >= c else (sk.top_k_accuracy_score(labels, logits.numpy(), k=k, labels=np.arange(c))
                                       if c > 2 else sk.accuracy_score(labels, preds))
            assert ref["top_k_accuracy"](logits, labels, k) == pytest.approx(want, abs=1e-12)
        probs = torch.softmax(logits * 3, dim=1).float()
        for n_bins in (1, 4, 10, 15):
            assert ref["expected_calibration_error"](probs, labels, n_bins) == pytest.approx(
                ece_oracle(probs, labels, n_bins), abs=1e-9)


def test_reference_ece_on_the_edge_cases() -> None:
    ref = _reference()
    probs, labels = edge_probs()
    assert ref["expected_calibration_error"](probs, labels, 4) == pytest.approx(ece_oracle(probs, labels, 4), abs=1e-12)
    probs, labels = extreme_probs()
    assert ref["expected_calibration_error"](probs, labels, 10) == pytest.approx(ece_oracle(probs, labels, 10),
                                                                                 abs=1e-12)
    sure = torch.eye(3, dtype=torch.float64)
    assert ref["expected_calibration_error"](sure, torch.arange(3)) == 0.0
    assert ref["expected_calibration_error"](sure, torch.tensor([1, 2, 0])) == 1.0


def test_bootstrap_reference_matches_the_binomial_limits_and_covers() -> None:
    """The percentile interval's ends sit where the binomial quantiles say (within the tolerance the
    judges use), and a 90 % interval covers a known accuracy about 90 % of the time."""
    ref = _reference()
    for n, hits, alpha in ((50, 40, 0.05), (400, 380, 0.1), (1000, 500, 0.32)):
        correct = torch.zeros(n, dtype=torch.bool)
        correct[:hits] = True
        lo, hi = ref["bootstrap_accuracy_ci"](correct, 3000, alpha, torch.Generator().manual_seed(n))
        want_lo, want_hi = bootstrap_limits(n, hits, alpha)
        tol = bootstrap_tolerance(n, hits, alpha, 3000)
        assert abs(lo - want_lo) <= tol and abs(hi - want_hi) <= tol, (n, hits, alpha, lo, hi, want_lo, want_hi)
    g = torch.Generator().manual_seed(1)
    covered = 0
    for _ in range(100):
        correct = torch.rand(200, generator=g) < 0.7
        lo, hi = ref["bootstrap_accuracy_ci"](correct, 300, 0.1, g)
        covered += lo <= 0.7 <= hi
    assert 0.8 <= covered / 100 <= 0.98, covered


def test_tta_reference_restores_the_mode_and_builds_no_graph() -> None:
    from exercises.checks.metrics import FlipProbe

    ref = _reference()
    model = FlipProbe(1, 3, 4, 5, seed=0).train()
    x = torch.randn(2, 1, 3, 4, requires_grad=True)
    out = ref["tta_predict"](model, x)
    assert model.training and not out.requires_grad and model.calls == [(False, False), (False, False)]
    assert torch.allclose(out.sum(dim=1), torch.ones(2))


# ----------------------------------------------------------------------------- the hidden tests, in-process


def _hidden(exercise: str):
    from grading.suite import load_suite

    return [t for t in load_suite() if t.exercise == exercise]


def test_every_exercise_has_hidden_tests_and_the_reference_passes_them(install) -> None:
    run = install(REFERENCE)
    for exercise in CHECKS:
        tests = _hidden(exercise)
        assert len(tests) >= 4, exercise
        for test in tests:
            assert evaluate(test.build(), run) == (True, ""), test.name


@pytest.mark.parametrize("exercise", list(CORRECT))
def test_correct_implementations_pass_the_hidden_tests(exercise: str, install) -> None:
    for name, body in CORRECT[exercise].items():
        run = install(with_body(exercise, body))
        failed = [(t.name, m) for t in _hidden(exercise) for ok, m in [evaluate(t.build(), run)] if not ok]
        assert failed == [], f"{exercise}: {name}"


@pytest.mark.parametrize("exercise", list(MISTAKES))
def test_the_hidden_tests_catch_each_mistake_with_its_diagnosis(exercise: str, install) -> None:
    for name, (body, words) in MISTAKES[exercise].items():
        run = install(with_body(exercise, body))
        messages = [m for t in _hidden(exercise) for ok, m in [evaluate(t.build(), run)] if not ok]
        assert any(words in m for m in messages), f"{exercise}: '{name}': {messages}"
