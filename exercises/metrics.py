# Your exercises: replace each `raise NotImplementedError(...)` with your code, save, and run the
# notebook's check cell. Keep the names and signatures: the checks and the grader call them.
# (Course maintainers: this file is generated from solutions/metrics.py by `python -m grading stubs`;
# edit that file, not this one.)
# ruff: noqa: F401  (imports the reference uses stay, for you to use too)
"""Evaluating a classifier honestly (chapter 5): accuracy and its uncertainty, the confusion matrix,
precision, recall and F1, top-k accuracy, calibration, and test-time augmentation.

Labels and predicted labels are ``int64`` tensors of shape ``N``; scores (logits or probabilities) are
floating-point ``N×C``. Metrics that summarize a whole set return Python ``float``s (``.item()``), so
they print, compare and serialize like numbers. Nothing here modifies its inputs, and randomness comes
only from the ``torch.Generator`` you pass.
"""

from __future__ import annotations

import torch

from exercises.kit.validate import (
    require_bool_vector,
    require_choice,
    require_generator,
    require_images,
    require_int_at_least,
    require_label_vector,
    require_nonempty,
    require_open_fraction,
    require_probabilities,
    require_same_length,
    require_scores,
    require_square_counts,
)

AVERAGES = (None, "macro", "micro", "weighted")


def accuracy(output: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of samples classified correctly.

    ``accuracy = (1/N) Σ_n 1[pred_n == labels_n]``, where ``pred_n = argmax_c output[n, c]`` when
    ``output`` holds scores, or ``output[n]`` itself when it holds predicted labels.

    Args:
        output: either logits (or probabilities) ``N×C``, float32 or float64, whose argmax over
            the classes (dim 1) is the prediction; or predicted labels ``N``, ``int64``.
        labels: the true classes, ``int64`` of shape ``N``, on the device of ``output``.

    Returns:
        A Python ``float`` in ``[0, 1]``.

    Explained in course/05_evaluation.ipynb, section "Accuracy, and how sure we are of it".
    """
    if isinstance(output, torch.Tensor) and output.ndim == 2:
        require_scores("output", output)
        require_label_vector("labels", labels, num_classes=output.shape[1])
    else:
        require_label_vector("output", output)
        require_label_vector("labels", labels)
    require_same_length("output", output, "labels", labels)
    require_nonempty("labels", labels)
    raise NotImplementedError(
        "accuracy is not implemented yet: see course/05_evaluation.ipynb, "
        "section \"Accuracy, and how sure we are of it\".")


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Count every (true class, predicted class) pair.

    ``cm[i, j] = #{n : labels_n == i and preds_n == j}``: row ``i`` is the true class, column ``j``
    the predicted class (scikit-learn's convention), so the diagonal holds the correct predictions,
    row sums are the classes' supports and column sums how often each class was predicted.

    Args:
        preds: predicted labels, ``int64`` of shape ``N``, each in ``0..num_classes-1``.
        labels: true labels, ``int64`` of shape ``N``, each in ``0..num_classes-1``, on the device of
            ``preds``.
        num_classes: ``C``; the matrix is ``C×C`` even when some classes never occur.

    Returns:
        ``cm``: ``int64`` ``C×C`` on the device of the inputs; ``cm.sum() == N``.

    Explained in course/05_evaluation.ipynb, section "The confusion matrix".
    """
    num_classes = require_int_at_least("num_classes", num_classes, 1)
    require_label_vector("preds", preds, num_classes)
    require_label_vector("labels", labels, num_classes)
    require_same_length("preds", preds, "labels", labels)
    raise NotImplementedError(
        "confusion_matrix is not implemented yet: see course/05_evaluation.ipynb, "
        "section \"The confusion matrix\".")


def precision_recall_f1(
    cm: torch.Tensor, average: str | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | tuple[float, float, float]:
    """Precision, recall and F1 from a confusion matrix (rows true class, columns predicted class).

    For each class ``c``, with ``tp_c = cm[c, c]``::

        precision_c = tp_c / Σ_i cm[i, c]       (of everything predicted as c, the share that is c)
        recall_c    = tp_c / Σ_j cm[c, j]       (of everything that is c, the share found)
        f1_c        = 2 · precision_c · recall_c / (precision_c + recall_c)

    and any 0/0 counts as 0 (a class never predicted has precision 0; one never present, recall 0).
    ``average`` summarizes the classes as scikit-learn does:

    * ``None``: the per-class values;
    * ``"macro"``: the plain mean over all ``C`` classes (F1 too is the mean of the per-class F1s);
    * ``"weighted"``: the mean weighted by each class's support ``Σ_j cm[c, j]``;
    * ``"micro"``: pooled counts, ``Σ_c tp_c / Σ cm`` for all three (the accuracy, for one label
      per sample).

    The result equals ``sklearn.metrics.precision_recall_fscore_support(y_true, y_pred,
    labels=range(C), average=average, zero_division=0)[:3]``.

    Args:
        cm: ``C×C`` counts, ``int64`` (or floating-point).
        average: ``None``, ``"macro"``, ``"micro"`` or ``"weighted"``.

    Returns:
        ``(precision, recall, f1)``: with ``average=None``, three floating-point tensors of shape ``C``
        on the device of ``cm`` (float64 for integer counts, else ``cm``'s dtype); otherwise three
        Python ``float``s.

    Explained in course/05_evaluation.ipynb, section "Precision, recall and F1".
    """
    require_square_counts("cm", cm)
    require_choice("average", average, AVERAGES)
    raise NotImplementedError(
        "precision_recall_f1 is not implemented yet: see course/05_evaluation.ipynb, "
        "section \"Precision, recall and F1\".")


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """The fraction of samples whose true class is among the ``k`` highest scores.

    ``top-k = (1/N) Σ_n 1[labels_n ∈ the k classes with the largest logits[n]]``. With ``k = 1`` this is
    the accuracy; with ``k >= C`` every class is in the top k, so it is 1.

    Args:
        logits: scores ``N×C`` (logits or probabilities), float32 or float64.
        labels: the true classes, ``int64`` of shape ``N``, on the device of ``logits``.
        k: how many of the top classes count, an int ``>= 1`` (it may exceed ``C``).

    Returns:
        A Python ``float`` in ``[0, 1]``.

    Explained in course/05_evaluation.ipynb, section "Top-k accuracy".
    """
    require_scores("logits", logits)
    require_label_vector("labels", labels, num_classes=logits.shape[1])
    require_same_length("logits", logits, "labels", labels)
    require_nonempty("labels", labels)
    k = require_int_at_least("k", k, 1)
    raise NotImplementedError(
        "top_k_accuracy is not implemented yet: see course/05_evaluation.ipynb, "
        "section \"Top-k accuracy\".")


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """How far the model's confidence is from its accuracy, averaged over confidence bins.

    Each sample's confidence is its top probability ``conf_n = max_c probs[n, c]`` and its prediction
    the class that has it. ``[0, 1]`` is cut into ``n_bins`` equal bins; bin ``i`` holds the samples with
    ``i/n_bins < conf <= (i+1)/n_bins``, and bin 0 also holds ``conf == 0``. Then::

        ECE = Σ_b (|b| / N) · |accuracy(b) − mean confidence(b)|

    where an empty bin contributes 0.

    Args:
        probs: probabilities ``N×C`` (for example ``torch.softmax(logits, dim=1)``), float32 or float64,
            every entry in ``[0, 1]``.
        labels: the true classes, ``int64`` of shape ``N``, on the device of ``probs``.
        n_bins: the number of bins, an int ``>= 1``.

    Returns:
        A Python ``float`` in ``[0, 1]``: 0 for a perfectly calibrated model.

    Explained in course/05_evaluation.ipynb, section "Calibration: is 90 % confident right 90 % of the time?".
    """
    require_probabilities("probs", probs)
    require_label_vector("labels", labels, num_classes=probs.shape[1])
    require_same_length("probs", probs, "labels", labels)
    require_nonempty("labels", labels)
    n_bins = require_int_at_least("n_bins", n_bins, 1)
    raise NotImplementedError(
        "expected_calibration_error is not implemented yet: see course/05_evaluation.ipynb, "
        "section \"Calibration: is 90 % confident right 90 % of the time?\".")


def tta_predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Test-time augmentation: class probabilities averaged over ``x`` and its horizontal mirror.

    ``p = (softmax(model(x)) + softmax(model(flip(x)))) / 2``, where ``flip`` mirrors each image along
    its last axis (width) and the softmax is over the classes. The model runs in evaluation mode
    (``model.eval()``: dropout off, batch norm on its running statistics) and without gradient
    tracking (``torch.no_grad()``); its previous mode is restored afterwards.

    Args:
        model: a classifier mapping ``N×C×H×W`` images to ``N×K`` logits.
        x: images ``N×C×H×W``, float32 or float64, on the model's device.

    Returns:
        Probabilities ``N×K`` (each row sums to 1) in the model's output dtype, on ``x``'s device,
        not attached to any autograd graph. ``x`` is not modified.

    Explained in course/05_evaluation.ipynb, section "Test-time augmentation".
    """
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    require_images("x", x)
    raise NotImplementedError(
        "tta_predict is not implemented yet: see course/05_evaluation.ipynb, "
        "section \"Test-time augmentation\".")


def bootstrap_accuracy_ci(
    correct: torch.Tensor, n_boot: int = 1000, alpha: float = 0.05, generator: torch.Generator | None = None
) -> tuple[float, float]:
    """A percentile-bootstrap confidence interval for the accuracy.

    Draw ``n_boot`` resamples of the ``N`` samples, each of size ``N`` **with replacement** (each
    draw picks any sample with probability ``1/N``); take each resample's mean of ``correct``; the
    interval is the ``alpha/2`` and ``1 − alpha/2`` quantiles of those ``n_boot`` means. It covers the
    true accuracy with probability about ``1 − alpha``, and its half-width is close to
    ``z_{1−alpha/2} · sqrt(acc · (1 − acc) / N)``.

    Args:
        correct: 1-D ``bool`` tensor, ``N >= 1`` entries (``preds == labels``).
        n_boot: the number of resamples, an int ``>= 1``.
        alpha: ``0 < alpha < 1``; the interval has confidence ``1 − alpha`` (0.05 gives 95 %).
        generator: a CPU ``torch.Generator`` for every random draw (``None``: torch's global one), so
            the same generator state gives the same interval.

    Returns:
        ``(lo, hi)``: two Python ``float``s with ``0 <= lo <= hi <= 1``.

    Explained in course/05_evaluation.ipynb, section "Accuracy, and how sure we are of it".
    """
    require_bool_vector("correct", correct)
    n_boot = require_int_at_least("n_boot", n_boot, 1)
    alpha = require_open_fraction("alpha", alpha)
    if generator is not None:
        require_generator("generator", generator)
    raise NotImplementedError(
        "bootstrap_accuracy_ci is not implemented yet: see course/05_evaluation.ipynb, "
        "section \"Accuracy, and how sure we are of it\".")
