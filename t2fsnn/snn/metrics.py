"""Metrics of spiking inference: accuracy over time, spikes, first spikes, spike-time histograms, energy."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

__all__ = ["Evaluation", "evaluate", "normalized_energy", "ENERGY_PARAMETERS", "spike_time_counts"]

# (E_dyn, E_sta) per neuromorphic architecture, as used by the paper (after Park et al. 2019)
ENERGY_PARAMETERS = {"truenorth": (0.4, 0.6), "spinnaker": (0.64, 0.36)}


def normalized_energy(spikes, latency, ref_spikes, ref_latency, hardware: str) -> float:
    """``E = (spikes / ref_spikes) * E_dyn + (latency / ref_latency) * E_sta``.

    Both terms are relative to a reference coding (rate coding in the paper), so the
    reference itself has energy 1.
    """
    if hardware not in ENERGY_PARAMETERS:
        raise ValueError(f"hardware={hardware!r} is not allowed: choose one of {', '.join(ENERGY_PARAMETERS)}")
    for name, value in (("ref_spikes", ref_spikes), ("ref_latency", ref_latency)):
        if not value > 0:
            raise ValueError(f"{name}={value!r} is not allowed: the reference must be > 0")
    for name, value in (("spikes", spikes), ("latency", latency)):
        if value < 0:
            raise ValueError(f"{name}={value!r} is not allowed: it must be >= 0")
    e_dyn, e_sta = ENERGY_PARAMETERS[hardware]
    return float(spikes / ref_spikes * e_dyn + latency / ref_latency * e_sta)


def spike_time_counts(spike_times: torch.Tensor, latency: int) -> torch.Tensor:
    """How many spikes of one layer fall on each global step (``-1`` entries ignored)."""
    times = spike_times[spike_times >= 0]
    return torch.bincount(times.flatten().cpu(), minlength=latency)[:latency]


@dataclass
class Evaluation:
    """Spiking inference aggregated over a dataset."""

    accuracy: float
    accuracy_over_time: np.ndarray
    spikes_per_image: float
    spikes_per_layer: np.ndarray
    latency: int
    num_images: int
    layer_names: list
    first_spike: Optional[np.ndarray] = None
    spike_time_counts: Optional[list] = None
    extra: dict = field(default_factory=dict)
    predictions: Optional[np.ndarray] = None  # each image's class at the last step
    config: object = None  # the configuration simulated

    @property
    def hidden_spikes_per_image(self) -> float:
        """Spikes per image of the hidden layers, the authors' count (input layer left out)."""
        return float(self.spikes_per_layer[1:].sum())

    @property
    def input_spikes_per_image(self) -> float:
        """Spikes per image of the input layer, reported apart."""
        return float(self.spikes_per_layer[0])

    def accuracy_at(self, step: int) -> float:
        """Accuracy after ``step`` steps (clamped to the latency)."""
        return float(self.accuracy_over_time[min(max(step, 1), self.latency) - 1])

    def row(self) -> dict:
        """Accuracy, pipeline latency, hidden-layer spikes (the authors' count) and input spikes."""
        return {"accuracy": self.accuracy, "latency": self.latency, "spikes": self.hidden_spikes_per_image,
                "input spikes": self.input_spikes_per_image}


@torch.no_grad()
def evaluate(net, images: torch.Tensor, labels: torch.Tensor, cfg, batch_size: int = 256, engine: str = "exact",
             device="cpu", progress: bool = True) -> Evaluation:
    """Run ``net.simulate`` over ``images`` in batches and aggregate the metrics."""
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images and at least one image, got {len(images)} and {len(labels)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not allowed: it must be an integer >= 1")
    device = torch.device(device)
    home = net.device
    net.to(device)
    try:
        return _evaluate(net, images, labels, cfg, batch_size, engine, device, progress)
    finally:
        net.to(home)  # the caller's network stays where it was


def _evaluate(net, images, labels, cfg, batch_size, engine, device, progress) -> Evaluation:
    correct_over_time = None
    spikes_per_layer = None
    first_spike = None
    counts = None
    predictions = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="batches", disable=not progress, leave=False):
        x = images[start:start + batch_size].to(device)
        y = labels[start:start + batch_size].to(device)
        result = net.simulate(x, cfg, engine=engine)
        hits = (result.predictions_over_time == y[None]).sum(1).cpu()
        predictions.append(result.predictions_over_time[-1].cpu())
        layer_spikes = result.spikes_per_layer.sum(0).cpu().double()
        correct_over_time = hits if correct_over_time is None else correct_over_time + hits
        spikes_per_layer = layer_spikes if spikes_per_layer is None else spikes_per_layer + layer_spikes
        if result.spike_times is not None:
            firsts = torch.tensor([_earliest(t) for t in result.spike_times])
            first_spike = firsts if first_spike is None else torch.where(
                (first_spike < 0) | ((firsts >= 0) & (firsts < first_spike)), firsts, first_spike)
            layer_counts = [spike_time_counts(t, result.latency) for t in result.spike_times]
            counts = layer_counts if counts is None else [a + b for a, b in zip(counts, layer_counts)]
    n = len(images)
    accuracy_over_time = (100.0 * correct_over_time.double() / n).numpy()
    return Evaluation(
        accuracy=float(accuracy_over_time[-1]),
        accuracy_over_time=accuracy_over_time,
        spikes_per_image=float(spikes_per_layer.sum() / n),
        spikes_per_layer=(spikes_per_layer / n).numpy(),
        latency=int(result.latency),
        num_images=n,
        layer_names=list(net.layer_names),
        first_spike=None if first_spike is None else first_spike.numpy(),
        spike_time_counts=None if counts is None else [c.numpy() for c in counts],
        predictions=torch.cat(predictions).numpy(),
        config=cfg,
    )


def _earliest(times: torch.Tensor) -> int:
    fired = times[times >= 0]
    return int(fired.min()) if fired.numel() else -1
