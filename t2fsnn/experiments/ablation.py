"""The ablation study of Table I: T2FSNN with and without kernel optimization (GO) and early firing (EF).

Latency here is the pipeline's full length, ``(L - 1) * stride + T`` steps, as in the
paper's Table I (1280 steps without and 680 with early firing for VGG-16 at T = 80);
accuracy is read at that last step. ``spikes`` are per image in the hidden layers, the
authors' count (their code leaves the input layer out); the input layer's spikes are a
column of their own, ``input spikes``.
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import pandas as pd
import torch

from t2fsnn.experiments import paper_results
from t2fsnn.snn.config import TTFSConfig
from t2fsnn.snn.engines.ttfs import local_fire_steps
from t2fsnn.snn.metrics import Evaluation, evaluate

__all__ = ["ablation_configs", "run_ablation", "ablation_table", "with_paper", "first_spike_profile",
           "first_spike_comparison", "kernels_beside_authors", "VARIANTS"]

VARIANTS = ("T2FSNN", "T2FSNN+GO", "T2FSNN+EF", "T2FSNN+GO+EF")


def ablation_configs(cfg: TTFSConfig, optimized: TTFSConfig, ef_start: Optional[int] = None) -> dict:
    """The four rows of Table I: ``cfg`` and the optimized kernels, each without and with early firing.

    Early firing starts at ``ef_start``; ``None`` takes half the time window, as in the paper.
    """
    if not isinstance(cfg, TTFSConfig) or not isinstance(optimized, TTFSConfig):
        raise ValueError("cfg and optimized must both be TTFSConfig")
    if optimized.T != cfg.T:
        raise ValueError(f"optimized.T={optimized.T} is not allowed: the kernels were optimized for another "
                         f"window than cfg.T={cfg.T}")
    if ef_start is not None and (isinstance(ef_start, bool) or not isinstance(ef_start, int)
                                 or not 1 <= ef_start <= cfg.T):
        raise ValueError(f"ef_start={ef_start!r} is not allowed: choose an integer 1 .. T={cfg.T}, or None for T/2")
    optimized = TTFSConfig(T=cfg.T, tau=optimized.tau, td=optimized.td, theta0=cfg.theta0)
    return {"T2FSNN": cfg.without_early_firing(), "T2FSNN+GO": optimized,
            "T2FSNN+EF": cfg.with_early_firing(ef_start), "T2FSNN+GO+EF": optimized.with_early_firing(ef_start)}


def run_ablation(net, images: torch.Tensor, labels: torch.Tensor, configs: Mapping[str, TTFSConfig],
                 batch_size: int = 256, device="cpu", progress: bool = False) -> dict[str, Evaluation]:
    """``metrics.evaluate`` for each configuration (same images, same engine, same device)."""
    if not configs:
        raise ValueError("configs is empty: give at least one configuration")
    return {name: evaluate(net, images, labels, cfg, batch_size=batch_size, device=device, progress=progress)
            for name, cfg in configs.items()}


def ablation_table(evaluations: Mapping[str, Evaluation]) -> pd.DataFrame:
    """Table I layout: one row per method, columns latency (pipeline), accuracy (%), spikes per image
    of the hidden layers (as the paper counts them) and the input layer's spikes per image."""
    rows = {name: ev.row() for name, ev in evaluations.items()}
    frame = pd.DataFrame(rows).T[["latency", "accuracy", "spikes", "input spikes"]]
    frame["latency"] = frame["latency"].astype(int)
    frame.index.name = "method"
    return frame


def with_paper(ours: pd.DataFrame, paper: Mapping[str, pd.DataFrame], label: str = "this reproduction") -> pd.DataFrame:
    """Our table beside the paper's tables, with a column ``source`` naming each block (``paper, <dataset>``)."""
    blocks = [ours.assign(source=label)]
    for dataset, frame in paper.items():
        blocks.append(frame.assign(source=f"paper, {dataset}"))
    combined = pd.concat(blocks)
    columns = ["latency", "accuracy", "spikes"] + (["input spikes"] if "input spikes" in ours else [])
    return combined.reset_index().set_index(["source", "method"])[columns]


@torch.no_grad()
def first_spike_profile(net, images: torch.Tensor, cfg: TTFSConfig, batch_size: int = 256) -> pd.DataFrame:
    """Per spiking layer: the earliest spike over all images, the mean of each image's first spike
    (local steps of the layer's fire phase), and the spikes per image."""
    if len(images) == 0:
        raise ValueError("images is empty: give at least one image")
    L = net.num_spiking_layers
    earliest = np.full(L, np.iinfo(np.int64).max)
    first_sum = np.zeros(L)
    first_count = np.zeros(L)
    spikes = np.zeros(L)
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].float().to(next(net.parameters()).device)
        steps = local_fire_steps(net, x, cfg)
        for layer, t in enumerate(steps):
            flat = t.flatten(1)
            fired = flat >= 0
            spikes[layer] += fired.sum().item()
            big = torch.iinfo(flat.dtype).max
            per_image = torch.where(fired, flat, torch.full_like(flat, big)).min(1).values
            has = per_image < big
            if has.any():
                earliest[layer] = min(earliest[layer], int(per_image[has].min()))
                first_sum[layer] += per_image[has].double().sum().item()
                first_count[layer] += int(has.sum())
    n = len(images)
    return pd.DataFrame({
        "layer": list(net.layer_names),
        "earliest first spike": [int(e) if c else -1 for e, c in zip(earliest, first_count)],
        "mean first spike": [s / c if c else np.nan for s, c in zip(first_sum, first_count)],
        "spikes per image": spikes / n,
    }).set_index("layer")


def first_spike_comparison(net, images: torch.Tensor, configs: Mapping[str, TTFSConfig],
                           batch_size: int = 256) -> pd.DataFrame:
    """``first_spike_profile`` of several configurations side by side (column level 0: configuration)."""
    return pd.concat({name: first_spike_profile(net, images, cfg, batch_size) for name, cfg in configs.items()},
                     axis=1)


_PAPER_NETWORKS = {"vgg16": "VGG-16"}


def kernels_beside_authors(summary: pd.DataFrame, dataset: str, model: str, T: int) -> Optional[pd.DataFrame]:
    """Our kernels after GO (``optimization.kernel_summary``) beside the authors' released ones, layer by layer.

    ``None`` where the authors released no kernels for this dataset, network and window.
    """
    key = (paper_results.dataset_name(dataset), _PAPER_NETWORKS.get(model, model), T)
    if key not in paper_results.AUTHORS_KERNELS:
        return None
    authors = paper_results.authors_kernels(*key)
    if len(authors) != len(summary):
        raise ValueError(f"{len(summary)} spiking layers here but {len(authors)} in the authors' kernels for {key}")
    frame = pd.DataFrame({"tau after GO": summary["tau after"].to_numpy(), "td after GO": summary["td after"].to_numpy(),
                          "authors' layer": authors["authors' layer"].to_numpy(),
                          "authors' tau": authors["tau"].to_numpy(), "authors' td": authors["td"].to_numpy()},
                         index=summary.index)
    return frame

