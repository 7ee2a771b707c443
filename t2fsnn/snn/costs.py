"""Operation counts of spiking inference (Table III of the paper) beside synaptic operations.

Two ways of counting, both per image:

* **The paper's accounting** (Section V): rate coding needs one addition per spike;
  phase, burst and T2FSNN need one multiplication and one addition per spike (the
  spike's weight, burst amplitude or kernel value comes from a lookup table and
  scales the input). The ANN needs one multiplication and one addition per
  multiply-accumulate (MAC).
* **Synaptic operations**: every spike is delivered to every neuron it connects to,
  so it costs its layer's fan-out in additions (rate coding) or in multiplications
  and additions (the other codings). The fan-out of a spiking layer is its outgoing
  synapses per neuron, averaged over the layer: the MACs of the block it feeds
  divided by its number of neurons (with pooling, the neurons of a window share the
  window's synapses). An input layer that injects a current instead of spikes
  (rate coding with constant input) costs one full pass of the first block, a
  multiplication and an addition per synapse, at every step.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import torch

__all__ = ["ann_macs", "fan_out", "paper_operations", "synaptic_operations", "operations_table", "ADD_ONLY"]

# codings whose spikes are all equal, so that a spike needs only additions (names starting so)
ADD_ONLY = ("rate",)


def ann_macs(net, image_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one ANN forward pass of one image."""
    return int(sum(macs for macs, _ in net.synaptic_operations(tuple(image_shape))))


def fan_out(net, image_shape: Sequence[int]) -> np.ndarray:
    """[L] average outgoing synapses per neuron of each spiking layer (input first)."""
    macs = [m for m, _ in net.synaptic_operations(tuple(image_shape))]
    with torch.no_grad():
        neurons = [a[0].numel() for a in net.activations(torch.zeros((1,) + tuple(image_shape)))]
    return np.array([m / n for m, n in zip(macs, neurons)], dtype=float)


def _check_kind(kind: str) -> bool:
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"kind={kind!r} is not allowed: give the coding's name (e.g. 'rate', 'phase', 'T2FSNN')")
    return kind.lower().startswith(ADD_ONLY)


def paper_operations(kind: str, spikes: float) -> dict:
    """The paper's count: ``{"mult": ..., "add": ...}`` for ``spikes`` spikes per image of coding ``kind``."""
    if not spikes >= 0:
        raise ValueError(f"spikes={spikes!r} is not allowed: it must be >= 0")
    add_only = _check_kind(kind)
    return {"mult": 0.0 if add_only else float(spikes), "add": float(spikes)}


def synaptic_operations(kind: str, spikes_per_layer: Sequence[float], fan_outs: Sequence[float],
                        analog_input_steps: int = 0, input_macs: Optional[int] = None) -> dict:
    """Synaptic events (spikes times fan-out) as ``{"mult": ..., "add": ...}`` per image.

    ``analog_input_steps`` steps of an input layer that sends currents instead of spikes
    add ``input_macs`` multiplications and additions each.
    """
    add_only = _check_kind(kind)
    spikes = np.asarray(spikes_per_layer, dtype=float)
    fan = np.asarray(fan_outs, dtype=float)
    if spikes.shape != fan.shape:
        raise ValueError(f"spikes_per_layer has {spikes.size} layers but fan_outs has {fan.size}: give one value per spiking layer")
    if (spikes < 0).any():
        raise ValueError("spikes_per_layer holds negative counts")
    if analog_input_steps and input_macs is None:
        raise ValueError("analog_input_steps needs input_macs, the MACs of the first block")
    events = float((spikes * fan).sum())
    analog = float(analog_input_steps * (input_macs or 0))
    return {"mult": (0.0 if add_only else events) + analog, "add": events + analog}


def operations_table(net, image_shape: Sequence[int], spikes: Mapping[str, Sequence[float]],
                     analog_input_steps: Optional[Mapping[str, int]] = None) -> pd.DataFrame:
    """Table III: millions of multiplications and additions per image.

    ``spikes`` maps each coding to its spikes per layer (per image, counted up to its
    latency); ``analog_input_steps`` gives, for codings whose input layer sends currents,
    the steps it does so. The first row is the ANN.
    """
    macs = [m for m, _ in net.synaptic_operations(tuple(image_shape))]
    fans = fan_out(net, image_shape)
    total = float(sum(macs))
    rows = [{"coding": "ANN", "mult (paper)": total / 1e6, "add (paper)": total / 1e6,
             "mult (synaptic)": total / 1e6, "add (synaptic)": total / 1e6}]
    analog_input_steps = dict(analog_input_steps or {})
    for name, per_layer in spikes.items():
        paper = paper_operations(name, float(np.sum(per_layer)))
        syn = synaptic_operations(name, per_layer, fans, analog_input_steps.get(name, 0), macs[0])
        rows.append({"coding": name, "mult (paper)": paper["mult"] / 1e6, "add (paper)": paper["add"] / 1e6,
                     "mult (synaptic)": syn["mult"] / 1e6, "add (synaptic)": syn["add"] / 1e6})
    return pd.DataFrame(rows).set_index("coding")
