"""Hidden tests of ``exercises.metrics`` (chapter 5): the shared properties, on inputs learners never see.

Oracles: scikit-learn, NumPy in float64, torch, and the binomial limits of the percentile bootstrap (see
``exercises.checks.metrics``). Besides random inputs, each exercise is tested on the edge cases learners
get wrong: classes never predicted or never present (0/0), ``k`` equal to or larger than the number of
classes, all-correct and all-wrong predictions, empty calibration bins, confidences of exactly 0 and 1
and on bin edges, logits versus labels, transposed matrices, and a bootstrap that resamples without
replacement or ignores ``alpha``.
"""

from __future__ import annotations

import torch

from exercises.checks import Property
from exercises.checks.metrics import (
    accuracy_rejects_mismatch,
    accuracy_values,
    bootstrap_constant,
    bootstrap_default_generator,
    bootstrap_rejects_bad_alpha,
    bootstrap_statistics,
    confusion_from,
    confusion_matrix_rejects_out_of_range,
    confusion_matrix_values,
    ece_rejects_logits,
    ece_values,
    flip_images,
    noisy_labels,
    prf_rejects_bad_average,
    prf_values,
    random_labels,
    random_logits,
    softmax_probs,
    topk_rejects_bad_k,
    topk_values,
    tta_rejects_flat_input,
    tta_values,
)
from grading.suite import hidden_test

# ----------------------------------------------------------------------------- accuracy


@hidden_test("accuracy")
def accuracy_logits_float32_h() -> Property:
    logits = random_logits(257, 10, seed=501)
    return accuracy_values(logits, noisy_labels(logits, 0.83, seed=502))


@hidden_test("accuracy")
def accuracy_probabilities_float64_h() -> Property:
    probs = torch.softmax(random_logits(64, 7, seed=503, dtype=torch.float64), dim=1)
    return accuracy_values(probs, noisy_labels(probs, 0.5, seed=504))


@hidden_test("accuracy")
def accuracy_predicted_labels_h() -> Property:
    return accuracy_values(random_labels(91, 4, seed=505), random_labels(91, 4, seed=506))


@hidden_test("accuracy")
def accuracy_all_correct_logits_h() -> Property:
    logits = random_logits(33, 6, seed=507)
    return accuracy_values(logits, logits.argmax(dim=1))


@hidden_test("accuracy")
def accuracy_all_wrong_labels_h() -> Property:
    labels = random_labels(25, 5, seed=508)
    return accuracy_values((labels + 1) % 5, labels)


@hidden_test("accuracy")
def accuracy_square_logits_h() -> Property:
    """N == C: comparing logits with labels by broadcasting does not fail; it is just wrong."""
    logits = random_logits(8, 8, seed=509)
    return accuracy_values(logits, noisy_labels(logits, 0.6, seed=510))


@hidden_test("accuracy", points=0.5)
def accuracy_single_sample_h() -> Property:
    return accuracy_values(random_logits(1, 3, seed=511, dtype=torch.float64), torch.tensor([2]))


@hidden_test("accuracy", points=0.5)
def accuracy_mismatch_h() -> Property:
    logits = random_logits(6, 3, seed=512)
    return accuracy_rejects_mismatch(logits, random_labels(6, 3, seed=513))


# ----------------------------------------------------------------------------- confusion_matrix


def _noisy_preds(labels: torch.Tensor, c: int, keep: float, seed: int) -> torch.Tensor:
    source = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(len(labels), generator=source) < keep, labels,
                       torch.randint(0, c, labels.shape, generator=source))


@hidden_test("confusion_matrix")
def confusion_matrix_random_h() -> Property:
    labels = random_labels(500, 10, seed=521)
    return confusion_matrix_values(_noisy_preds(labels, 10, 0.7, seed=522), labels, 10)


@hidden_test("confusion_matrix")
def confusion_matrix_asymmetric_h() -> Property:
    """Most mistakes go one way (3 → 5), so a transposed matrix is told apart."""
    labels = torch.tensor([3] * 9 + [5] * 4 + [0] * 6 + [1] * 2)
    preds = torch.tensor([5] * 7 + [3] * 2 + [5] * 4 + [0] * 5 + [3] + [1, 1])
    return confusion_matrix_values(preds, labels, 6)


@hidden_test("confusion_matrix")
def confusion_matrix_missing_classes_h() -> Property:
    labels = random_labels(40, 4, seed=523)  # classes 4..6 never present
    preds = (labels + torch.randint(0, 2, (40,), generator=torch.Generator().manual_seed(524))) % 4 + 1
    return confusion_matrix_values(preds, labels, 7)  # class 0 never predicted, 5 and 6 never anything


@hidden_test("confusion_matrix")
def confusion_matrix_all_correct_h() -> Property:
    labels = random_labels(30, 3, seed=525)
    return confusion_matrix_values(labels.clone(), labels, 3)


@hidden_test("confusion_matrix", points=0.5)
def confusion_matrix_single_sample_h() -> Property:
    return confusion_matrix_values(torch.tensor([1]), torch.tensor([2]), 4)


@hidden_test("confusion_matrix", points=0.5)
def confusion_matrix_out_of_range_h() -> Property:
    labels = random_labels(9, 3, seed=526)
    return confusion_matrix_rejects_out_of_range(labels.flip(0), labels, 3)


# ----------------------------------------------------------------------------- precision_recall_f1


def _random_cm(n: int, c: int, keep: float, seed: int) -> torch.Tensor:
    labels = random_labels(n, c, seed)
    return confusion_from(_noisy_preds(labels, c, keep, seed + 1), labels, c)


_EDGE_CM = torch.tensor([[7, 0, 2, 1, 0, 0],
                         [0, 0, 0, 0, 0, 0],   # class 1: never present
                         [3, 0, 5, 0, 0, 2],
                         [4, 0, 1, 6, 0, 0],
                         [2, 0, 0, 3, 0, 1],   # class 4: never predicted (its column is 0)
                         [0, 0, 0, 0, 0, 0]])  # class 5: never present, predicted 3 times
_EMPTY_CLASS_CM = torch.tensor([[4, 1, 0], [2, 3, 0], [0, 0, 0]])  # class 2: neither present nor predicted


@hidden_test("precision_recall_f1")
def prf_random_per_class_h() -> Property:
    return prf_values(_random_cm(300, 8, 0.6, seed=531), None)


@hidden_test("precision_recall_f1")
def prf_random_macro_h() -> Property:
    return prf_values(_random_cm(300, 8, 0.6, seed=531), "macro")


@hidden_test("precision_recall_f1")
def prf_random_micro_h() -> Property:
    return prf_values(_random_cm(120, 5, 0.4, seed=533), "micro")


@hidden_test("precision_recall_f1")
def prf_random_weighted_h() -> Property:
    return prf_values(_random_cm(200, 6, 0.5, seed=535), "weighted")


@hidden_test("precision_recall_f1")
def prf_zero_division_per_class_h() -> Property:
    return prf_values(_EDGE_CM.clone(), None)


@hidden_test("precision_recall_f1")
def prf_zero_division_macro_h() -> Property:
    return prf_values(_EDGE_CM.clone(), "macro")


@hidden_test("precision_recall_f1")
def prf_zero_division_weighted_h() -> Property:
    return prf_values(_EDGE_CM.clone(), "weighted")


@hidden_test("precision_recall_f1")
def prf_zero_division_micro_h() -> Property:
    return prf_values(_EDGE_CM.clone(), "micro")


@hidden_test("precision_recall_f1")
def prf_absent_class_macro_h() -> Property:
    return prf_values(_EMPTY_CLASS_CM.clone(), "macro")


@hidden_test("precision_recall_f1", points=0.5)
def prf_all_correct_h() -> Property:
    return prf_values(torch.diag(torch.tensor([3, 1, 4, 1, 5])), "macro")


@hidden_test("precision_recall_f1", points=0.5)
def prf_all_wrong_h() -> Property:
    return prf_values(torch.tensor([[0, 2, 1], [3, 0, 0], [1, 4, 0]]), None)


@hidden_test("precision_recall_f1", points=0.5)
def prf_bad_average_h() -> Property:
    return prf_rejects_bad_average(_random_cm(20, 3, 0.5, seed=537))


# ----------------------------------------------------------------------------- top_k_accuracy


@hidden_test("top_k_accuracy")
def topk_k1_h() -> Property:
    logits = random_logits(300, 10, seed=541)
    return topk_values(logits, noisy_labels(logits, 0.45, seed=542), 1)


@hidden_test("top_k_accuracy")
def topk_k3_float64_h() -> Property:
    logits = random_logits(300, 10, seed=543, dtype=torch.float64)
    return topk_values(logits, noisy_labels(logits, 0.3, seed=544), 3)


@hidden_test("top_k_accuracy")
def topk_k5_h() -> Property:
    logits = random_logits(150, 12, seed=545)
    return topk_values(logits, random_labels(150, 12, seed=546), 5)


@hidden_test("top_k_accuracy")
def topk_k_equals_c_h() -> Property:
    logits = random_logits(40, 4, seed=547)
    return topk_values(logits, random_labels(40, 4, seed=548), 4)


@hidden_test("top_k_accuracy")
def topk_k_exceeds_c_h() -> Property:
    logits = random_logits(40, 5, seed=549)
    return topk_values(logits, random_labels(40, 5, seed=550), 9)


@hidden_test("top_k_accuracy", points=0.5)
def topk_k_c_minus_one_h() -> Property:
    logits = random_logits(60, 6, seed=551)
    return topk_values(logits, random_labels(60, 6, seed=552), 5)


@hidden_test("top_k_accuracy", points=0.5)
def topk_bad_k_h() -> Property:
    logits = random_logits(5, 3, seed=553)
    return topk_rejects_bad_k(logits, random_labels(5, 3, seed=554))


# ----------------------------------------------------------------------------- expected_calibration_error


def _on_edges(n_bins: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-class probabilities whose confidences sit exactly on the edges ``i/n_bins`` (``n_bins`` a power
    of two, so that every edge is exact in binary) and in between, with mixed right and wrong labels."""
    source = torch.Generator().manual_seed(seed)
    grid = torch.arange(n_bins, 2 * n_bins + 1, dtype=torch.float64) / (2 * n_bins)  # 0.5 .. 1 in half-bin steps
    conf = grid.repeat(3)
    probs = torch.stack([conf, 1 - conf], dim=1)
    swap = torch.rand(len(conf), generator=source) < 0.5
    probs = torch.where(swap[:, None], probs.flip(1), probs)
    top = probs.argmax(dim=1)
    labels = torch.where(torch.rand(len(conf), generator=source) < 0.7, top, 1 - top)
    keep = conf > 0.5  # a confidence of exactly 0.5 is a tie between the two classes
    return probs[keep].float(), labels[keep]


@hidden_test("expected_calibration_error")
def ece_random_default_bins_h() -> Property:
    probs = softmax_probs(500, 10, seed=561, scale=3.0)
    return ece_values(probs, noisy_labels(probs, 0.75, seed=562), None)


@hidden_test("expected_calibration_error")
def ece_random_float64_10_bins_h() -> Property:
    probs = softmax_probs(300, 4, seed=563, dtype=torch.float64, n_bins=10)
    return ece_values(probs, noisy_labels(probs, 0.5, seed=564), 10)


@hidden_test("expected_calibration_error")
def ece_bin_edges_8_bins_h() -> Property:
    return ece_values(*_on_edges(8, seed=565), 8, "confidences exactly on bin edges (8 bins)")


@hidden_test("expected_calibration_error")
def ece_bin_edges_4_bins_h() -> Property:
    return ece_values(*_on_edges(4, seed=566), 4, "confidences exactly on bin edges (4 bins)")


@hidden_test("expected_calibration_error")
def ece_confidence_one_h() -> Property:
    probs = torch.eye(4)[torch.tensor([0, 1, 2, 3, 0, 2, 1])]
    probs = torch.cat([probs, softmax_probs(5, 4, seed=567)])
    labels = torch.tensor([0, 1, 3, 3, 1, 2, 1, 0, 1, 2, 3, 0])
    return ece_values(probs, labels, 15, "confidences of exactly 1")


@hidden_test("expected_calibration_error")
def ece_confidence_zero_h() -> Property:
    probs = torch.cat([torch.zeros(3, 3, dtype=torch.float64), softmax_probs(6, 3, seed=568, dtype=torch.float64)])
    labels = torch.tensor([0, 2, 1, 0, 1, 2, 2, 0, 1])
    return ece_values(probs, labels, 5, "confidences of exactly 0")


@hidden_test("expected_calibration_error")
def ece_empty_bins_h() -> Property:
    probs = softmax_probs(4, 6, seed=569, scale=4.0)
    return ece_values(probs, torch.tensor([0, 3, 5, 1]), 20, "4 samples in 20 bins: empty bins add nothing")


@hidden_test("expected_calibration_error", points=0.5)
def ece_perfect_h() -> Property:
    return ece_values(torch.eye(5, dtype=torch.float64), torch.arange(5), None, "always right with confidence 1: 0")


@hidden_test("expected_calibration_error", points=0.5)
def ece_all_wrong_h() -> Property:
    return ece_values(torch.eye(5), torch.tensor([1, 2, 3, 4, 0]), 3, "always wrong with confidence 1: 1")


@hidden_test("expected_calibration_error", points=0.5)
def ece_logits_h() -> Property:
    return ece_rejects_logits(random_logits(6, 4, seed=570), random_labels(6, 4, seed=571))


# ----------------------------------------------------------------------------- tta_predict


@hidden_test("tta_predict", points=2.0)
def tta_float32_gray_h() -> Property:
    return tta_values(flip_images(6, 1, 7, 9, seed=581), classes=4, seed=582)


@hidden_test("tta_predict", points=2.0)
def tta_float64_rgb_h() -> Property:
    return tta_values(flip_images(5, 3, 6, 5, seed=583, dtype=torch.float64), classes=10, seed=584)


@hidden_test("tta_predict")
def tta_two_images_h() -> Property:
    return tta_values(flip_images(2, 2, 4, 8, seed=585), classes=3, seed=586)


@hidden_test("tta_predict", points=0.5)
def tta_flat_input_h() -> Property:
    return tta_rejects_flat_input()


# ----------------------------------------------------------------------------- bootstrap_accuracy_ci


@hidden_test("bootstrap_accuracy_ci", points=3.0)
def bootstrap_statistics_high_accuracy_h() -> Property:
    return bootstrap_statistics(1000, 870, 4000, seed=591)


@hidden_test("bootstrap_accuracy_ci", points=2.0)
def bootstrap_statistics_half_h() -> Property:
    return bootstrap_statistics(600, 300, 4000, seed=592)


@hidden_test("bootstrap_accuracy_ci")
def bootstrap_statistics_small_n_h() -> Property:
    return bootstrap_statistics(120, 90, 5000, seed=593)


@hidden_test("bootstrap_accuracy_ci", points=0.5)
def bootstrap_all_correct_h() -> Property:
    return bootstrap_constant(17, True)


@hidden_test("bootstrap_accuracy_ci", points=0.5)
def bootstrap_all_wrong_h() -> Property:
    return bootstrap_constant(23, False)


@hidden_test("bootstrap_accuracy_ci")
def bootstrap_defaults_h() -> Property:
    return bootstrap_default_generator(500, 410, seed=594)


@hidden_test("bootstrap_accuracy_ci", points=0.5)
def bootstrap_bad_alpha_h() -> Property:
    return bootstrap_rejects_bad_alpha()
