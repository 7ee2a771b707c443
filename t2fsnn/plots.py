"""Figure helpers. Each function is independent, takes plain data and returns a matplotlib Figure."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import matplotlib.pyplot as plt


def training_history(history, title: Optional[str] = None):
    """Loss and accuracy per epoch of an ANN's training.

    ``history`` is a DataFrame with columns ``epoch``, ``train_loss``,
    ``train_accuracy`` and ``test_accuracy`` (as ``t2fsnn.training`` records it).
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(8, 3), constrained_layout=True)
    epochs = list(history["epoch"])
    ax_loss.plot(epochs, list(history["train_loss"]), marker="o")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss")
    ax_acc.plot(epochs, list(history["train_accuracy"]), marker="o", label="train")
    ax_acc.plot(epochs, list(history["test_accuracy"]), marker="s", label="test")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.set_xticks(epochs if len(epochs) <= 12 else ax.get_xticks())
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def activation_histograms(
    activations: Sequence,
    names: Sequence[str],
    scales: Optional[Sequence[float]] = None,
    bins: int = 60,
    ncols: int = 3,
):
    """Histograms of each spiking layer's normalised activations.

    ``activations`` are tensors (or arrays), one per layer, input first, *not*
    clipped to 1, so the share of values above 1 (the percentile's tail, which
    the spiking layer saturates) is visible.  ``scales`` are the per-layer
    normalisation factors, shown in each panel's title.  Zero activations are
    counted in the title, not drawn.
    """
    n = len(activations)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), constrained_layout=True, squeeze=False)
    for i, (values, name) in enumerate(zip(activations, names)):
        ax = axes[i // ncols][i % ncols]
        flat = values.detach().reshape(-1).float().cpu().numpy() if hasattr(values, "detach") else values.reshape(-1)
        positive = flat[flat > 0]
        zero_share = 100.0 * (1.0 - positive.size / max(flat.size, 1))
        above = 100.0 * float((flat > 1.0).sum()) / max(flat.size, 1)
        upper = max(1.05, float(positive.max()) if positive.size else 1.0)
        ax.hist(positive, bins=bins, range=(0.0, upper), color="C0")
        ax.axvline(1.0, color="C3", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_xlabel("normalised activation")
        title = name
        if scales is not None:
            title += f"  (λ = {scales[i]:.3g})"
        ax.set_title(title, fontsize=10)
        ax.text(
            0.97, 0.95, f"zero: {zero_share:.1f}%\n>1: {above:.2f}%",
            transform=ax.transAxes, ha="right", va="top", fontsize=8,
        )
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    return fig
