"""Properties of the evaluation exercises in ``exercises.metrics`` (chapter 5), and their visible checks.

The judges compare with independent oracles: scikit-learn (``accuracy_score``, ``confusion_matrix``,
``precision_recall_fscore_support`` with ``zero_division=0``, ``top_k_accuracy_score``), NumPy in
float64 (the calibration error), torch itself (test-time augmentation) and, for the bootstrap, the
binomial distribution that a with-replacement resample of the mean of booleans follows. Each judge
also recomputes the answers of the usual mistakes, to name the one a wrong result matches.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from exercises.checks import (
    Mistake,
    Property,
    count_mismatches,
    expect_unchanged,
    explain_failure,
    register,
)
from exercises.checks.program import ImportFailed, Program, Ref, StepFailed, resolve

AVERAGES = (None, "macro", "micro", "weighted")

# ----------------------------------------------------------------------------- shared helpers


def attempt(target: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call ``exercises.<target>(*args, **kwargs)``; return ``{"value": result}``, or ``{"raised": error
    type, "message": ...}`` when it raised. Programs call it as ``"checks.metrics.attempt"`` where an
    error deserves a more specific diagnosis than its message (``torch.topk`` with ``k > C``)."""
    try:
        function = resolve(target)
    except ImportFailed as exc:
        return {"raised": "ImportFailed", "message": str(exc)}
    except AttributeError as exc:
        return {"raised": "AttributeError", "message": str(exc)}
    try:
        return {"value": function(*args, **kwargs)}
    except Exception as exc:
        return {"raised": type(exc).__name__, "message": str(exc)[:2000]}


def _unwrap(got: Any, target: str) -> tuple[Any, str | None]:
    """``(value, None)`` from what ``attempt`` returned, or ``(None, error type)`` when the call raised;
    an unimplemented or unimportable exercise becomes the usual diagnosis at once."""
    if not isinstance(got, dict) or not ("value" in got or "raised" in got):
        raise Mistake(f"could not call {target.rpartition('.')[2]} (got {type(got).__name__}).")
    if "value" in got:
        return got["value"], None
    error = str(got["raised"])
    if error in ("NotImplementedError", "ImportFailed", "AttributeError", "SystemExit"):
        raise Mistake(explain_failure(StepFailed(target, error, str(got.get("message", "")))))
    return None, error


def _raise_failure(got: dict[str, Any], target: str) -> None:
    """The ordinary diagnosis for an error ``attempt`` caught."""
    raise Mistake(explain_failure(StepFailed(target, str(got["raised"]), str(got.get("message", "")))))


def expect_number(value: Any, what: str) -> float:
    """``value`` must be a Python ``float`` (or ``int``): what the metric exercises return."""
    if isinstance(value, torch.Tensor):
        raise Mistake(f"{what} returned a tensor ({tuple(value.shape)}, {value.dtype}); return a Python float: "
                      "end with .item() (for example (preds == labels).double().mean().item()).")
    if type(value) not in (float, int):
        name = "a NumPy scalar or an object that could not be sent back" if isinstance(value, dict) else \
            type(value).__name__
        raise Mistake(f"{what} returned {name}; return a Python float (float(...) or tensor.item()).")
    number = float(value)
    if not math.isfinite(number):
        raise Mistake(f"{what} returned {number}: a metric here is always a finite number.")
    return number


def expect_sequence(value: Any, n: int, function: str, names: str) -> tuple[Any, ...]:
    """``value`` must be a tuple (or list) of ``n`` results."""
    if not isinstance(value, (tuple, list)) or len(value) != n:
        got = type(value).__name__ + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
        raise Mistake(f"{function} must return {n} values ({names}); it returned {got}.")
    return tuple(value)


def _close(a: float, b: float, tol: float = 1e-6) -> bool:
    """Equal up to float32 rounding: (count / N) computed in float32 is off by about 1e-8."""
    return abs(a - b) <= tol * max(1.0, abs(b))


def _describe(x: torch.Tensor) -> str:
    return f"{'×'.join(map(str, x.shape))} {str(x.dtype).removeprefix('torch.')}"


def _generator(p: Program, seed: int) -> Ref:
    """A ``torch.Generator`` seeded with ``seed``, made in the process that runs the program."""
    return p.method(p.call("torch.Generator"), "manual_seed", seed)


def _inputs_program(target: str, inputs: list[Any], via_attempt: bool = False, **kwargs: Any) -> Program:
    """Call ``metrics.<target>`` on copies of ``inputs``; fetch the result and every input afterwards."""
    p = Program()
    refs = [p.put(v.clone()) if isinstance(v, torch.Tensor) else p.put(v) for v in inputs]
    if via_attempt:
        result = p.call("checks.metrics.attempt", f"metrics.{target}", *refs, **kwargs)
    else:
        result = p.call(f"metrics.{target}", *refs, **kwargs)
    p.fetch(result=result)
    return p.fetch(**{f"in{i}": r for i, r in enumerate(refs)})


def _expect_inputs_unchanged(got: dict[str, Any], inputs: list[Any], names: list[str], function: str) -> None:
    for i, (value, name) in enumerate(zip(inputs, names, strict=True)):
        if isinstance(value, torch.Tensor):
            expect_unchanged(got[f"in{i}"], value, name, function)


def _raises_property(exercise: str, title: str, good: list[Any], bad: list[Any], advice: str,
                     good_kwargs: dict[str, Any] | None = None, bad_kwargs: dict[str, Any] | None = None) -> Property:
    """``exercise(*good)`` returns (it is implemented) and ``exercise(*bad)`` raises ``ValueError``."""
    p = Program()

    def put(v: Any) -> Any:
        return p.put(v.clone() if isinstance(v, torch.Tensor) else v)

    p.call(f"metrics.{exercise}", *[put(a) for a in good], **(good_kwargs or {}))
    p.fetch(result=p.raises(f"metrics.{exercise}", *[put(a) for a in bad], **(bad_kwargs or {})))

    def judge(got: dict[str, Any]) -> None:
        raised = got["result"]["raised"]
        if raised != "ValueError":
            did = "returned normally" if raised is None else f"raised {raised}"
            raise Mistake(f"{exercise} {did} on bad input; it must raise ValueError: {advice}")

    return Property(exercise, title, p, judge)


def random_logits(n: int, c: int, seed: int, dtype: torch.dtype = torch.float32, scale: float = 2.0) -> torch.Tensor:
    """``n×c`` logits without ties inside a row (so argmax and top-k are unambiguous)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=gen, dtype=torch.float64) * scale
    x = x + torch.arange(c, dtype=torch.float64) * 1e-3  # break any exact tie
    return x.to(dtype)


def random_labels(n: int, c: int, seed: int) -> torch.Tensor:
    return torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(seed))


def noisy_labels(logits: torch.Tensor, accuracy: float, seed: int) -> torch.Tensor:
    """Labels that agree with ``logits.argmax(1)`` on about ``accuracy`` of the samples."""
    gen = torch.Generator().manual_seed(seed)
    preds = logits.argmax(dim=1)
    other = (preds + torch.randint(1, logits.shape[1], preds.shape, generator=gen)) % logits.shape[1]
    return torch.where(torch.rand(preds.shape, generator=gen) < accuracy, preds, other)


# ----------------------------------------------------------------------------- accuracy


def _sk_accuracy(output: torch.Tensor, labels: torch.Tensor) -> float:
    from sklearn.metrics import accuracy_score

    predicted = output.numpy().argmax(axis=1) if output.dim() == 2 else output.numpy()
    return float(accuracy_score(labels.numpy(), predicted))


def accuracy_values(output: torch.Tensor, labels: torch.Tensor) -> Property:
    """``accuracy`` equals scikit-learn's ``accuracy_score`` of the argmax (for ``N×C`` scores) or of the
    labels themselves (for ``N`` predicted labels); inputs unchanged."""
    kind = "logits" if output.ndim == 2 else "predicted labels"

    def judge(got: dict[str, Any]) -> None:
        value, error = _unwrap(got["result"], "metrics.accuracy")
        if error is not None:
            message = str(got["result"].get("message", ""))[:300]
            if output.ndim == 2:
                raise Mistake(f"accuracy raised {error} on N×C logits ({message}): the prediction for each sample is "
                              "the class with the largest score, output.argmax(dim=1); compare that with labels.")
            raise Mistake(f"accuracy raised {error} on N predicted labels ({message}): they are already classes, so "
                          "compare them with labels directly; take an argmax only when output is 2-D (N×C).")
        value = expect_number(value, "accuracy")
        expected = _sk_accuracy(output, labels)
        n = len(labels)
        if not _close(value, expected):
            if n > 1 and _close(value, expected * n):
                raise Mistake("accuracy returned the number of correct predictions; divide by N for the fraction.")
            if _close(value, 1 - expected) and not _close(expected, 0.5):
                raise Mistake("accuracy returned the error rate 1 − accuracy: count the predictions that are equal "
                              "to the labels.")
            if output.ndim == 2:
                raise Mistake("accuracy on N×C logits differs from the fraction of samples whose argmax over the "
                              "classes (output.argmax(dim=1)) equals the label.")
            raise Mistake("accuracy on N predicted labels differs from the fraction equal to the labels: compare "
                          "them directly (no argmax: they are already classes).")
        _expect_inputs_unchanged(got, [output, labels], ["output", "labels"], "accuracy")

    return Property("accuracy", f"equals scikit-learn on {kind} ({_describe(output)})",
                    _inputs_program("accuracy", [output, labels], via_attempt=True), judge)


def accuracy_rejects_mismatch(output: torch.Tensor, labels: torch.Tensor) -> Property:
    return _raises_property("accuracy", "one label per sample, or ValueError", [output, labels],
                            [output, labels[:-1]], "keep the given input checks (one label per row of output).")


@register("accuracy")
def accuracy_check() -> list[Property]:
    """The visible check for ``accuracy``."""
    logits = random_logits(40, 5, seed=1)
    labels = noisy_labels(logits, 0.7, seed=2)
    preds = random_labels(12, 3, seed=3)
    return [
        accuracy_values(logits, labels),
        accuracy_values(preds, random_labels(12, 3, seed=4)),
        accuracy_values(logits.double(), logits.argmax(dim=1)),
        accuracy_rejects_mismatch(logits, labels),
    ]


# ----------------------------------------------------------------------------- confusion_matrix


def _sk_confusion(preds: torch.Tensor, labels: torch.Tensor, c: int) -> torch.Tensor:
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    return torch.from_numpy(sk_confusion_matrix(labels.numpy(), preds.numpy(), labels=np.arange(c))).long()


def confusion_matrix_values(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> Property:
    """``cm[i, j]`` counts true class ``i`` predicted as ``j`` (scikit-learn's ``confusion_matrix`` with
    ``labels=range(C)``): ``int64``, ``C×C``, every sample counted once; inputs unchanged."""
    present = sorted(set(labels.tolist()) | set(preds.tolist()))
    missing = num_classes - len(present)

    def judge(got: dict[str, Any]) -> None:
        cm = got["result"]
        if not isinstance(cm, torch.Tensor):
            raise Mistake(f"confusion_matrix must return a torch.Tensor; got {type(cm).__name__}.")
        c = num_classes
        if tuple(cm.shape) != (c, c):
            if cm.ndim == 2 and cm.shape[0] == cm.shape[1] < c:
                raise Mistake(f"cm has shape {tuple(cm.shape)}: it must be C×C with C = num_classes ({c}) even when "
                              "some classes never occur (in preds or labels); size it from num_classes.")
            raise Mistake(f"cm has shape {tuple(cm.shape)}; expected {c}×{c} (num_classes × num_classes).")
        if cm.dtype != torch.int64:
            raise Mistake(f"cm has dtype {cm.dtype}; it must hold int64 counts (torch.zeros(C, C) is float: pass "
                          "dtype=torch.int64, or use torch.bincount, which counts in int64).")
        expected = _sk_confusion(preds, labels, c)
        if torch.equal(cm, expected):
            _expect_inputs_unchanged(got, [preds, labels], ["preds", "labels"], "confusion_matrix")
            return
        if torch.equal(cm, expected.T):
            raise Mistake("cm is transposed: rows must be the true class and columns the predicted class "
                          "(scikit-learn's convention), cm[labels[n], preds[n]] += 1. Note the argument order: "
                          "confusion_matrix(preds, labels, ...), unlike sklearn's (y_true, y_pred).")
        total = int(cm.sum())
        if total != len(labels):
            hint = (" `cm[labels, preds] += 1` counts a repeated (true, predicted) pair only once: use "
                    "cm.index_put_((labels, preds), torch.ones_like(labels), accumulate=True) or torch.bincount."
                    if total < len(labels) else "")
            raise Mistake(f"cm.sum() is {total} but there are {len(labels)} samples: each sample must be counted "
                          f"exactly once.{hint}")
        raise Mistake(f"cm differs from the counts at {int((cm != expected).sum())} of {c * c} cells "
                      "(rows: true class, columns: predicted class).")

    title = f"equals scikit-learn for N = {len(labels)}, C = {num_classes}"
    if missing:
        title += f" ({missing} class{'es' if missing > 1 else ''} never occurring)"
    return Property("confusion_matrix", title, _inputs_program("confusion_matrix", [preds, labels, num_classes]), judge)


def confusion_matrix_rejects_out_of_range(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> Property:
    bad = labels.clone()
    bad[0] = num_classes
    return _raises_property("confusion_matrix", "a label of C or more raises ValueError", [preds, labels, num_classes],
                            [preds, bad, num_classes], "keep the given input checks (labels in 0..C-1).")


@register("confusion_matrix")
def confusion_matrix_check() -> list[Property]:
    """The visible check for ``confusion_matrix``."""
    labels = random_labels(60, 4, seed=11)
    preds = torch.where(torch.rand(60, generator=torch.Generator().manual_seed(12)) < 0.6, labels,
                        random_labels(60, 4, seed=13))
    few = torch.tensor([0, 0, 1, 3, 3, 3])  # classes 2 and 4 never occur; (0, 0) and (3, 3) repeat
    return [
        confusion_matrix_values(preds, labels, 4),
        confusion_matrix_values(torch.tensor([0, 1, 1, 3, 0, 3]), few, 5),
        confusion_matrix_rejects_out_of_range(preds, labels, 4),
    ]


# ----------------------------------------------------------------------------- precision_recall_f1


def _expand(cm: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)`` whose confusion matrix is ``cm``: what scikit-learn takes."""
    counts = cm.long().numpy()
    c = counts.shape[0]
    true = np.repeat(np.repeat(np.arange(c), c), counts.ravel())
    pred = np.repeat(np.tile(np.arange(c), c), counts.ravel())
    return true, pred


def _sk_prf(cm: torch.Tensor, average: str | None) -> tuple[Any, Any, Any]:
    from sklearn.metrics import precision_recall_fscore_support

    true, pred = _expand(cm)
    p, r, f, _ = precision_recall_fscore_support(true, pred, labels=np.arange(cm.shape[0]), average=average,
                                                 zero_division=0)
    if average is None:
        return tuple(torch.from_numpy(np.asarray(v, dtype=np.float64)) for v in (p, r, f))  # type: ignore[return-value]
    return float(p), float(r), float(f)


def _per_class(cm: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-class counts (float64) the mistakes below are built from."""
    m = cm.double()
    tp = m.diagonal()

    def div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(b > 0, a / torch.where(b > 0, b, torch.ones_like(b)), torch.zeros_like(a))

    pred, support = m.sum(dim=0), m.sum(dim=1)
    p, r = div(tp, pred), div(tp, support)
    return {"tp": tp, "pred": pred, "support": support, "p": p, "r": r, "f": div(2 * p * r, p + r)}


def _candidates(cm: torch.Tensor, average: str | None) -> list[tuple[tuple[Any, Any, Any], str]]:
    """Answers of the usual mistakes, each with its diagnosis."""
    k = _per_class(cm)
    p, r, f = k["p"], k["r"], k["f"]
    swapped = "precision and recall are swapped: precision divides tp by the column sum (everything predicted as c), " \
              "recall by the row sum (everything that truly is c); rows are the true class."
    if average is None:
        return [((r, p, f), swapped)]
    present = (k["support"] + k["pred"]) > 0
    out: list[tuple[tuple[Any, Any, Any], str]] = [
        ((r.mean().item(), p.mean().item(), f.mean().item()), swapped),
    ]
    if average == "macro":
        mp, mr = p.mean().item(), r.mean().item()
        out.append(((mp, mr, 2 * mp * mr / (mp + mr) if mp + mr > 0 else 0.0),
                    "macro F1 is the mean of the per-class F1 scores (as scikit-learn computes it), not the F1 of "
                    "the macro precision and macro recall."))
        if bool(present.any()) and not bool(present.all()):
            out.append(((p[present].mean().item(), r[present].mean().item(), f[present].mean().item()),
                        "macro averages over all C classes: a class that never occurs counts, with 0 (0/0 → 0)."))
    if average == "weighted":
        for weights, words in ((k["pred"], "the column sums (how often c was predicted)"), (None, "equal weights")):
            w = torch.full_like(p, 1 / len(p)) if weights is None else weights / weights.sum().clamp(min=1)
            out.append((((w * p).sum().item(), (w * r).sum().item(), (w * f).sum().item()),
                        f"weighted averages weight each class by its support, the row sum of cm (how many samples "
                        f"truly belong to it), not by {words}."))
    if average == "micro":
        out.append(((p.mean().item(), r.mean().item(), f.mean().item()),
                    "micro pools the counts of all classes: precision = recall = F1 = Σ_c tp_c / Σ cm "
                    "(macro takes the mean of the per-class values instead)."))
    return out


def _prf_off(got: tuple[Any, Any, Any], expected: tuple[Any, Any, Any]) -> list[str]:
    """Which of precision, recall, F1 differ (tolerance 1e-6 relative, for float32 arithmetic)."""
    wrong = []
    for name, a, b in zip(("precision", "recall", "f1"), got, expected, strict=True):
        if isinstance(b, torch.Tensor):
            if count_mismatches(a, b, atol=1e-7, rtol=1e-6):
                wrong.append(name)
        elif not abs(float(a) - b) <= 1e-7 + 1e-6 * abs(b):
            wrong.append(name)
    return wrong


def prf_values(cm: torch.Tensor, average: str | None) -> Property:
    """``precision_recall_f1(cm, average)`` equals scikit-learn's ``precision_recall_fscore_support`` with
    ``zero_division=0`` and ``labels=range(C)``; ``cm`` unchanged."""
    c = cm.shape[0]
    kinds = []
    if bool((cm.sum(dim=0) == 0).any()):
        kinds.append("a class never predicted")
    if bool((cm.sum(dim=1) == 0).any()):
        kinds.append("a class never present")
    p = Program()
    ref = p.put(cm.clone())
    p.fetch(result=p.call("metrics.precision_recall_f1", ref, average=average), cm_after=ref)

    def judge(got: dict[str, Any]) -> None:
        result = expect_sequence(got["result"], 3, "precision_recall_f1", "precision, recall, f1")
        if average is None:
            for name, value in zip(("precision", "recall", "f1"), result, strict=True):
                if not isinstance(value, torch.Tensor):
                    raise Mistake(f"with average=None, {name} must be a tensor of one value per class; got "
                                  f"{type(value).__name__}.")
                if tuple(value.shape) != (c,):
                    raise Mistake(f"with average=None, {name} must have shape ({c},), one value per class; got "
                                  f"{tuple(value.shape)}.")
                if not value.is_floating_point():
                    raise Mistake(f"{name} has dtype {value.dtype}: ratios need a floating-point dtype "
                                  "(convert the counts with .double() before dividing).")
                if bool(torch.isnan(value).any()):
                    raise Mistake(f"{name} holds nan: a 0/0 (a class never predicted, or never present) must count "
                                  "as 0, e.g. torch.where(den > 0, num / den, 0).")
        else:
            if any(isinstance(v, float) and math.isnan(v) for v in result):
                raise Mistake(f"with average={average!r} the result holds nan: a 0/0 (a class never predicted, or "
                              "never present) must count as 0 before averaging, "
                              "e.g. torch.where(den > 0, num / den, 0).")
            result = tuple(expect_number(v, f"precision_recall_f1 with average={average!r}") for v in result)
        expected = _sk_prf(cm, average)
        wrong = _prf_off(result, expected)
        if not wrong:
            expect_unchanged(got["cm_after"], cm, "cm", "precision_recall_f1")
            return
        for answer, diagnosis in _candidates(cm, average):
            if not _prf_off(result, answer):
                raise Mistake(diagnosis)
        what = "per class" if average is None else f"with average={average!r}"
        raise Mistake(f"{', '.join(wrong)} {what} differ{'s' if len(wrong) == 1 else ''} from scikit-learn's "
                      "precision_recall_fscore_support(zero_division=0).")

    title = f"equals scikit-learn with average={average!r}, C = {c}"
    if kinds:
        title += f" ({' and '.join(kinds)})"
    return Property("precision_recall_f1", title, p, judge)


def prf_rejects_bad_average(cm: torch.Tensor) -> Property:
    return _raises_property("precision_recall_f1", "an unknown average raises ValueError", [cm], [cm],
                            "keep the given input checks (average is None, 'macro', 'micro' or 'weighted').",
                            bad_kwargs={"average": "binary"})


def confusion_from(preds: torch.Tensor, labels: torch.Tensor, c: int) -> torch.Tensor:
    """The test inputs' confusion matrix, counted with NumPy."""
    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (labels.numpy(), preds.numpy()), 1)
    return torch.from_numpy(cm)


def edge_confusion() -> torch.Tensor:
    """Class 1 is never predicted, class 3 never present, class 4 neither."""
    return torch.tensor([[5, 0, 1, 2, 0],
                         [2, 0, 3, 0, 0],
                         [1, 0, 4, 1, 0],
                         [0, 0, 0, 0, 0],
                         [0, 0, 0, 0, 0]])


@register("precision_recall_f1")
def precision_recall_f1_check() -> list[Property]:
    """The visible check for ``precision_recall_f1``."""
    labels = random_labels(80, 4, seed=21)
    preds = torch.where(torch.rand(80, generator=torch.Generator().manual_seed(22)) < 0.5, labels,
                        random_labels(80, 4, seed=23))
    cm = confusion_from(preds, labels, 4)
    return [
        *(prf_values(cm, average) for average in AVERAGES),
        *(prf_values(edge_confusion(), average) for average in AVERAGES),
        prf_rejects_bad_average(cm),
    ]


# ----------------------------------------------------------------------------- top_k_accuracy


def topk_oracle(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """scikit-learn's ``top_k_accuracy_score`` (which needs ``k < C`` and ``C >= 3``); 1 for ``k >= C``."""
    c = logits.shape[1]
    if k >= c:
        return 1.0
    if c < 3:  # k == 1 here: the accuracy
        return _sk_accuracy(logits, labels)
    from sklearn.metrics import top_k_accuracy_score

    return float(top_k_accuracy_score(labels.numpy(), logits.double().numpy(), k=k, labels=np.arange(c)))


def _topk_by_rank(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """The fraction of labels ranked (from 0, best first) below ``k``: for the off-by-one candidates."""
    rank = (logits > logits.gather(1, labels[:, None])).sum(dim=1)
    return float((rank < k).double().mean()) if k > 0 else 0.0


def topk_values(logits: torch.Tensor, labels: torch.Tensor, k: int) -> Property:
    """``top_k_accuracy`` equals scikit-learn's ``top_k_accuracy_score`` (1 for ``k >= C``); inputs unchanged."""
    c = logits.shape[1]
    target = "metrics.top_k_accuracy"

    def judge(got: dict[str, Any]) -> None:
        value, error = _unwrap(got["result"], target)
        if error is not None:
            if k > c and error in ("RuntimeError", "IndexError"):
                raise Mistake(f"top_k_accuracy raised {error} for k = {k} > C = {c} classes (torch.topk cannot pick "
                              "more than C): use min(k, C). With k >= C every class is in the top k, so the result "
                              "is 1.")
            _raise_failure(got["result"], target)
        value = expect_number(value, "top_k_accuracy")
        expected = topk_oracle(logits, labels, k)
        if _close(value, expected):
            _expect_inputs_unchanged(got, [logits, labels], ["logits", "labels"], "top_k_accuracy")
            return
        k_eff = min(k, c)
        if k > 1 and _close(value, _topk_by_rank(logits, labels, 1)):
            raise Mistake(f"top_k_accuracy with k = {k} gave the top-1 accuracy: count a sample as correct when its "
                          "label is anywhere among its k highest scores (logits.topk(k, dim=1).indices).")
        if _close(value, _topk_by_rank(logits, labels, k_eff - 1)):
            raise Mistake("top_k_accuracy is off by one: it counts only the k − 1 highest scores.")
        if _close(value, _topk_by_rank(logits, labels, k_eff + 1)):
            raise Mistake("top_k_accuracy is off by one: it counts the k + 1 highest scores.")
        if _close(value, _topk_by_rank(-logits, labels, k_eff)):
            raise Mistake("top_k_accuracy took the k lowest scores: the top k are the largest "
                          "(torch.topk's largest=True, or argsort descending).")
        raise Mistake(f"top_k_accuracy with k = {k} differs from the fraction of samples whose label is among their "
                      "k highest scores.")

    if k > c:
        title = f"k = {k} larger than C = {c} gives 1"
    elif k == c:
        title = f"k = C = {c} gives 1"
    else:
        title = f"equals scikit-learn for k = {k}, C = {c} ({_describe(logits)})"
    return Property("top_k_accuracy", title, _inputs_program("top_k_accuracy", [logits, labels, k], via_attempt=True),
                    judge)


def topk_rejects_bad_k(logits: torch.Tensor, labels: torch.Tensor) -> Property:
    return _raises_property("top_k_accuracy", "k = 0 raises ValueError", [logits, labels, 1], [logits, labels, 0],
                            "keep the given input checks (k is an int >= 1).")


@register("top_k_accuracy")
def top_k_accuracy_check() -> list[Property]:
    """The visible check for ``top_k_accuracy``."""
    logits = random_logits(50, 6, seed=31)
    labels = noisy_labels(logits, 0.4, seed=32)
    return [
        topk_values(logits, labels, 1),
        topk_values(logits, labels, 3),
        topk_values(logits, labels, 6),
        topk_values(logits, labels, 10),
        topk_rejects_bad_k(logits, labels),
    ]


# ----------------------------------------------------------------------------- expected_calibration_error


def ece_oracle(probs: torch.Tensor, labels: torch.Tensor, n_bins: int, *, confidence: str = "top",
               edges: str = "right", weights: str = "samples", keep_zero: bool = True, keep_one: bool = True,
               absolute: bool = True) -> float:
    """The ECE in NumPy float64, and (through the keyword arguments) the usual ways to get it wrong."""
    p = probs.double().numpy()
    y = labels.numpy()
    pred = p.argmax(axis=1)
    conf = p.max(axis=1) if confidence == "top" else p[np.arange(len(y)), y]
    correct = (pred == y).astype(np.float64)
    bounds = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    if edges == "right":  # bin i holds (i/n, (i+1)/n]; 0 goes to bin 0
        index = np.clip(np.searchsorted(bounds, conf, side="left") - 1, 0, n_bins - 1)
    else:  # [i/n, (i+1)/n), with 1 in the last bin
        index = np.clip(np.searchsorted(bounds, conf, side="right") - 1, 0, n_bins - 1)
    keep = np.ones(len(y), dtype=bool)
    if not keep_zero:
        keep &= conf > 0
    if not keep_one:
        keep &= conf < 1
    total, gaps = 0.0, []
    for b in range(n_bins):
        member = keep & (index == b)
        if not member.any():
            continue
        gap = correct[member].mean() - conf[member].mean()
        gap = abs(gap) if absolute else gap
        gaps.append(gap)
        total += (member.sum() / len(y) if weights == "samples" else 1 / n_bins) * gap
    if weights == "nonempty":
        return float(np.mean(gaps)) if gaps else 0.0
    return float(total)


_ECE_MISTAKES = (
    ({"confidence": "true"}, "the confidence is the top probability max_c probs[n, c] (the predicted class's), not "
                             "the probability of the true class."),
    ({"weights": "nonempty"}, "each bin's gap must be weighted by its share of the samples, |b| / N: you took the "
                              "plain mean over the non-empty bins."),
    ({"weights": "bins"}, "each bin's gap must be weighted by its share of the samples, |b| / N, not by 1 / n_bins."),
    ({"absolute": False}, "take the absolute gap |accuracy(b) − confidence(b)| in each bin: signed gaps cancel out."),
    ({"edges": "left"}, "a confidence exactly on a bin edge i/n belongs to the bin below it: bin i holds "
                        "(i/n, (i+1)/n], for example index = ceil(conf · n) − 1 (clamped at 0), or "
                        "lower < conf <= upper."),
    ({"keep_zero": False}, "a confidence of exactly 0 must be counted, in the first bin (lower < conf leaves it "
                           "out of every bin)."),
    ({"keep_one": False}, "a confidence of exactly 1 must be counted, in the last bin: floor(conf · n) puts it in a "
                          "bin n that does not exist."),
)


def ece_values(probs: torch.Tensor, labels: torch.Tensor, n_bins: int | None, title: str = "") -> Property:
    """``expected_calibration_error`` equals a NumPy float64 computation of the contract; inputs unchanged."""
    bins = 15 if n_bins is None else n_bins
    target = "metrics.expected_calibration_error"
    kwargs = {} if n_bins is None else {"n_bins": n_bins}

    def judge(got: dict[str, Any]) -> None:
        value, error = _unwrap(got["result"], target)
        conf = probs.max(dim=1).values
        if error is not None:
            if error in ("IndexError", "RuntimeError") and bool((conf == 1).any()):
                raise Mistake(f"expected_calibration_error raised {error}: {_ECE_MISTAKES[-1][1]}")
            _raise_failure(got["result"], target)
        if isinstance(value, float) and math.isnan(value):
            raise Mistake("expected_calibration_error returned nan: an empty bin's mean is 0/0. Skip empty bins "
                          "(they contribute 0, since |b| / N = 0).")
        value = expect_number(value, "expected_calibration_error")
        expected = ece_oracle(probs, labels, bins)
        tol = 1e-6  # float32 arithmetic on the way (a float32 mean per bin) is correct too, even on float64 input
        if abs(value - expected) <= tol:
            _expect_inputs_unchanged(got, [probs, labels], ["probs", "labels"], "expected_calibration_error")
            return
        for options, diagnosis in _ECE_MISTAKES:
            candidate = ece_oracle(probs, labels, bins, **options)
            if abs(candidate - expected) > tol and abs(value - candidate) <= tol:
                raise Mistake(diagnosis)
        raise Mistake(f"expected_calibration_error differs from Σ_b (|b| / N)·|accuracy(b) − confidence(b)| over "
                      f"{bins} equal-width bins.")

    what = title or f"equals the contract's ECE for N = {len(labels)}, {bins} bins ({_describe(probs)})"
    return Property("expected_calibration_error", what,
                    _inputs_program("expected_calibration_error", [probs, labels], via_attempt=True, **kwargs), judge)


def ece_rejects_logits(logits: torch.Tensor, labels: torch.Tensor) -> Property:
    return _raises_property("expected_calibration_error", "logits instead of probabilities raise ValueError",
                            [torch.softmax(logits, dim=1), labels], [logits, labels],
                            "keep the given input checks (probabilities in [0, 1]).")


def softmax_probs(n: int, c: int, seed: int, scale: float = 2.0, dtype: torch.dtype = torch.float32,
                  n_bins: int = 15) -> torch.Tensor:
    """Softmax of random logits, nudged so that no confidence lies within 1e-6 of a bin edge."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=gen, dtype=torch.float64) * scale
    probs = torch.softmax(logits, dim=1)
    conf = probs.max(dim=1).values
    near = ((conf * n_bins - torch.round(conf * n_bins)).abs() < 1e-5).any()
    if bool(near):
        return softmax_probs(n, c, seed + 1000, scale, dtype, n_bins)
    return probs.to(dtype)


def edge_probs() -> tuple[torch.Tensor, torch.Tensor]:
    """Eight-class probabilities whose top values sit exactly on the edges of 4 bins (0.25, 0.5, 0.75, 1)
    or inside them, with labels chosen so that every wrong bin assignment changes the ECE."""
    rows = {
        0.25: [0.25] + [0.125] * 6 + [0.0],
        0.5: [0.5, 0.125, 0.125, 0.125, 0.125, 0.0, 0.0, 0.0],
        0.75: [0.75, 0.125, 0.125, 0.0, 0.0, 0.0, 0.0, 0.0],
        1.0: [1.0] + [0.0] * 7,
        0.375: [0.375, 0.25, 0.125, 0.125, 0.125, 0.0, 0.0, 0.0],
        0.625: [0.625, 0.125, 0.125, 0.125, 0.0, 0.0, 0.0, 0.0],
        0.875: [0.875, 0.125] + [0.0] * 6,
    }
    layout = [(0.25, 0), (0.25, 3), (0.5, 0), (0.5, 0), (0.5, 2), (0.75, 1), (0.75, 0), (1.0, 0), (1.0, 5),
              (0.375, 1), (0.625, 0), (0.625, 0), (0.875, 0), (0.875, 0), (0.875, 4)]
    probs = torch.tensor([rows[c] for c, _ in layout], dtype=torch.float32)
    labels = torch.tensor([y for _, y in layout])
    return probs, labels


def extreme_probs() -> tuple[torch.Tensor, torch.Tensor]:
    """Confidences of exactly 1 (one-hot rows) and exactly 0 (all-zero rows) beside ordinary ones."""
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0],
                          [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0, 2, 0, 1, 0, 2])
    return probs, labels


@register("expected_calibration_error")
def expected_calibration_error_check() -> list[Property]:
    """The visible check for ``expected_calibration_error``."""
    probs = softmax_probs(200, 5, seed=41)
    labels = noisy_labels(probs, 0.6, seed=42)
    edge, edge_labels = edge_probs()
    extreme, extreme_labels = extreme_probs()
    few = softmax_probs(3, 4, seed=43, scale=3.0)
    return [
        ece_values(probs, labels, None),
        ece_values(few, torch.tensor([0, 1, 2]), None, "3 samples in 15 bins: empty bins add nothing"),
        ece_values(edge, edge_labels, 4, "confidences exactly on bin edges (4 bins)"),
        ece_values(extreme, extreme_labels, 10, "confidences of exactly 0 and 1"),
        ece_rejects_logits(torch.randn(4, 3, generator=torch.Generator().manual_seed(44)), torch.tensor([0, 1, 2, 0])),
    ]


# ----------------------------------------------------------------------------- tta_predict


class FlipProbe(torch.nn.Module):
    """A small classifier for checking ``tta_predict``.

    Its output changes when the images are mirrored (a linear layer on the flattened pixels), differs
    between training and evaluation mode (batch norm with non-trivial running statistics, and
    dropout), and it records ``(self.training, torch.is_grad_enabled())`` in ``calls`` at every forward.
    Built from ``seed`` alone, so the grader can build the same one in its own process.
    """

    def __init__(self, channels: int, height: int, width: int, classes: int, seed: int,
                 dtype: str = "float32") -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        d, hidden = channels * height * width, 12
        self.linear = torch.nn.Linear(d, hidden)
        self.norm = torch.nn.BatchNorm1d(hidden)
        self.drop = torch.nn.Dropout(0.5)
        self.head = torch.nn.Linear(hidden, classes)
        with torch.no_grad():
            for layer in (self.linear, self.head):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) / math.sqrt(layer.weight.shape[1]))
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen) * 0.1)
            self.norm.weight.copy_(1 + 0.3 * torch.randn(hidden, generator=gen))
            self.norm.bias.copy_(0.3 * torch.randn(hidden, generator=gen))
            self.norm.running_mean.copy_(0.5 * torch.randn(hidden, generator=gen))
            self.norm.running_var.copy_(0.2 + torch.rand(hidden, generator=gen))
        self.to(getattr(torch, dtype))  # a name, "float32" or "float64": programs carry plain data
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        h = torch.tanh(self.norm(self.linear(x.flatten(1))))
        return 3 * self.head(self.drop(h))


def flip_images(n: int, c: int, h: int, w: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=gen, dtype=torch.float64).to(dtype)


def tta_values(x: torch.Tensor, classes: int, seed: int) -> Property:
    """``tta_predict`` runs the model in evaluation mode without gradient tracking and returns the mean of
    the softmax over ``x`` and over ``x`` mirrored along its last axis; ``x`` unchanged."""
    n, c, h, w = x.shape
    p = Program()
    dtype = str(x.dtype).removeprefix("torch.")
    model = p.call("checks.metrics.FlipProbe", c, h, w, classes, seed, dtype=dtype)
    xr = p.put(x.clone())
    p.fetch(result=p.call("metrics.tta_predict", model, xr), calls=p.attr(model, "calls"), x_after=xr)

    def judge(got: dict[str, Any]) -> None:
        calls = got["calls"]
        if isinstance(calls, list) and calls:
            if any(isinstance(call, (tuple, list)) and call and call[0] is True for call in calls):
                raise Mistake("tta_predict ran the model in training mode: call model.eval() first (in training mode "
                              "dropout is random and batch norm uses the batch's own statistics).")
            if any(isinstance(call, (tuple, list)) and len(call) > 1 and call[1] is True for call in calls):
                raise Mistake("tta_predict ran the model with gradient tracking on: wrap the forward passes in "
                              "`with torch.no_grad():` (prediction needs no graph, and building one costs memory).")
        out = got["result"]
        if not isinstance(out, torch.Tensor):
            raise Mistake(f"tta_predict must return a tensor of probabilities; got {type(out).__name__}.")
        if tuple(out.shape) != (n, classes):
            raise Mistake(f"tta_predict returned shape {tuple(out.shape)}; expected N×K = ({n}, {classes}), one row "
                          "of class probabilities per image.")
        if out.dtype != x.dtype:
            raise Mistake(f"tta_predict returned {out.dtype} for a {x.dtype} model and input: keep the model's dtype.")
        probe = FlipProbe(c, h, w, classes, seed, dtype=dtype).eval()
        with torch.no_grad():
            lx, lf = probe(x).double(), probe(torch.flip(x, dims=(-1,))).double()
            lv = probe(torch.flip(x, dims=(-2,))).double()
        sx, sf = torch.softmax(lx, dim=1), torch.softmax(lf, dim=1)
        expected = (sx + sf) / 2
        atol = 1e-5 if x.dtype != torch.float64 else 1e-10
        if count_mismatches(out, expected, atol=atol) == 0:
            expect_unchanged(got["x_after"], x, "x", "tta_predict")
            return
        candidates = [
            (torch.softmax((lx + lf) / 2, dim=1), "tta_predict averaged the logits and then took the softmax: the "
                                                   "contract averages the probabilities, softmax first."),
            ((lx + lf) / 2, "tta_predict returned averaged logits: apply torch.softmax(..., dim=1) to each output "
                            "and average those probabilities."),
            (sx + sf, "tta_predict summed the two probabilities: divide by 2, so that each row sums to 1."),
            ((sx + torch.softmax(lv, dim=1)) / 2, "tta_predict mirrored the images upside down (dim −2, the height): "
                                                  "a horizontal mirror flips the last axis, the width: "
                                                  "torch.flip(x, dims=(-1,))."),
            (sx, "tta_predict did not mirror the images: average over x and torch.flip(x, dims=(-1,))."),
            (sf, "tta_predict returned only the mirrored images' probabilities: average them with the original's."),
            ((torch.softmax(lx, dim=0) + torch.softmax(lf, dim=0)) / 2,
             "tta_predict took the softmax over the batch (dim 0): it is over the classes, dim=1."),
        ]
        for candidate, diagnosis in candidates:
            if count_mismatches(out, candidate, atol=atol) == 0:
                raise Mistake(diagnosis)
        raise Mistake(f"tta_predict differs from (softmax(model(x)) + softmax(model(flip(x)))) / 2 at "
                      f"{count_mismatches(out, expected, atol=atol)} of {out.numel()} entries.")

    return Property("tta_predict", f"averages the probabilities over x and its mirror, in eval mode, without grad "
                                   f"({_describe(x)})", p, judge)


def tta_rejects_flat_input() -> Property:
    p = Program()
    model = p.call("checks.metrics.FlipProbe", 1, 2, 3, 4, 0)
    p.call("metrics.tta_predict", model, p.put(flip_images(2, 1, 2, 3, seed=0)))
    p.fetch(result=p.raises("metrics.tta_predict", model, p.put(torch.zeros(2, 6))))

    def judge(got: dict[str, Any]) -> None:
        raised = got["result"]["raised"]
        if raised != "ValueError":
            did = "returned normally" if raised is None else f"raised {raised}"
            raise Mistake(f"tta_predict {did} on N×D input; it must raise ValueError: keep the given input check "
                          "(images N×C×H×W).")

    return Property("tta_predict", "input that is not N×C×H×W raises ValueError", p, judge)


@register("tta_predict")
def tta_predict_check() -> list[Property]:
    """The visible check for ``tta_predict``."""
    return [
        tta_values(flip_images(4, 1, 5, 6, seed=51), classes=3, seed=52),
        tta_values(flip_images(3, 3, 4, 4, seed=53, dtype=torch.float64), classes=5, seed=54),
        tta_rejects_flat_input(),
    ]


# ----------------------------------------------------------------------------- bootstrap_accuracy_ci


def booleans(n: int, hits: int, seed: int) -> torch.Tensor:
    """A bool tensor of ``n`` entries, exactly ``hits`` of them true, in a random order."""
    values = torch.zeros(n, dtype=torch.bool)
    values[:hits] = True
    return values[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]


def _normal_quantile(q: float) -> float:
    """``Φ⁻¹(q)`` (the standard normal's quantile), by bisection on ``erf``."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def bootstrap_limits(n: int, hits: int, alpha: float) -> tuple[float, float]:
    """Where the percentile bootstrap's ends converge as ``n_boot`` grows: the ``alpha/2`` and
    ``1 − alpha/2`` quantiles of ``Binomial(n, hits/n) / n``, the distribution of a with-replacement
    resample's mean."""
    from scipy.stats import binom

    p = hits / n
    return float(binom.ppf(alpha / 2, n, p)) / n, float(binom.ppf(1 - alpha / 2, n, p)) / n


def bootstrap_tolerance(n: int, hits: int, alpha: float, n_boot: int) -> float:
    """How far a correct interval's ends may be from ``bootstrap_limits``: four standard deviations of a
    sample quantile of ``n_boot`` means (its density from the normal approximation), plus two steps of
    ``1/n`` for the grid of possible means and the ways of interpolating a quantile."""
    p = hits / n
    sigma = math.sqrt(p * (1 - p) / n)
    q = alpha / 2
    density = math.exp(-_normal_quantile(q) ** 2 / 2) / math.sqrt(2 * math.pi)
    return 4 * math.sqrt(q * (1 - q) / n_boot) * sigma / density + 2 / n


def _interval(value: Any) -> tuple[float, float]:
    pair = expect_sequence(value, 2, "bootstrap_accuracy_ci", "lo, hi")
    lo, hi = (expect_number(v, "bootstrap_accuracy_ci") for v in pair)
    if lo > hi:
        raise Mistake(f"bootstrap_accuracy_ci returned lo = {lo:.4f} > hi = {hi:.4f}: return (lower, upper).")
    if lo < 0 or hi > 1:
        raise Mistake(f"bootstrap_accuracy_ci returned ({lo:.4f}, {hi:.4f}), outside [0, 1]: the interval is for the "
                      "accuracy, the mean of correct over each resample (not its sum).")
    return lo, hi


def bootstrap_statistics(n: int, hits: int, n_boot: int, seed: int) -> Property:
    """With seeded generators: the same seed gives the same interval; the interval contains the sample
    accuracy; its ends agree with the percentile bootstrap's limits (the binomial quantiles) for
    ``alpha = 0.05`` and ``alpha = 0.32``, so it shrinks as ``alpha`` grows; a resample without replacement
    (zero width) fails."""
    correct = booleans(n, hits, seed)
    alphas = (0.05, 0.32)
    p = Program()
    ref = p.put(correct.clone())
    calls = {
        "a": p.call("metrics.bootstrap_accuracy_ci", ref, n_boot, alphas[0], _generator(p, seed + 1)),
        "again": p.call("metrics.bootstrap_accuracy_ci", ref, n_boot, alphas[0], _generator(p, seed + 1)),
        "b": p.call("metrics.bootstrap_accuracy_ci", ref, n_boot, alphas[1], generator=_generator(p, seed + 2)),
        # A few resamples give an interval that varies a lot from draw to draw: equal only from equal states.
        "few": p.call("metrics.bootstrap_accuracy_ci", ref, 5, 0.5, _generator(p, seed + 3)),
        "few_again": p.call("metrics.bootstrap_accuracy_ci", ref, 5, 0.5, _generator(p, seed + 3)),
    }
    p.fetch(**calls, correct_after=ref)
    acc = hits / n

    def judge(got: dict[str, Any]) -> None:
        first, again, second = _interval(got["a"]), _interval(got["again"]), _interval(got["b"])
        if first != again or _interval(got["few"]) != _interval(got["few_again"]):
            raise Mistake("the same generator state gave two different intervals: draw every random number from "
                          "`generator` (torch.randint(..., generator=generator)), not from torch's global one.")
        if 0 < hits < n and first[1] - first[0] == 0:
            raise Mistake("the interval has zero width: every resample has the same mean, so the resamples were "
                          "drawn without replacement (a permutation of the samples). Draw N indices with "
                          "replacement for each resample: torch.randint(0, N, (n_boot, N), generator=generator).")
        for lo, hi in (first, second):
            if not lo <= acc <= hi:
                raise Mistake(f"the interval ({lo:.4f}, {hi:.4f}) does not contain the sample accuracy (the mean of "
                              "correct): resample the samples themselves and take quantiles of the resamples' means.")
        width_a, width_b = first[1] - first[0], second[1] - second[0]
        if width_b >= width_a:
            raise Mistake(f"the interval did not shrink when alpha grew from {alphas[0]} to {alphas[1]} (widths "
                          f"{width_a:.4f} and {width_b:.4f}): take the alpha/2 and 1 − alpha/2 quantiles of the "
                          "resampled means, with the alpha you are given.")
        for (lo, hi), alpha in ((first, alphas[0]), (second, alphas[1])):
            want_lo, want_hi = bootstrap_limits(n, hits, alpha)
            tol = bootstrap_tolerance(n, hits, alpha, n_boot)
            if abs(lo - want_lo) <= tol and abs(hi - want_hi) <= tol:
                continue
            tight_lo, tight_hi = bootstrap_limits(n, hits, 2 * alpha)
            if abs(lo - tight_lo) <= tol and abs(hi - tight_hi) <= tol:
                raise Mistake(f"for alpha = {alpha} the interval is that of alpha = {2 * alpha}: the two tails share "
                              "alpha, so take the alpha/2 and 1 − alpha/2 quantiles (not alpha and 1 − alpha).")
            side = "wide" if hi - lo > want_hi - want_lo else "narrow"
            raise Mistake(f"for alpha = {alpha} and N = {n} the interval ({lo:.4f}, {hi:.4f}) is too {side} for a "
                          "percentile bootstrap: its half-width should be close to z·sqrt(acc·(1 − acc)/N), with z "
                          "the normal quantile of 1 − alpha/2. Each resample draws N samples with replacement, and its "
                          "statistic is the mean of correct.")
        expect_unchanged(got["correct_after"], correct, "correct", "bootstrap_accuracy_ci")

    return Property("bootstrap_accuracy_ci", f"a percentile bootstrap for N = {n} at alpha = 0.05 and 0.32, "
                                             "reproducible with a seeded generator", p, judge)


def bootstrap_constant(n: int, all_correct: bool) -> Property:
    """When every sample is right (or every one wrong), every resample's mean is 1 (or 0)."""
    correct = torch.full((n,), all_correct, dtype=torch.bool)
    p = Program()
    p.fetch(result=p.call("metrics.bootstrap_accuracy_ci", p.put(correct), 200, 0.05, _generator(p, n)))
    value = 1.0 if all_correct else 0.0

    def judge(got: dict[str, Any]) -> None:
        lo, hi = _interval(got["result"])
        if not (_close(lo, value) and _close(hi, value)):
            raise Mistake(f"with every sample {'right' if all_correct else 'wrong'} every resample's accuracy is "
                          f"{value:g}, so the interval is ({value:g}, {value:g}); got ({lo:.4f}, {hi:.4f}).")

    return Property("bootstrap_accuracy_ci",
                    f"all {'correct' if all_correct else 'wrong'} gives ({value:g}, {value:g})", p, judge)


def bootstrap_default_generator(n: int, hits: int, seed: int) -> Property:
    """With the default arguments (``generator=None``: torch's global generator) the interval is a
    plausible 95 % interval."""
    correct = booleans(n, hits, seed)
    p = Program()
    p.fetch(result=p.call("metrics.bootstrap_accuracy_ci", p.put(correct)))
    acc = hits / n

    def judge(got: dict[str, Any]) -> None:
        lo, hi = _interval(got["result"])
        want_lo, want_hi = bootstrap_limits(n, hits, 0.05)
        tol = bootstrap_tolerance(n, hits, 0.05, 1000)
        if not (lo <= acc <= hi and abs(lo - want_lo) <= tol and abs(hi - want_hi) <= tol):
            raise Mistake(f"with the defaults (n_boot=1000, alpha=0.05, generator=None) the interval ({lo:.4f}, "
                          f"{hi:.4f}) is not a 95 % percentile bootstrap of the accuracy: with no generator, draw "
                          "from torch's global one (pass generator=None through to torch.randint).")

    return Property("bootstrap_accuracy_ci", "works with the default arguments (no generator)", p, judge)


def bootstrap_rejects_bad_alpha() -> Property:
    correct = booleans(10, 7, 0)
    return _raises_property("bootstrap_accuracy_ci", "alpha outside (0, 1) raises ValueError", [correct, 10, 0.1],
                            [correct, 10, 1.5], "keep the given input checks (0 < alpha < 1).")


@register("bootstrap_accuracy_ci")
def bootstrap_accuracy_ci_check() -> list[Property]:
    """The visible check for ``bootstrap_accuracy_ci``."""
    return [
        bootstrap_statistics(800, 680, 4000, seed=61),
        bootstrap_constant(30, True),
        bootstrap_default_generator(300, 240, seed=62),
        bootstrap_rejects_bad_alpha(),
    ]
