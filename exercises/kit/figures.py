"""The course's figures and live displays: image grids, progress bars, training curves, chapter 5's plots.

Each function takes plain tensors, draws one figure and returns it; none of them calls your exercise
code. ``show_images`` draws a grid of images (look at the data before any model); ``progress_bar`` is a
tqdm bar (a widget in JupyterLab, plain text where widgets are not shown: ``COURSE_TEXT_PROGRESS=1``, which
the headless course run sets, so that the bars appear in its HTML); ``LivePlot``
redraws loss and accuracy curves after every epoch; the rest are chapter 5's: confusion matrix,
per-class scores, reliability diagram (it bins the confidences itself, with the rule of the contract
of ``expected_calibration_error``: bin ``i`` holds ``(i/n, (i+1)/n]``, bin 0 also holds 0),
confidence intervals and a gallery of mistakes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch

TEXT_PROGRESS_ENV = "COURSE_TEXT_PROGRESS"


def progress_bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """A tqdm progress bar over ``iterable`` (``tqdm`` keyword arguments pass through): the notebook widget
    where one can be shown, else text; always text when ``COURSE_TEXT_PROGRESS=1``."""
    if os.environ.get(TEXT_PROGRESS_ENV) == "1":
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)


def show_images(
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    classes: Sequence[str] | None = None,
    ncols: int = 10,
    title: str | None = None,
):
    """Draw ``images`` (``N×C×H×W``, uint8 or float in [0, 1]) in a grid; returns the figure."""
    import matplotlib.pyplot as plt

    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be N×C×H×W with C of 1 or 3, got shape {tuple(images.shape)}")
    n = images.shape[0]
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 1.1, nrows * 1.2), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i].detach().cpu()
        img = img.float() / 255 if img.dtype == torch.uint8 else img.float().clamp(0, 1)
        if img.shape[0] == 1:
            ax.imshow(img[0], cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(img.permute(1, 2, 0))
        if labels is not None:
            label = int(labels[i])
            ax.set_title(classes[label] if classes else str(label), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


class LivePlot:
    """Training and validation loss, and validation accuracy, per epoch: one figure redrawn in place
    (in Jupyter) after every epoch. ``save(path)`` writes it as an image."""

    def __init__(self, title: str = "") -> None:
        import matplotlib.pyplot as plt

        self.fig, (self.ax_loss, self.ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
        self.title = title
        self._handle: Any = None
        plt.close(self.fig)  # shown through the display handle only, never twice

    def update(self, history: list[dict[str, float]]) -> None:
        epochs = [h["epoch"] for h in history]
        self.ax_loss.clear()
        self.ax_acc.clear()
        self.ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="training")
        self.ax_loss.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
        self.ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
        self.ax_loss.legend()
        self.ax_acc.plot(epochs, [100 * h["val_accuracy"] for h in history], "o-", color="C2")
        self.ax_acc.set(xlabel="epoch", ylabel="%", title="validation accuracy")
        for ax in (self.ax_loss, self.ax_acc):
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
        if self.title:
            self.fig.suptitle(self.title)
        self.fig.tight_layout()
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        if self._handle is None:
            self._handle = display(self.fig, display_id=True)
        else:
            self._handle.update(self.fig)

    def save(self, path: str | os.PathLike) -> None:
        self.fig.savefig(path, dpi=100)


def plot_confusion_matrix(cm: torch.Tensor, classes: Sequence[str], normalize: bool = False,
                          title: str = "Confusion matrix"):
    """Heatmap of a ``C×C`` confusion matrix (rows: true class, columns: predicted class), each cell
    annotated with its count, or with its share of the row (the recall of that true class) when
    ``normalize``. The diagonal is left pale so that the mistakes stand out."""
    import matplotlib.pyplot as plt

    counts = cm.detach().cpu().double()
    values = counts / counts.sum(dim=1, keepdim=True).clamp(min=1) if normalize else counts
    off = values.clone()
    off.fill_diagonal_(0)
    c = len(classes)
    fig, ax = plt.subplots(figsize=(0.55 * c + 2.5, 0.55 * c + 2))
    image = ax.imshow(off.numpy(), cmap="Reds", vmin=0, vmax=max(float(off.max()), 1e-9))
    for i in range(c):
        for j in range(c):
            v = float(values[i, j])
            if v == 0:
                continue
            text = f"{v:.2f}".lstrip("0") if normalize else f"{int(v)}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="black" if i == j or float(off[i, j]) < 0.6 * float(off.max()) else "white",
                    fontweight="bold" if i == j else "normal")
    ax.set_xticks(range(c), classes, rotation=90 if max(map(len, classes)) > 2 else 0)
    ax.set_yticks(range(c), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                 label="share of the row" if normalize else "count (off the diagonal)")
    fig.tight_layout()
    return fig


def plot_per_class_scores(precision: torch.Tensor, recall: torch.Tensor, f1: torch.Tensor,
                          classes: Sequence[str], title: str = "Per-class precision, recall and F1"):
    """Grouped bars of the per-class precision, recall and F1 (each a tensor of shape ``C``)."""
    import matplotlib.pyplot as plt

    c = len(classes)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * c + 2), 3.2))
    width = 0.27
    for k, (name, values) in enumerate((("precision", precision), ("recall", recall), ("F1", f1))):
        ax.bar([i + (k - 1) * width for i in range(c)], values.detach().cpu().double().tolist(), width, label=name)
    low = min(float(t.min()) for t in (precision, recall, f1))
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_xticks(range(c), classes)
    ax.set_title(title)
    ax.legend(loc="lower right", ncols=3, fontsize=8)
    fig.tight_layout()
    return fig


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict[str, torch.Tensor]:
    """Per bin: ``count``, mean ``confidence`` and ``accuracy`` (NaN where the bin is empty), float64."""
    conf, pred = probs.detach().cpu().double().max(dim=1)
    correct = (pred == labels.cpu()).double()
    index = (torch.ceil(conf * n_bins).long() - 1).clamp(0, n_bins - 1)
    count = torch.bincount(index, minlength=n_bins).double()
    mean_conf = torch.bincount(index, weights=conf, minlength=n_bins) / count
    accuracy = torch.bincount(index, weights=correct, minlength=n_bins) / count
    return {"count": count, "confidence": mean_conf, "accuracy": accuracy}


def plot_reliability_diagram(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15, title: str = "",
                             ax=None):
    """Reliability diagram: per confidence bin, the accuracy (bars) against the mean confidence (the
    diagonal is perfect calibration; each bin's gap is red above the bar where the model is overconfident,
    hatched over the bar's top where it is underconfident), with the share of samples per bin underneath.
    Draws into ``ax`` when given (a pair of axes, ``(bars, histogram)``), else a new figure."""
    import matplotlib.pyplot as plt

    bins = reliability_bins(probs, labels, n_bins)
    if ax is None:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(4.2, 4.6), height_ratios=(3, 1), sharex=True)
    else:
        top, bottom = ax
        fig = top.figure
    edges = torch.arange(n_bins, dtype=torch.float64) / n_bins
    width = 1.0 / n_bins
    full = bins["count"] > 0
    acc = torch.where(full, bins["accuracy"], torch.zeros_like(bins["accuracy"])).numpy()
    conf = torch.where(full, bins["confidence"], torch.zeros_like(bins["confidence"])).numpy()
    edges = edges.numpy()
    top.bar(edges, acc, width=width, align="edge", color="tab:blue", edgecolor="white", label="accuracy in the bin")
    # The gap between a bin's accuracy and its mean confidence, drawn apart for the two ways it can go: above
    # the bar where the model is overconfident, and over the top of the bar (hatched) where it is underconfident.
    over, under = conf > acc, conf < acc
    if over.any():
        top.bar(edges[over], (conf - acc)[over], bottom=acc[over], width=width, align="edge", color="tab:red",
                alpha=0.35, edgecolor="white", label="overconfident: mean confidence above the bar")
    if under.any():
        top.bar(edges[under], (acc - conf)[under], bottom=conf[under], width=width, align="edge", color="none",
                edgecolor="tab:orange", hatch="///", label="underconfident: mean confidence below the bar's top")
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    top.set_ylim(0, 1)
    top.set_xlim(0, 1)
    top.set_ylabel("accuracy in the bin")
    top.legend(loc="upper left", fontsize=7)
    if title:
        top.set_title(title, fontsize=10)
    share = bins["count"] / bins["count"].sum()
    bottom.bar(edges, share.numpy(), width=width, align="edge", color="gray")
    bottom.set_yscale("log")
    bottom.set_ylim(max(float(share[share > 0].min()) / 2, 1e-4) if bool(full.any()) else 1e-4, 1.5)
    bottom.set_xlabel("confidence (top probability)")
    bottom.set_ylabel("share")
    if ax is None:
        fig.tight_layout()
    return fig


def plot_intervals(names: Sequence[str], estimates: Sequence[float], intervals: Sequence[tuple[float, float]],
                   title: str = "Accuracy with its 95 % bootstrap interval", xlabel: str = "accuracy"):
    """One horizontal error bar per model: the point estimate and its confidence interval."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.55 * len(names) + 1.2))
    for i, (estimate, (lo, hi)) in enumerate(zip(estimates, intervals, strict=True)):
        ax.errorbar([estimate], [i], xerr=[[estimate - lo], [hi - estimate]], fmt="o", capsize=5)
        ax.annotate(f"{estimate:.3f}  [{lo:.3f}, {hi:.3f}]", (hi, i), xytext=(6, -3), textcoords="offset points",
                    fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.7, len(names) - 0.3)
    lo = min(i[0] for i in intervals)
    hi = max(i[1] for i in intervals)
    ax.set_xlim(lo - 0.02, hi + 0.6 * (hi - lo) + 0.04)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_confident_mistakes(images: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor,
                            classes: Sequence[str], n: int = 16, ncols: int = 8,
                            title: str = "The most confident mistakes"):
    """The ``n`` wrong predictions with the highest confidence, most confident first, each titled
    "true → predicted (confidence)". ``images`` are ``N×C×H×W`` (uint8, or float in [0, 1])."""
    import matplotlib.pyplot as plt

    conf, pred = probs.detach().cpu().max(dim=1)
    wrong = torch.nonzero(pred != labels.cpu()).flatten()
    order = wrong[conf[wrong].argsort(descending=True)][:n]
    rows = max(1, -(-len(order) // ncols))
    fig, axes = plt.subplots(rows, ncols, figsize=(ncols * 1.25, rows * 1.75 + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, order.tolist(), strict=False):
        img = images[i].detach().cpu()
        img = img.float() / 255 if img.dtype == torch.uint8 else img.float().clamp(0, 1)
        ax.imshow((img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{classes[int(labels[i])]} → {classes[int(pred[i])]}\n({float(conf[i]):.2f})", fontsize=8,
                     color="darkred")
    fig.suptitle(f"{title} ({len(wrong)} mistakes in all)" if len(order) else "No mistakes to show")
    fig.tight_layout()
    return fig


def plot_practice_history(attempts: Sequence[tuple[Any, int]], streaks: dict[str, Sequence[tuple[Any, int]]],
                          mastered_at: int = 5, fluent_seconds: float = 30, title: str = "Your practice history"):
    """Your practice over time (what ``python -m exercises progress --plot`` draws): above, the running count of
    your attempts at the checks (``(time, count)`` pairs); below, for each drill, the right answers in a row after
    each of its answers (``{drill: [(time, streak), ...]}``, each answer within ``fluent_seconds``), with the line
    where a drill counts as mastered."""
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.6), sharex=True)
    if attempts:
        top.step([t for t, _ in attempts], [n for _, n in attempts], where="post", marker="o", markersize=3)
    else:
        top.text(0.5, 0.5, "no attempts recorded yet", ha="center", va="center", transform=top.transAxes,
                 color="0.5")
    top.set_ylabel("attempts at the checks\n(running total)")
    top.set_title(title)
    for name, series in streaks.items():
        bottom.step([t for t, _ in series], [s for _, s in series], where="post", marker="o", markersize=3,
                    label=f'drill("{name}")')
    if streaks:
        bottom.legend(fontsize=7, loc="upper left", ncols=2)
    else:
        bottom.text(0.5, 0.5, "no drills answered yet", ha="center", va="center", transform=bottom.transAxes,
                    color="0.5")
    bottom.axhline(mastered_at, color="0.4", ls="--", lw=0.8)
    bottom.annotate("mastered", (0, mastered_at), xycoords=("axes fraction", "data"), xytext=(2, 3),
                    textcoords="offset points", fontsize=7, color="0.4")
    bottom.set_ylim(0, max([mastered_at + 1] + [s + 1 for series in streaks.values() for _, s in series]))
    bottom.set_ylabel(f"drill fluency (right in a\nrow, each within {fluent_seconds:.0f} s)")
    bottom.set_xlabel("time")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.yaxis.get_major_locator().set_params(integer=True)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
