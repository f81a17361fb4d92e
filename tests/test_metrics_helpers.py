"""Chapter 5's given helpers (training a small model, figures, shipping) and the notebook's shape."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest
import torch

from exercises.checks.metrics import ece_oracle, softmax_probs
from exercises.kit.checkpoints import export_model, load_checkpoint, load_exported, read_checkpoint, save_checkpoint
from exercises.kit.datasets import draw_digit, image_to_mnist
from exercises.kit.figures import (
    plot_confusion_matrix,
    plot_intervals,
    plot_per_class_scores,
    plot_reliability_diagram,
    reliability_bins,
    show_confident_mistakes,
)
from exercises.kit.training import (
    linear_model,
    predict_image,
    predict_logits,
    small_cnn,
    three_way_split,
    to_model_input,
    train_quickly,
)
from grading import PROJECT_ROOT

matplotlib.use("Agg")
NOTEBOOK = PROJECT_ROOT / "course" / "05_evaluation.ipynb"


def test_three_way_split_is_a_stratified_partition() -> None:
    labels = torch.arange(10).repeat_interleave(50)[torch.randperm(500, generator=torch.Generator().manual_seed(0))]
    train, val, test = three_way_split(labels, (0.6, 0.2, 0.2), seed=3)
    assert torch.equal(torch.cat([train, val, test]).sort().values, torch.arange(500))
    for part, share in ((train, 30), (val, 10), (test, 10)):
        assert labels[part].bincount(minlength=10).tolist() == [share] * 10
    assert torch.equal(three_way_split(labels, seed=3)[1], val)
    assert not torch.equal(three_way_split(labels, seed=4)[1], val)
    with pytest.raises(ValueError):
        three_way_split(labels, (0.5, 0.2, 0.2))


def test_small_models_learn_separable_data_quickly() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (120,), generator=g)
    images = (torch.rand(120, 1, 28, 28, generator=g) * 40).to(torch.uint8)
    for c in range(3):  # each class lights up its own band of rows
        images[labels == c, :, 8 * c:8 * c + 6, :] = 250
    x = to_model_input(images)
    for model in (small_cnn(num_classes=3), linear_model(num_classes=3)):
        torch.manual_seed(0)
        losses = train_quickly(model, x, labels, epochs=3, batch_size=32, lr=5e-3)
        assert losses[-1] < losses[0]
        assert (predict_logits(model, x).argmax(dim=1) == labels).float().mean() > 0.95
        assert not model.training


def test_the_reliability_diagram_says_which_way_each_gap_goes() -> None:
    """Overconfident and underconfident bins are drawn apart, and the legend names each."""
    import matplotlib.pyplot as plt

    # Bin (0.5, 0.6]: confidence 0.55, all right (underconfident); bin (0.9, 1]: confidence 0.95, half right.
    probs = torch.tensor([[0.55, 0.45]] * 4 + [[0.95, 0.05]] * 4)
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 0, 1])
    fig = plot_reliability_diagram(probs, labels, n_bins=10)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("overconfident") for t in legend) and any(t.startswith("underconfident") for t in legend)
    assert "gap to confidence" not in legend  # one colour for both directions hid which way a gap went
    plt.close(fig)


def test_reliability_bins_follow_the_contract_and_the_figures_draw() -> None:
    probs = softmax_probs(300, 5, seed=1)
    labels = torch.randint(0, 5, (300,), generator=torch.Generator().manual_seed(2))
    bins = reliability_bins(probs, labels, 10)
    full = bins["count"] > 0
    ece = float((bins["count"][full] / 300 * (bins["accuracy"][full] - bins["confidence"][full]).abs()).sum())
    assert ece == pytest.approx(ece_oracle(probs, labels, 10), abs=1e-12)
    edge = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.75, 0.25]])
    assert reliability_bins(edge, torch.tensor([0, 0, 1]), 4)["count"].tolist() == [1, 0, 1, 1]
    cm = torch.tensor([[5, 1], [0, 4]])
    figures = [
        plot_confusion_matrix(cm, ["a", "b"]), plot_confusion_matrix(cm, ["a", "b"], normalize=True),
        plot_per_class_scores(torch.tensor([0.9, 0.8]), torch.tensor([0.7, 1.0]), torch.tensor([0.8, 0.9]), ["a", "b"]),
        plot_reliability_diagram(probs, labels),
        plot_intervals(["m"], [0.9], [(0.88, 0.92)]),
        show_confident_mistakes(torch.zeros(300, 1, 4, 4, dtype=torch.uint8), labels, probs, list("abcde"), n=5),
    ]
    import matplotlib.pyplot as plt

    for fig in figures:
        assert fig.axes
        plt.close(fig)


def test_checkpoints_round_trip_in_every_layout(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = small_cnn().eval()
    x = torch.randn(3, 1, 28, 28)
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, meta={"arch": "small_cnn", "mean": (0.5,)})
    restored = small_cnn().eval()
    found = load_checkpoint(path, restored)
    assert found.meta == {"arch": "small_cnn", "mean": (0.5,)} and torch.equal(restored(x), model(x))
    assert (found.epoch, found.history) == (0, [])
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    state = model.state_dict()
    for layout in (state, {"model_state_dict": state, "epoch": 3}, {"state_dict": state}):
        torch.save(layout, tmp_path / "other.pt")
        got, meta = read_checkpoint(tmp_path / "other.pt")
        assert got.keys() == state.keys()
    assert meta == {} and read_checkpoint(tmp_path / "other.pt")[1] == {}
    torch.save({"model_state_dict": state, "epoch": 3}, tmp_path / "ch4.pt")
    assert read_checkpoint(tmp_path / "ch4.pt")[1] == {"epoch": 3}
    with pytest.raises(ValueError, match="same architecture"):
        load_checkpoint(path, linear_model())


def test_a_training_checkpoint_is_the_shipping_checkpoint(tmp_path: Path) -> None:
    """One format: what a training run saves to resume is what chapter 5 loads to use the weights."""
    torch.manual_seed(0)
    model = small_cnn().eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = save_checkpoint(tmp_path / "run.pt", model, meta={"arch": "small_cnn"}, epoch=3, optimizer=optimizer,
                           history=[{"epoch": 3, "val_accuracy": 0.9}])
    restored = small_cnn().eval()
    found = load_checkpoint(path, restored)  # no optimizer: only the weights and the facts
    assert found.meta == {"arch": "small_cnn"} and found.epoch == 0
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(restored(x), model(x))
    assert read_checkpoint(path)[1] == {"arch": "small_cnn"}
    resumed = load_checkpoint(path, small_cnn(), optimizer=torch.optim.SGD(small_cnn().parameters(), lr=0.1))
    assert (resumed.epoch, resumed.history) == (3, [{"epoch": 3, "val_accuracy": 0.9}])


def test_export_runs_any_batch_size_and_matches_the_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = small_cnn().eval()
    path = export_model(model, torch.randn(1, 1, 28, 28), tmp_path / "m.pt2")
    exported = load_exported(path)
    for n in (1, 5, 64):
        x = torch.randn(n, 1, 28, 28)
        with torch.no_grad():
            assert torch.allclose(exported(x), model(x), atol=1e-5)


def test_a_photo_of_a_digit_becomes_an_mnist_digit() -> None:
    photo = draw_digit("1", seed=0)
    assert photo.shape == (240, 240, 3) and photo.dtype == np.uint8 and photo.mean() > 150  # dark ink, light paper
    digit = image_to_mnist(photo)
    assert digit.shape == (1, 1, 28, 28) and digit.dtype == torch.uint8
    ink = digit[0, 0].double()
    rows, cols = torch.nonzero(ink > 0, as_tuple=True)
    assert int(rows.max() - rows.min()) < 21 and int(cols.max() - cols.min()) < 21  # fits MNIST's 20-pixel box
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    assert abs(float((yy * ink).sum() / ink.sum()) - 13.5) <= 1 and abs(float((xx * ink).sum() / ink.sum()) - 13.5) <= 1
    assert torch.equal(image_to_mnist(255 - photo), digit)  # light ink on dark paper: same result
    with pytest.raises(ValueError, match="no ink"):
        image_to_mnist(np.full((30, 30), 200, dtype=np.uint8))
    probs = predict_image(small_cnn(), digit, to_model_input)
    assert probs.shape == (10,) and float(probs.sum()) == pytest.approx(1.0, abs=1e-5)


def test_notebook_shape() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first_markdown = next(c for c in nb.cells if c.cell_type == "markdown" and not c.source.startswith("[!["))
    assert first_markdown.source.startswith("# Chapter 5")
    assert code[0].source.startswith("%load_ext autoreload\n%autoreload 2") or "%load_ext autoreload" in code[1].source
    source = "\n".join(c.source for c in code)
    for exercise in ("accuracy", "bootstrap_accuracy_ci", "confusion_matrix", "precision_recall_f1", "top_k_accuracy",
                     "expected_calibration_error", "tta_predict"):
        assert f'check("{exercise}")' in source and f"from exercises.metrics import {exercise}\n" in source, exercise
    for needed in ("COURSE_FAST", "COURSE_CHECKPOINT", "export_model", "save_checkpoint",
                   "load_checkpoint", "image_to_mnist", "logits_val / log_t.exp()"):
        assert needed in source, needed
    assert all(c.outputs == [] and c.execution_count is None for c in code)
