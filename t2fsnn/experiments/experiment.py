"""The common start of every experiment notebook: the trained ANN, its conversion and the data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from t2fsnn import data, training
from t2fsnn.snn.conversion import SpikingNetwork, convert

__all__ = ["Experiment", "prepare"]


@dataclass
class Experiment:
    trained: training.TrainedModel
    net: SpikingNetwork
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_go: Optional[torch.Tensor]
    ann_accuracy: float  # converted ANN on x_test, percent


def _capped(limit: Optional[int], cap: Optional[int]) -> Optional[int]:
    """``limit`` no larger than ``cap`` (``None`` means no limit)."""
    if limit is None:
        return cap
    return limit if cap is None else min(limit, cap)


def prepare(dataset: str, model: str, epochs: int, lr: float, batch_size: int, seed: int,
            train_limit: Optional[int], calibration_limit: int, percentile: float, test_limit: Optional[int],
            go_train_limit: Optional[int] = None, with_go_images: bool = False, device="auto",
            network_device="cpu", precision: str = "fp32", normalization: str = "neuron_max",
            train_jpeg_quality: Optional[int] = None, label_smoothing: float = 0.0) -> Experiment:
    """Train (or load) the ANN, convert it on training images and load the test images.

    Calibration and kernel-optimization images never exceed ``train_limit``, the
    images the ANN was trained on. The network is returned on ``network_device``.
    """
    trained = training.train_or_load(dataset=dataset, model=model, epochs=epochs, lr=lr, batch_size=batch_size,
                                     seed=seed, train_limit=train_limit, device=device, progress=False,
                                     precision=precision, jpeg_quality=train_jpeg_quality,
                                     label_smoothing=label_smoothing)
    train_set = data.load(dataset, "train")
    x_calibration, _ = data.to_tensors(train_set, _capped(calibration_limit, train_limit))
    net = convert(trained.model, x_calibration, percentile=percentile, normalization=normalization)
    x_go = data.to_tensors(train_set, _capped(go_train_limit, train_limit))[0] if with_go_images else None
    x_test, y_test = data.to_tensors(data.load(dataset, "test"), test_limit)
    ann_accuracy = 100.0 * (net.ann_forward(x_test).argmax(1) == y_test).double().mean().item()
    return Experiment(trained, net.to(training.resolve_device(network_device)), x_test, y_test, x_go, ann_accuracy)
