"""DNN-to-SNN conversion: batch-norm folding and data-based weight normalization."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Iterable, Optional, Union

import torch
from torch import nn

from t2fsnn.checks import check_finite_tensor, check_finite_weights

__all__ = ["convert", "SpikingNetwork", "Block", "UnsupportedLayerError", "NORMALIZATIONS", "neuron_percentile_max"]

# how a layer's normalisation factor is taken from its activations on the calibration images:
#   "neuron_max": each neuron's percentile over the images (zeros included), then the largest
#                 over the layer's neurons -- the authors' code;
#   "pooled":     one percentile over all positive activations of the layer pooled together.
NORMALIZATIONS = ("neuron_max", "pooled")

SUPPORTED = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, nn.Dropout)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.Flatten)

# above this many values per layer, the percentile is taken on an evenly strided sample
_MAX_PERCENTILE_VALUES = 16_000_000


class UnsupportedLayerError(ValueError):
    """The model holds a layer that conversion cannot map to spiking neurons."""


@dataclass
class Block:
    """The synapses into one layer: routing of the previous layer's spikes, then weights.

    ``routing`` holds pooling and flattening applied to the previous layer's output
    (max-pooling passes the earliest, i.e. largest, spike of its window); ``synapse``
    is the (normalized) convolution or linear map, bias included.
    """

    routing: nn.Sequential
    synapse: nn.Module
    name: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.synapse(self.routing(x))


def _flatten_modules(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        return [leaf for child in model for leaf in _flatten_modules(child)]
    return [model]


def _fold_batchnorm(layer: nn.Module, bn: nn.Module) -> nn.Module:
    """A copy of ``layer`` whose weights include the affine map of the following batch-norm."""
    folded = copy.deepcopy(layer)
    with torch.no_grad():
        gain = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shape = (-1,) + (1,) * (folded.weight.dim() - 1)
        folded.weight.mul_(gain.reshape(shape))
        bias = folded.bias if folded.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = (bias - bn.running_mean) * gain + bn.bias
        folded.bias = nn.Parameter(new_bias)
    return folded


def _split_blocks(model: nn.Module) -> list[tuple[list[nn.Module], nn.Module, bool]]:
    """``[(routing modules, synapse, ends with ReLU)]`` with batch-norm folded and dropout dropped."""
    modules = _flatten_modules(model)
    for position, module in enumerate(modules):
        if not isinstance(module, SUPPORTED):
            allowed = ", ".join(cls.__name__ for cls in SUPPORTED)
            raise UnsupportedLayerError(
                f"layer {position} ({module.__class__.__name__}: {module}) cannot be converted; "
                f"supported layers are {allowed}"
            )
    modules = [m for m in modules if not isinstance(m, nn.Dropout)]
    blocks: list[tuple[list[nn.Module], nn.Module, bool]] = []
    routing: list[nn.Module] = []
    synapse = None
    for position, module in enumerate(modules):
        if isinstance(module, _POOLS):
            if synapse is not None:
                raise UnsupportedLayerError(
                    f"{module.__class__.__name__} between {synapse.__class__.__name__} and its ReLU is not "
                    f"supported: place pooling after the activation"
                )
            routing.append(module)
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            if synapse is not None:
                raise UnsupportedLayerError(
                    f"{module.__class__.__name__} follows {synapse.__class__.__name__} without a ReLU between them"
                )
            synapse = copy.deepcopy(module)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if synapse is None:
                raise UnsupportedLayerError(
                    f"{module.__class__.__name__} must directly follow a Conv2d or Linear layer to be folded"
                )
            synapse = _fold_batchnorm(synapse, module)
        elif isinstance(module, nn.ReLU):
            if synapse is None:
                raise UnsupportedLayerError("ReLU must follow a Conv2d or Linear layer")
            blocks.append((routing, synapse, True))
            routing, synapse = [], None
    if synapse is None:
        raise UnsupportedLayerError("the model must end with a Conv2d or Linear output layer (logits, no ReLU)")
    blocks.append((routing, synapse, False))
    return blocks


def _iterate_batches(calibration, batch_size: int = 256) -> Iterable[torch.Tensor]:
    if isinstance(calibration, torch.Tensor):
        for start in range(0, len(calibration), batch_size):
            yield calibration[start:start + batch_size]
    else:
        for batch in calibration:
            yield batch[0] if isinstance(batch, (tuple, list)) else batch


def _percentile(values: torch.Tensor, percentile: float) -> float:
    if values.numel() == 0:
        return 1.0
    if values.numel() > _MAX_PERCENTILE_VALUES:
        values = values[:: values.numel() // _MAX_PERCENTILE_VALUES + 1]
    sorted_values, _ = torch.sort(values.double())
    position = (percentile / 100.0) * (sorted_values.numel() - 1)
    low = int(position)
    high = min(low + 1, sorted_values.numel() - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low))


def _top_values(values: torch.Tensor, k: int, kept: Optional[torch.Tensor]) -> torch.Tensor:
    """The ``k`` largest of ``values`` [b, n] and ``kept`` [<=k, n] along the first axis, in descending order."""
    both = values if kept is None else torch.cat([kept, values])
    return torch.topk(both, min(k, len(both)), dim=0).values


def neuron_percentile_max(batches: Iterable[torch.Tensor], count: int, percentile: float) -> float:
    """The largest, over neurons, of each neuron's ``percentile`` over ``count`` images (zeros included).

    ``batches`` yields ``[b, ...]`` activations of one layer; together they hold ``count``
    images. The percentile interpolates linearly between order statistics (as
    ``numpy.percentile``); only the top ``count - floor(position)`` values of each neuron
    are kept, so memory stays a few values per neuron.
    """
    k = _values_needed(count, percentile)
    kept = None
    for batch in batches:
        kept = _top_values(batch.flatten(1).double(), k, kept)
    return _percentile_max(kept, count, percentile)


def _values_needed(count: int, percentile: float) -> int:
    """How many of each neuron's largest values the percentile over ``count`` images reads."""
    return count - int((percentile / 100.0) * (count - 1))


def _percentile_max(kept: Optional[torch.Tensor], count: int, percentile: float) -> float:
    position = (percentile / 100.0) * (count - 1)
    low = int(position)
    k = count - low  # sorted[low] is the k-th largest value
    if kept is None or len(kept) < k:
        raise ValueError(f"expected activations of {count} images, got fewer")
    at_low = kept[k - 1]
    at_high = kept[k - 2] if k >= 2 else at_low
    per_neuron = at_low + (at_high - at_low) * (position - low)
    return float(per_neuron.max())


class SpikingNetwork(nn.Module):
    """A converted network: normalized blocks that every coding engine runs.

    Spiking layers are the input layer and the output of every hidden block; the
    last block is the output layer, which integrates but never fires.
    """

    def __init__(self, blocks: list[Block], scales: list[float], percentile: float,
                 input_shape: Optional[tuple[int, ...]] = None, normalization: str = "neuron_max"):
        super().__init__()
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.blocks = blocks
        for index, block in enumerate(blocks):
            self.add_module(f"routing{index}", block.routing)
            self.add_module(f"synapse{index}", block.synapse)
        self.scales = scales
        self.percentile = percentile
        self.normalization = normalization

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Images as the network expects them: floats in [0, 1] of ``input_shape``, on its device and dtype."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"images of type {type(x).__name__} are not allowed: give a tensor [B, C, H, W]")
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"images of shape {tuple(x.shape)} are not allowed: this network takes "
                             f"[B, {', '.join(map(str, self.input_shape))}]")
        if not x.is_floating_point():
            raise ValueError(f"images of dtype {x.dtype} are not allowed: give floats in [0, 1] (e.g. uint8 / 255)")
        # a NaN potential never crosses a threshold: the neuron would go silent without a word
        check_finite_tensor("images", x)
        weight = next(self.parameters())
        return x.to(device=weight.device, dtype=weight.dtype)

    @property
    def num_spiking_layers(self) -> int:
        return len(self.blocks)

    @property
    def layer_names(self) -> list[str]:
        """Names of the spiking layers, input first."""
        return ["input"] + [block.name for block in self.blocks[:-1]]

    @property
    def output_name(self) -> str:
        return self.blocks[-1].name

    @torch.no_grad()
    def activations(self, x: torch.Tensor, clip: bool = True) -> list[torch.Tensor]:
        """The converted ANN's activation of every spiking layer (input first), in [0, 1] when clipped."""
        outputs = [x]
        for block in self.blocks[:-1]:
            a = torch.relu(block(outputs[-1]))
            outputs.append(a.clamp(max=1.0) if clip else a)
        return outputs

    @torch.no_grad()
    def ann_forward(self, x: torch.Tensor, clip: bool = True) -> torch.Tensor:
        """Logits of the converted ANN."""
        return self.blocks[-1](self.activations(x, clip=clip)[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ann_forward(x)

    def synaptic_operations(self, image_shape: tuple[int, ...]) -> list[tuple[int, int]]:
        """Per block: (multiply-accumulates of one ANN pass, neurons it feeds)."""
        counts = []
        x = torch.zeros((1,) + tuple(image_shape), device=self.device)
        for block in self.blocks:
            routed = block.routing(x)
            y = block.synapse(routed)
            if isinstance(block.synapse, nn.Conv2d):
                w = block.synapse.weight
                macs = y.numel() * w[0].numel()
            else:
                macs = block.synapse.weight.numel()
            counts.append((int(macs), int(y.numel())))
            x = torch.relu(y)
        return counts

    def simulate(self, x: torch.Tensor, cfg, engine: str = "exact", progress: bool = False):
        """Run spiking inference on a batch. ``cfg`` picks the coding (``TTFSConfig`` for T2FSNN)."""
        from t2fsnn.snn.engines import simulate

        return simulate(self, x, cfg, engine=engine, progress=progress)

    def optimize_kernels(self, images, cfg, **options):
        """Gradient-based optimization of each layer's ``tau`` and ``td`` (Section III-B).

        Returns ``(optimized TTFSConfig, history DataFrame)``; see ``t2fsnn.snn.optimization``.
        """
        from t2fsnn.snn.optimization import optimize_kernels

        return optimize_kernels(self, images, cfg, **options)


def _layer_name(synapse: nn.Module, counters: dict) -> str:
    kind = "conv" if isinstance(synapse, nn.Conv2d) else "fc"
    counters[kind] = counters.get(kind, 0) + 1
    return f"{kind}{counters[kind]}"


@torch.no_grad()
def convert(model: nn.Module, calibration: Union[torch.Tensor, Iterable], percentile: float = 99.9,
            normalization: str = "neuron_max") -> SpikingNetwork:
    """Convert a trained ReLU network into a ``SpikingNetwork``.

    Batch-norm is folded into the preceding convolution or linear layer and dropout
    dropped. Each hidden layer ``l`` is scaled by ``lambda_l``, a high percentile of its
    activations on ``calibration`` images (Rueckauer et al. 2017):
    ``W_l <- W_l * lambda_{l-1} / lambda_l`` and ``b_l <- b_l / lambda_l``, with
    ``lambda_0 = 1`` for inputs already in [0, 1]. The output layer keeps the
    original logits. ``normalization`` picks the statistic (see ``NORMALIZATIONS``):
    ``"neuron_max"``, the authors' (each neuron's percentile over the images, zeros
    included, then the layer's maximum), or ``"pooled"`` (the percentile of the
    layer's positive activations pooled).
    """
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile <= 100:
        raise ValueError(f"percentile={percentile!r} is not allowed: it must be in (0, 100]")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization={normalization!r} is not allowed: choose one of "
                         f"{', '.join(map(repr, NORMALIZATIONS))}")
    check_finite_weights(model)
    was_training = model.training
    model.eval()
    try:
        parts = _split_blocks(model)
    finally:
        model.train(was_training)
    counters: dict = {}
    blocks = [Block(nn.Sequential(*[copy.deepcopy(m) for m in routing]), synapse.float().eval(), _layer_name(synapse, counters))
              for routing, synapse, _ in parts]

    device = blocks[0].synapse.weight.device
    images = [batch.to(device=device, dtype=torch.float32) for batch in _iterate_batches(calibration)]
    start = 0
    for batch in images:  # a NaN image would set the normalisation factors silently
        check_finite_tensor("calibration images", batch, offset=start)
        start += len(batch)
    seen = sum(len(batch) for batch in images)
    if seen == 0:
        raise ValueError("calibration holds no images: pass a batch or loader of training images")
    input_shape = tuple(images[0].shape[1:])

    # one pass over the images; per layer, the top values of each neuron or the pooled positives
    hidden = len(blocks) - 1
    kept: list = [None] * hidden
    pooled: list[list[torch.Tensor]] = [[] for _ in range(hidden)]
    k = _values_needed(seen, percentile)
    for a in images:
        for index, block in enumerate(blocks[:-1]):
            a = torch.relu(block(a))
            if normalization == "neuron_max":
                kept[index] = _top_values(a.flatten(1).double(), k, kept[index])
            else:
                pooled[index].append(a[a > 0].cpu())
    scales = [1.0]
    for index in range(hidden):
        if normalization == "neuron_max":
            scale = _percentile_max(kept[index], seen, percentile)
        else:
            scale = _percentile(torch.cat(pooled[index]), percentile)
        scales.append(scale if scale > 0 else 1.0)  # a silent layer keeps its weights

    for index, block in enumerate(blocks):
        previous, current = scales[index], (scales[index + 1] if index + 1 < len(scales) else 1.0)
        block.synapse.weight.mul_(previous / current)
        if block.synapse.bias is not None:
            block.synapse.bias.div_(current)
    return SpikingNetwork(blocks, scales, float(percentile), input_shape, normalization)
