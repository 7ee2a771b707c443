"""The ANN architectures, each an ``nn.Sequential`` that conversion understands.

Every architecture takes ``pool``: ``"max"`` (2x2 max-pooling, the paper's networks) or
``"avg"`` (2x2 average pooling). The average-pooling twins ``mnist_cnn_avg`` and
``vgg_small_avg`` are for converters that do not handle max-pooling (``t2fsnn.experiments.peers``).
"""
from __future__ import annotations

from functools import partial
from typing import Callable

from torch import nn

__all__ = ["build", "MODEL_NAMES", "POOLS", "default_in_channels"]

POOLS = ("max", "avg")


def _pool(pool: str) -> nn.Module:
    """A 2x2 pooling layer of kind ``pool``."""
    if pool not in POOLS:
        raise ValueError(f"pool={pool!r} is not allowed: choose one of {', '.join(map(repr, POOLS))}")
    return nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)


def _conv_bn_relu(cin: int, cout: int, kernel_size: int, padding: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel_size, padding=padding), nn.BatchNorm2d(cout), nn.ReLU()]


def _vgg(plan: list, in_channels: int, num_classes: int, hidden: int, dropout: float, input_size: int = 32,
         pool: str = "max") -> nn.Sequential:
    """Conv3x3+BN+ReLU blocks (``"M"`` = 2x2 pooling of kind ``pool``), then two hidden linear layers."""
    layers: list[nn.Module] = []
    channels, size = in_channels, input_size
    for item in plan:
        if item == "M":
            layers.append(_pool(pool))
            size //= 2
        else:
            layers += _conv_bn_relu(channels, item, 3, 1)
            channels = item
    layers += [
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(channels * size * size, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    ]
    return nn.Sequential(*layers)


def mnist_cnn(num_classes: int = 10, in_channels: int = 1, pool: str = "max") -> nn.Sequential:
    """The paper's MNIST CNN: conv 12@5x5 + BN + pool, conv 64@5x5 + BN + pool, linear (28x28 input)."""
    return nn.Sequential(
        *_conv_bn_relu(in_channels, 12, 5, 0), _pool(pool),
        *_conv_bn_relu(12, 64, 5, 0), _pool(pool),
        nn.Flatten(), nn.Dropout(0.5),
        nn.Linear(64 * 4 * 4, num_classes),
    )


def vgg16(num_classes: int = 10, in_channels: int = 3, pool: str = "max") -> nn.Sequential:
    """VGG-16 for 32x32 inputs: 13 conv layers, 5 pools, fc 512-512-classes.

    Dropout 0.1 in the classifier: with batch-norm there, 0.5 under-fits a CPU schedule of
    under 20 epochs (conversion removes dropout either way).
    """
    plan = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    return _vgg(plan, in_channels, num_classes, hidden=512, dropout=0.1, pool=pool)


def vgg_small(num_classes: int = 10, in_channels: int = 3, pool: str = "max") -> nn.Sequential:
    """A reduced VGG (6 conv layers, narrower) that trains on CIFAR-10 on a CPU in minutes per epoch."""
    plan = [32, 32, "M", 64, 64, "M", 128, 128, "M"]
    return _vgg(plan, in_channels, num_classes, hidden=256, dropout=0.3, pool=pool)


_BUILDERS: dict[str, Callable[..., nn.Sequential]] = {
    "mnist_cnn": mnist_cnn,
    "vgg16": vgg16,
    "vgg_small": vgg_small,
    # average-pooling twins, trained by the same recipes as the originals
    "mnist_cnn_avg": partial(mnist_cnn, pool="avg"),
    "vgg_small_avg": partial(vgg_small, pool="avg"),
}
MODEL_NAMES = tuple(_BUILDERS)


def default_in_channels(name: str) -> int:
    return 1 if name.startswith("mnist_cnn") else 3


def build(name: str, num_classes: int, in_channels: int | None = None) -> nn.Sequential:
    """Build an untrained model by name."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODEL_NAMES)}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes={num_classes!r} is not allowed: it must be an integer >= 2")
    channels = default_in_channels(name) if in_channels is None else in_channels
    return _BUILDERS[name](num_classes=num_classes, in_channels=channels)
