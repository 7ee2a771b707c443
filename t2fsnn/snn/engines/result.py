"""The result of one spiking inference run, shared by every coding."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import torch

__all__ = ["SimulationResult", "SpikeTimes"]


class SpikeTimes(Sequence):
    """Per spiking layer, ``[B, ...]`` global spike steps (int64, ``-1`` = none), made from an engine's local
    steps when a layer is first read: most runs only count spikes, so they skip these passes over every neuron.

    ``local``: per layer, local fire steps of any integer dtype, ``T`` = none; layer ``l``'s fire phase
    starts at global step ``offsets[l]``.
    """

    def __init__(self, local: list, offsets: list, T: int):
        if len(local) != len(offsets):
            raise ValueError(f"{len(local)} layers of steps but {len(offsets)} offsets: give one offset per layer")
        self._local, self._offsets, self._T = list(local), list(offsets), T
        self._global: list = [None] * len(local)

    def __len__(self) -> int:
        return len(self._local)

    def __getitem__(self, layer):
        if isinstance(layer, slice):
            return [self[i] for i in range(len(self))[layer]]
        if self._global[layer] is None:
            steps = self._local[layer]
            self._global[layer] = torch.where(steps < self._T, steps.long() + self._offsets[layer],
                                              torch.full((), -1, dtype=torch.long, device=steps.device))
            self._local[layer] = None
        return self._global[layer]

    def __repr__(self) -> str:
        return f"SpikeTimes({len(self)} layers)"


@dataclass
class SimulationResult:
    """What every engine returns for a batch of ``B`` images.

    predictions:            [B] prediction at the last step.
    predictions_over_time:  [latency, B] argmax of the output potential at each step;
                            -1 before the output layer receives its first input.
    num_spikes:             [B] spikes of all spiking layers (input layer included).
    spikes_per_layer:       [B, L] spikes per spiking layer, input first.
    latency:                steps of the whole inference.
    spike_times:            T2FSNN only: per spiking layer, [B, ...] global spike step, -1 = none.
    output_potential:       [B, classes] output potential at the last step.
    """

    predictions: torch.Tensor
    predictions_over_time: torch.Tensor
    num_spikes: torch.Tensor
    spikes_per_layer: torch.Tensor
    latency: int
    output_potential: torch.Tensor
    spike_times: Optional[list[torch.Tensor]] = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_run(cls, predictions_over_time: torch.Tensor, spikes_per_layer: torch.Tensor,
                 output_potential: torch.Tensor, **extra_fields) -> "SimulationResult":
        """The result of a run of ``len(predictions_over_time)`` steps; totals derived from the per-layer counts."""
        return cls(predictions=predictions_over_time[-1].clone(), predictions_over_time=predictions_over_time,
                   num_spikes=spikes_per_layer.sum(1), spikes_per_layer=spikes_per_layer,
                   latency=len(predictions_over_time), output_potential=output_potential, **extra_fields)

    @property
    def input_spikes(self) -> torch.Tensor:
        """[B] spikes of the input layer (the encoded image)."""
        return self.spikes_per_layer[:, 0]

    @property
    def hidden_spikes(self) -> torch.Tensor:
        """[B] spikes of the hidden layers: the authors' count (input layer left out)."""
        return self.spikes_per_layer[:, 1:].sum(1)

    def accuracy(self, labels: torch.Tensor) -> float:
        return 100.0 * (self.predictions.cpu() == labels.cpu()).float().mean().item()

    def accuracy_over_time(self, labels: torch.Tensor) -> torch.Tensor:
        """[latency] accuracy in percent at each step."""
        return 100.0 * (self.predictions_over_time.cpu() == labels.cpu()[None]).float().mean(1)
