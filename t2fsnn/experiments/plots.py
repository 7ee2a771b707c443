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
            bbox=dict(facecolor="white", alpha=0.85, edgecolor="none", pad=1.5),
        )
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    return fig


# ---------------------------------------------------------------------------
# TTFS coding primer and spike-time distributions
# ---------------------------------------------------------------------------

_LAYER_COLOURS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")


def _layer_colour(index: int) -> str:
    return _LAYER_COLOURS[index % len(_LAYER_COLOURS)]


def kernel_and_threshold(T: int, taus: Sequence[float], tds: Sequence[float], tau_for_td: float = 5.0,
                         potentials: Sequence[float] = (0.8, 0.3), theta0: float = 1.0):
    """Eq. 5 and Eq. 6: the kernel for several ``tau`` (``td = 0``), and the threshold for several ``td``.

    Left: ``eps(t) = exp(-(t - td)/tau)`` over a window of ``T`` steps (dots at the
    integer steps where a neuron can fire). Right: the dynamic threshold
    ``theta0 * eps(t)`` for ``tau = tau_for_td`` and each ``td``, with horizontal lines at
    the given membrane ``potentials`` and a marker where each first crosses the
    threshold of the first ``td`` (the spike step of Eq. 7).
    """
    import numpy as np
    from t2fsnn.snn.kernels import encode

    fig, (ax_k, ax_th) = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    fine = np.linspace(0, T - 1, 400)
    steps = np.arange(T)
    for i, tau in enumerate(taus):
        ax_k.plot(fine, np.exp(-fine / tau), color=_layer_colour(i), label=f"τ = {tau:g}")
        ax_k.plot(steps, np.exp(-steps / tau), "o", color=_layer_colour(i), markersize=3)
    ax_k.set_xlabel("step t in the fire phase")
    ax_k.set_ylabel("ε(t)")
    ax_k.set_title("kernel (Eq. 5), t_d = 0", fontsize=10)
    ax_k.legend(fontsize=8)
    for i, td in enumerate(tds):
        values = theta0 * np.exp(-(steps - td) / tau_for_td)
        ax_th.step(steps, values, where="post", color=_layer_colour(i), label=f"t_d = {td:g}")
    for j, u in enumerate(potentials):
        ax_th.axhline(u, color="0.4", linestyle=":", linewidth=1)
        k = int(encode(float(u), T, tau_for_td, tds[0], theta0))
        if k >= 0:
            ax_th.plot([k], [theta0 * np.exp(-(k - tds[0]) / tau_for_td)], "v", color="k", markersize=7)
            ax_th.annotate(f"u = {u:g} fires at t = {k}", (k, u), xytext=(k + 1, u * 1.08), fontsize=8)
    ax_th.set_xlabel("step t in the fire phase")
    ax_th.set_ylabel("θ(t)")
    ax_th.set_title(f"dynamic threshold (Eq. 6), τ = {tau_for_td:g}", fontsize=10)
    ax_th.legend(fontsize=8)
    for ax in (ax_k, ax_th):
        ax.grid(alpha=0.3)
    return fig


def encoding_decoding(table, T: int, tau: float, td: float = 0.0, theta0: float = 1.0):
    """Value -> spike step -> decoded value, for the rows of ``t2fsnn.experiments.analysis.coding_table``.

    Left: the spike step of every value in ``(0, 1]`` (Eq. 7; the closed form
    ``-tau ln(x) + td`` as a thin line) with the table's values marked. Right: the
    decoded value against the value (a staircase under the identity), the precision
    bound ``x_hat e^{1/tau}`` above each step, and the table's values.
    """
    import numpy as np
    import torch
    from t2fsnn.experiments.analysis import transmit
    from t2fsnn.snn.kernels import encode

    positive = table["value"][table["value"] > 0]
    low = theta0 * np.exp(-(T + 2 - td) / tau)
    if len(positive):
        low = min(low, float(positive.min()) / 1.3)
    x = np.logspace(np.log10(low), np.log10(theta0), 800)
    steps = encode(torch.as_tensor(x), T, tau, td, theta0).numpy()
    decoded = transmit(torch.as_tensor(x), T, tau, td, theta0).numpy()
    fig, (ax_enc, ax_dec) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    fired = steps >= 0
    ax_enc.plot(x[fired], steps[fired], color="C0", label="spike step (Eq. 7)")
    ax_enc.plot(x, -tau * np.log(x / theta0) + td, color="0.6", linewidth=0.8, label="-τ ln(x/θ0) + t_d")
    rows = table[table["spike step"] >= 0]
    ax_enc.plot(rows["value"], rows["spike step"], "o", color="C3", label="values of the table")
    ax_enc.axhline(T - 1, color="C3", linestyle=":", linewidth=1)
    ax_enc.set_xscale("log")
    ax_enc.set_ylim(-1, T + 2)
    ax_enc.set_xlabel("value x (membrane potential)")
    ax_enc.set_ylabel("spike step")
    ax_enc.set_title(f"encoding, T = {T}, τ = {tau:g}, t_d = {td:g}", fontsize=10)
    ax_enc.legend(fontsize=8)
    smallest = theta0 * np.exp(-(T - 1 - td) / tau)
    ax_dec.axvspan(x[0], smallest, color="0.9", label="no spike: x̂ = 0")
    ax_dec.plot(x, x, color="0.6", linewidth=0.8, label="identity")
    ax_dec.plot(x[fired], decoded[fired], color="C0", label="decoded x̂ (Eq. 8)")
    ax_dec.plot(x[fired], decoded[fired] * np.exp(1.0 / tau), color="C1", linewidth=0.8, linestyle="--",
                label="x̂ e^{1/τ} (precision bound)")
    sent = table["decoded"] > 0
    ax_dec.plot(table["value"][sent], table["decoded"][sent], "o", color="C3")
    ax_dec.plot(table["value"][~sent], np.full(int((~sent).sum()), x[0]), "x", color="C3", clip_on=False)
    ax_dec.set_xscale("log")
    ax_dec.set_yscale("log")
    ax_dec.set_xlim(x[0], x[-1] * 1.1)
    ax_dec.set_ylim(x[0], x[-1] * 1.5)
    ax_dec.set_xlabel("value x")
    ax_dec.set_ylabel("decoded value x̂")
    ax_dec.set_title("decoding", fontsize=10)
    ax_dec.legend(fontsize=8)
    for ax in (ax_enc, ax_dec):
        ax.grid(alpha=0.3)
    return fig


def tau_tradeoff(table, values=None, title: Optional[str] = None):
    """The precision / small-value trade-off (Section III-B) from ``t2fsnn.experiments.analysis.tau_tradeoff``.

    Left: the representable range ``z_min .. z_max`` per ``tau`` (shaded, log scale),
    over a histogram of ``values`` when given. Right: the mean decoding error split into
    the precision part and the part lost below ``z_min``, and the share of values lost.
    """
    import numpy as np

    fig, (ax_range, ax_err) = plt.subplots(1, 2, figsize=(9.5, 3.4), constrained_layout=True)
    taus = table["tau"].to_numpy()
    ax_range.fill_between(taus, table["z_min"], table["z_max"], color="C0", alpha=0.25, label="z_min .. z_max")
    ax_range.plot(taus, table["z_min"], color="C0", marker="o", markersize=3)
    ax_range.set_yscale("log")
    ax_range.set_xlabel("τ")
    ax_range.set_ylabel("representable value")
    ax_range.set_title("representable range", fontsize=10)
    if values is not None:
        flat = np.asarray(values, dtype=float).reshape(-1)
        flat = flat[flat > 0]
        if flat.size:
            low = max(flat.min(), float(table["z_min"].min()) / 2)
            bins = np.logspace(np.log10(low), np.log10(max(flat.max(), 1.0)), 40)
            hist, edges = np.histogram(flat, bins=bins)
            width = (taus.max() - taus.min()) * 0.25 or 1.0
            ax_range.barh(edges[:-1], hist / hist.max() * width, height=np.diff(edges), left=taus.min(),
                          align="edge", color="0.5", alpha=0.5, label="values (histogram)")
    ax_range.set_ylim(max(float(table["z_min"].min()), 1e-4) / 2, float(table["z_max"].max()) * 1.5)
    ax_range.legend(fontsize=8, loc="lower right")
    ax_err.stackplot(taus, table["precision part"], table["lost part"], labels=["precision", "lost (below z_min)"],
                     colors=("C1", "C3"), alpha=0.7)
    ax_err.plot(taus, table["mean error"], color="k", marker="o", markersize=3, label="mean |x - x̂|")
    best = int(np.argmin(table["mean error"].to_numpy()))
    ax_err.axvline(taus[best], color="k", linestyle=":", linewidth=1)
    ax_err.set_xlabel("τ")
    ax_err.set_ylabel("mean decoding error")
    ax_err.set_title("decoding error", fontsize=10)
    ax_lost = ax_err.twinx()
    ax_lost.plot(taus, table["lost (%)"], color="C3", linestyle="--", linewidth=1)
    ax_lost.set_ylabel("values lost (%)", color="C3")
    ax_err.legend(fontsize=8, loc="upper center")
    for ax in (ax_range, ax_err):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def _phase_bars(ax, names, T: int, stride: int, latency: int) -> None:
    """One row per layer: its integration phase (light) and fire phase (dark)."""
    for l, name in enumerate(names):
        colour = _layer_colour(l)
        if l > 0:
            ax.broken_barh([((l - 1) * stride, T)], (l - 0.4, 0.35), color=colour, alpha=0.3)
        if l < len(names) - 1:
            ax.broken_barh([(l * stride, T)], (l + 0.05, 0.35), color=colour, alpha=0.9)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_ylim(len(names) - 0.5, -0.6)
    ax.set_xlim(-0.5, latency - 0.5)


def spike_raster(trace, image: int = 0, title: Optional[str] = None):
    """Spike raster of one image from a ``t2fsnn.snn.engines.ttfs.ClockTrace``, with the phases of each layer.

    Top: per layer, the integration phase (light) and the fire phase (dark). Bottom:
    every spike, one row per neuron (layers stacked, input at the top).
    """
    import numpy as np

    result = trace.result
    latency = result.latency
    fig, (ax_phase, ax_raster) = plt.subplots(2, 1, figsize=(8, 5.2), sharex=True, constrained_layout=True,
                                              gridspec_kw={"height_ratios": [1, 3.5]})
    _phase_bars(ax_phase, trace.names, trace.T, trace.stride, latency)
    ax_phase.set_title(title or "integration (light) and fire (dark) phases", fontsize=10)
    offset = 0
    ticks, labels = [], []
    for l, times in enumerate(result.spike_times):
        flat = times[image].flatten().cpu().numpy()
        neurons = np.nonzero(flat >= 0)[0]
        ax_raster.scatter(flat[neurons], offset + neurons, s=1.5, color=_layer_colour(l), marker="|",
                          linewidths=0.6, rasterized=True)
        ticks.append(offset + flat.size / 2)
        labels.append(f"{trace.names[l]}\n{len(neurons)} spikes")
        offset += flat.size
        ax_raster.axhline(offset, color="0.7", linewidth=0.5)
    ax_raster.set_yticks(ticks)
    ax_raster.set_yticklabels(labels, fontsize=8)
    ax_raster.set_ylim(offset, 0)
    ax_raster.set_xlabel("global time step")
    ax_raster.grid(axis="x", alpha=0.3)
    return fig


def membrane_traces(traces, layer: int, neurons: Sequence[int], image: int = 0):
    """Membrane potential of chosen neurons against the falling threshold, one panel per trace.

    ``traces`` maps a label (e.g. "T2FSNN", "T2FSNN+EF") to a ``ClockTrace``; ``layer`` is
    a spiking layer (1 .. L-1) and ``neurons`` flat indices into it. A triangle marks each
    spike; the dashed black line is the layer's threshold during its fire phase, the
    shaded span the integration phase.
    """
    import numpy as np

    fig, axes = plt.subplots(1, len(traces), figsize=(4.6 * len(traces), 3.4), sharey=True,
                             constrained_layout=True, squeeze=False)
    for ax, (label, trace) in zip(axes[0], traces.items()):
        T, s = trace.T, trace.stride
        membrane = trace.membranes[layer][:, image].cpu().numpy()
        threshold = trace.thresholds[:, layer].numpy()
        times = trace.result.spike_times[layer][image].flatten().cpu().numpy()
        steps = np.arange(len(threshold))
        ax.axvspan((layer - 1) * s - 0.5, (layer - 1) * s + T - 0.5, color="0.9", label="integration phase")
        ax.plot(steps, threshold, "k--", linewidth=1.2, label="threshold θ(t)")
        for j, n in enumerate(neurons):
            colour = f"C{j % 10}"
            ax.plot(steps, membrane[:, n], color=colour, linewidth=1.2, label=f"neuron {n}")
            t = int(times[n])
            if t >= 0:
                ax.plot([t], [membrane[t, n]], "v", color=colour, markersize=8, markeredgecolor="k")
        ax.set_xlim((layer - 1) * s - 1, layer * s + T)
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(membrane[:, list(neurons)])) * 1.1))
        ax.set_xlabel("global time step")
        ax.set_title(f"{label}: {trace.names[layer]}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("membrane potential u")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    return fig


def spike_time_histograms(evaluations, title: Optional[str] = None):
    """Fig. 5: spikes per image at each global step, per layer, with each layer's first spike.

    ``evaluations`` maps a run's label to a ``t2fsnn.snn.metrics.Evaluation`` (with
    ``spike_time_counts`` and ``first_spike``); one panel per run, bars coloured by
    layer, an orange vertical line at each layer's first spike.
    """
    import numpy as np

    runs = list(evaluations.items())
    latency = max(ev.latency for _, ev in runs)
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 2.4 * len(runs)), sharex=True, constrained_layout=True,
                             squeeze=False)
    for ax, (label, ev) in zip(axes[:, 0], runs):
        if ev.spike_time_counts is None:
            raise ValueError(f"evaluation {label!r} has no spike times: it needs a T2FSNN run")
        for l, counts in enumerate(ev.spike_time_counts):
            per_image = np.asarray(counts, dtype=float) / ev.num_images
            ax.bar(np.arange(len(per_image)), per_image, width=1.0, color=_layer_colour(l), alpha=0.75,
                   label=ev.layer_names[l])
        if ev.first_spike is not None:
            for first in ev.first_spike:
                if first >= 0:
                    ax.axvline(first, color="orange", linewidth=2)
        ax.set_yscale("log")
        low, high = ax.get_ylim()
        rows = math.ceil(len(ev.layer_names) / 6)
        ax.set_ylim(low, high * 10 ** (1.0 + rows))  # room for the legend above the bars
        ax.set_ylabel("spikes per image")
        ax.set_title(f"{label}: latency {ev.latency} steps, {ev.hidden_spikes_per_image:.0f} spikes per image "
                     f"(hidden layers; input {ev.input_spikes_per_image:.0f})", fontsize=10)
        ax.legend(fontsize=8, ncol=min(6, len(ev.layer_names)), loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlim(-0.5, latency - 0.5)
    axes[-1, 0].set_xlabel("global time step (orange: first spike of each layer)")
    if title:
        fig.suptitle(title)
    return fig


def spikes_per_layer(evaluations):
    """Spikes per image in each spiking layer, grouped by run (a bar per run and layer)."""
    import numpy as np

    runs = list(evaluations.items())
    names = runs[0][1].layer_names
    width = 0.8 / len(runs)
    fig, ax = plt.subplots(figsize=(6, 3.2), constrained_layout=True)
    for j, (label, ev) in enumerate(runs):
        positions = np.arange(len(names)) + (j - (len(runs) - 1) / 2) * width
        ax.bar(positions, ev.spikes_per_layer, width=width, color=f"C{j}", label=f"{label} ({ev.hidden_spikes_per_image:.0f})")
    ax.set_xticks(np.arange(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel("spikes per image")
    ax.legend(fontsize=8, title="run (hidden layers' total)", title_fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def accuracy_curves(evaluations, reference: Optional[float] = None, reference_label: str = "converted ANN",
                    zoom: float = 10.0):
    """Accuracy after each time step for each run, with an optional reference accuracy.

    The y-axis covers the last ``zoom`` percentage points below the best accuracy, so the
    final approach is visible; steps before the output has any input count as wrong.
    """
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 3.4), constrained_layout=True)
    best = 0.0
    for j, (label, ev) in enumerate(evaluations.items()):
        curve = np.asarray(ev.accuracy_over_time)
        ax.plot(np.arange(1, len(curve) + 1), curve, color=f"C{j}", label=f"{label} ({ev.accuracy:.2f} %)")
        best = max(best, float(curve.max()))
    if reference is not None:
        ax.axhline(reference, color="k", linestyle=":", linewidth=1, label=f"{reference_label} ({reference:.2f} %)")
        best = max(best, reference)
    ax.set_ylim(best - zoom, best + 1)
    ax.set_xlabel("time step")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def loss_breakdown(table):
    """Accuracy at each stage of ``t2fsnn.experiments.analysis.loss_breakdown`` (horizontal bars, change annotated)."""
    import numpy as np

    stages = list(table.index)
    accuracy = table["accuracy"].to_numpy()
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(stages) + 1.2), constrained_layout=True)
    ax.barh(np.arange(len(stages)), accuracy, color=[f"C{j}" for j in range(len(stages))])
    for j, (value, change) in enumerate(zip(accuracy, table["change"])):
        text = f"{value:.2f} %" + ("" if np.isnan(change) else f"  ({change:+.2f})")
        ax.text(value, j, " " + text, va="center", fontsize=8)
    ax.set_yticks(np.arange(len(stages)))
    ax.set_yticklabels(stages, fontsize=8)
    ax.invert_yaxis()
    low = float(accuracy.min())
    ax.set_xlim(max(0.0, low - 5.0), min(100.0, float(accuracy.max()) + 3.0))
    ax.set_xlabel("accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def kernel_optimization_losses(histories, window: int = 1):
    """Fig. 4: (a) ``L_prec`` (solid) and ``L_min`` (dashed), (b) ``L_max``, summed over layers, per step.

    ``histories`` maps a label (e.g. the initial tau) to the history DataFrame of
    ``t2fsnn.snn.optimization.optimize_kernels``; ``window`` > 1 smooths with a running mean.
    """
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    for index, (label, history) in enumerate(histories.items()):
        colour = f"C{index}"
        per_step = history.groupby("step")[["L_prec", "L_min", "L_max"]].sum()
        if window > 1:
            per_step = per_step.rolling(window, min_periods=1).mean()
        steps = list(per_step.index)
        ax_a.plot(steps, list(per_step["L_prec"]), color=colour, linestyle="-", label=f"{label}: $L_{{prec}}$")
        ax_a.plot(steps, list(per_step["L_min"]), color=colour, linestyle="--", label=f"{label}: $L_{{min}}$")
        ax_b.plot(steps, list(per_step["L_max"]), color=colour, label=f"{label}: $L_{{max}}$")
    for ax, title in ((ax_a, "(a) $L_{prec}$ and $L_{min}$"), (ax_b, "(b) $L_{max}$")):
        ax.set_yscale("log")
        ax.set_xlabel("optimization step")
        ax.set_ylabel("loss (sum over layers)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def kernel_trajectories(histories):
    """tau (left) and t_d (right) of every layer per optimization step; one line style per history."""
    fig, (ax_tau, ax_td) = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    styles = ["-", "--", ":", "-."]
    for index, (label, history) in enumerate(histories.items()):
        style = styles[index % len(styles)]
        for number, (layer, rows) in enumerate(history.groupby("layer", sort=False)):
            colour = _layer_colour(number)
            ax_tau.plot(list(rows["step"]), list(rows["tau"]), color=colour, linestyle=style, label=f"{label}, {layer}")
            ax_td.plot(list(rows["step"]), list(rows["td"]), color=colour, linestyle=style, label=f"{label}, {layer}")
    ax_tau.set_ylabel(r"$\tau$")
    ax_td.set_ylabel(r"$t_d$")
    for ax in (ax_tau, ax_td):
        ax.set_xlabel("optimization step")
        ax.grid(alpha=0.3)
    ax_tau.legend(fontsize=7, ncol=2)
    return fig


def first_spikes_and_counts(comparison):
    """Mean first spike (local step) and spikes per image of each layer, for several configurations.

    ``comparison`` is the DataFrame of ``t2fsnn.experiments.ablation.first_spike_comparison``.
    """
    names = list(dict.fromkeys(comparison.columns.get_level_values(0)))
    layers = list(comparison.index)
    width = 0.8 / max(len(names), 1)
    fig, (ax_first, ax_spikes) = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    for index, name in enumerate(names):
        positions = [i + (index - (len(names) - 1) / 2) * width for i in range(len(layers))]
        ax_first.bar(positions, list(comparison[(name, "mean first spike")]), width, label=name)
        ax_spikes.bar(positions, list(comparison[(name, "spikes per image")]), width, label=name)
    for ax, label in ((ax_first, "mean first spike (local step)"), (ax_spikes, "spikes per image")):
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    return fig


_CODING_STYLES = {
    "rate": ("C7", "-"), "phase": ("C2", "-"), "burst": ("C1", "-"), "T2FSNN": ("C0", "--"),
    "T2FSNN+GO": ("C4", "--"), "T2FSNN+EF": ("C3", "-."), "T2FSNN+GO+EF": ("C3", "-"),
}


def coding_inference_curves(curves, reference: Optional[float] = None, reference_label: str = "converted ANN",
                            title: Optional[str] = None, floor: Optional[float] = None):
    """Fig. 6: accuracy versus time step of every coding, on a logarithmic time axis.

    ``curves`` is a DataFrame indexed by step (1, 2, ...) with one column of accuracies
    (percent) per coding, NaN beyond a coding's horizon (``t2fsnn.experiments.comparison.accuracy_curves``).
    ``floor`` sets the lower end of the accuracy axis (default: 10 points below the best).
    """
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 4), constrained_layout=True)
    steps = np.asarray(curves.index, dtype=float)
    best = 0.0
    for j, name in enumerate(curves.columns):
        colour, style = _CODING_STYLES.get(name, (f"C{j % 10}", "-"))
        values = np.asarray(curves[name], dtype=float)
        ax.plot(steps, values, color=colour, linestyle=style, linewidth=1.6, label=name)
        if np.isfinite(values).any():
            best = max(best, float(np.nanmax(values)))
    if reference is not None:
        ax.axhline(reference, color="k", linestyle=":", linewidth=1, label=f"{reference_label} ({reference:.2f} %)")
        best = max(best, reference)
    ax.set_xscale("log")
    ax.set_ylim(best - 10 if floor is None else floor, best + 1)
    ax.set_xlabel("time step")
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize=8, loc="lower right", ncol=2)
    ax.grid(alpha=0.3, which="both")
    if title:
        ax.set_title(title)
    return fig


_FRONT_AXES = {"latency": "pipeline latency (steps)", "settled latency": "settled latency (steps)",
               "spikes": "spikes per image (hidden layers)"}


def design_space_fronts(table, fronts, marked=None, floor: Optional[float] = None, reference_label: str = "working point"):
    """Accuracy against each cost of the design space, every configuration and its Pareto front.

    ``table`` is a design-space table (``t2fsnn.experiments.design_space.evaluate_grid``); ``fronts``
    maps a cost column (``"latency"``, ``"spikes"``, ...) to its front
    (``t2fsnn.experiments.design_space.pareto_front``), one panel each. The row marked ``reference``
    is drawn as a star labelled ``reference_label``; ``marked`` maps labels to further rows
    (e.g. other kernels at the working point) drawn with their own markers. ``floor``
    sets the lower end of the accuracy axis (default: 10 points below the best); the
    number of configurations below it is given in the panel.
    """
    import numpy as np

    marked = dict(marked or {})
    fig, axes = plt.subplots(1, len(fronts), figsize=(5.2 * len(fronts), 4), constrained_layout=True, squeeze=False)
    accuracy = np.asarray(table["accuracy"], dtype=float)
    best = max([float(accuracy.max())] + [float(row["accuracy"]) for row in marked.values()])
    low = best - 10 if floor is None else floor
    hidden = int((accuracy < low).sum())
    windows = sorted(set(int(T) for T in table["T"]))
    for ax, (cost, front) in zip(axes[0], fronts.items()):
        for j, T in enumerate(windows):
            rows = table[table["T"] == T]
            ax.scatter(rows[cost], rows["accuracy"], s=14, color=f"C{j % 10}", alpha=0.45, label=f"T = {T}")
        ax.plot(front[cost], front["accuracy"], color="k", linewidth=1.2, drawstyle="steps-post", zorder=3)
        ax.scatter(front[cost], front["accuracy"], s=28, facecolors="none", edgecolors="k", zorder=4,
                   label="Pareto front")
        reference = table[table["reference"].astype(bool)]
        ax.scatter(reference[cost], reference["accuracy"], s=180, marker="*", color="gold", edgecolors="k",
                   zorder=5, label=reference_label)
        for k, (label, row) in enumerate(marked.items()):
            ax.scatter([row[cost]], [row["accuracy"]], s=70, marker="DPX^v"[k % 5], color=f"C{(k + 6) % 10}",
                       edgecolors="k", zorder=5, label=label)
        ax.set_ylim(low, best + 0.5)
        ax.set_xlabel(_FRONT_AXES.get(cost, cost))
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        if hidden:
            ax.text(0.98, 0.02, f"{hidden} configurations below {low:.1f} %", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=8)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig
