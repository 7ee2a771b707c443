"""Every notebook parameter, declared once: type, allowed values, description.

The runner checks each value against this table before any notebook starts.
To add a parameter, add one ``Param`` entry to ``PARAMS`` (and, where two
parameters constrain each other, a check to ``validate_all``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence

from t2fsnn import data as _data


@dataclass(frozen=True)
class Param:
    """One notebook parameter.

    ``type`` is ``int``, ``float``, ``str`` or ``bool``.  ``choices`` restricts
    to a list; ``low``/``high`` bound numbers (``low_open``/``high_open`` make
    the bound exclusive); ``nullable`` allows ``None``.
    """

    type: type
    description: str
    choices: Optional[Sequence[Any]] = None
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False

    def allowed(self) -> str:
        """A human-readable statement of the allowed values."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            kind = {int: "an integer", float: "a number", str: "a string", bool: "True or False"}[self.type]
            bounds = []
            if self.low is not None:
                bounds.append(f"{'>' if self.low_open else '>='} {self.low:g}")
            if self.high is not None:
                bounds.append(f"{'<' if self.high_open else '<='} {self.high:g}")
            text = kind + (" " + " and ".join(bounds) if bounds else "")
        return text + (", or None" if self.nullable else "")


PARAMS: Dict[str, Param] = {
    # data and model
    "dataset": Param(str, "dataset name", choices=_data.NAMES),
    "model": Param(str, "ANN architecture (t2fsnn.models)", choices=("mnist_cnn", "vgg_small", "vgg16")),
    "train_limit": Param(int, "use only the first N training images (None: all)", low=1, nullable=True),
    "test_limit": Param(int, "evaluate on the first N test images (None: all)", low=1, nullable=True),
    # ANN training
    "epochs": Param(int, "training epochs of the ANN", low=1),
    "lr": Param(float, "learning rate of the ANN (SGD)", low=0, low_open=True),
    "batch_size": Param(int, "mini-batch size", low=1),
    "seed": Param(int, "random seed", low=0),
    "train_jpeg_quality": Param(int, "train half of each batch on a JPEG round trip at this quality (None: the images as they are)",
                                low=1, high=100, nullable=True),
    "label_smoothing": Param(float, "label smoothing of the ANN's cross-entropy (0: none)", low=0, high=1, high_open=True),
    "precision": Param(str, "ANN training arithmetic: float32, or bfloat16 autocast (faster on CPUs with bf16 units)",
                       choices=("fp32", "bf16")),
    # conversion
    "calibration_limit": Param(int, "training images used to compute the normalisation percentiles", low=1),
    "percentile": Param(float, "activation percentile used for data-based normalisation", low=0, high=100, low_open=True),
    "normalization": Param(str, "normalisation statistic: each neuron's percentile, then the layer's maximum "
                           "(the authors'), or one percentile of the layer's positive activations",
                           choices=("neuron_max", "pooled")),
    # T2FSNN kernel and pipeline
    "T": Param(int, "time window (fire phase length) in time steps", low=1),
    "tau": Param(float, "kernel time constant tau", low=0, low_open=True),
    "td": Param(float, "kernel time delay t_d"),
    "ef_start": Param(int, "early-firing start step within the time window (None: no early firing); <= T", low=1, nullable=True),
    "engine": Param(str, "simulation engine", choices=("exact", "clock")),
    # gradient-based optimization of the kernels (GO)
    "go_steps": Param(int, "mini-batch steps of the kernel optimization", low=1),
    "go_lr": Param(float, "global learning rate of the kernel optimization (times the per-loss rates)", low=0, low_open=True),
    "go_batch_size": Param(int, "training images per kernel-optimization step", low=1),
    "go_train_limit": Param(int, "training images the kernel optimization draws from (None: all)", low=1, nullable=True),
    "go_tau_small": Param(float, "the small initial tau of the Fig. 4 experiment", low=0, low_open=True),
    "go_tau_large": Param(float, "the large initial tau of the Fig. 4 experiment", low=0, low_open=True),
    "go_max_target": Param(str, "ground truth of L_max: the earliest spike's value or the ANN's maximum",
                           choices=("first_spike", "ann")),
    "go_clip_targets": Param(bool, "train the kernels against activations clipped at 1 (the authors: unclipped)"),
    # baseline codings and their comparison (notebooks 06, 07)
    "rate_T": Param(int, "time steps simulated for rate coding", low=1),
    "phase_T": Param(int, "time steps simulated for phase coding", low=1),
    "burst_T": Param(int, "time steps simulated for burst coding", low=1),
    "rate_input": Param(str, "input of rate coding: constant current or Poisson spikes", choices=("constant", "poisson")),
    "burst_bias": Param(str, "burst coding adds the bias at every step (the authors' VGG-16 code) or once per "
                        "input cycle (their MNIST script)", choices=("every_step", "per_cycle")),
    "t2fsnn_latency": Param(str, "Table II latency of T2FSNN: the whole pipeline (the paper) or the settled latency",
                            choices=("pipeline", "settled")),
    "sim_batch_size": Param(int, "test images simulated together", low=1),
    "latency_tolerance": Param(float, "latency: steps until the accuracy stays within this many points of its final value", low=0),
    # the design space and the kernels chosen for the output (notebook 09, beyond the paper)
    "grid_T": Param(str, "design-space grid: comma-separated time windows T, e.g. '8,12,16,20'"),
    "grid_tau": Param(str, "design-space grid: comma-separated kernel time constants tau (all layers alike)"),
    "grid_ef_start": Param(str, "design-space grid: comma-separated early-firing starts in 1 .. min(T)-1, 'none' for no early firing"),
    "grid_td": Param(str, "design-space grid: comma-separated kernel delays t_d (all layers alike)"),
    "output_steps": Param(int, "mini-batch steps of the kernel search for the output (objective 'output')", low=1),
    "output_batch_size": Param(int, "training images per step of the kernel search for the output", low=1),
    "robustness_trainings": Param(str, "extra ANNs of the robustness table: ';'-separated changes of the training, "
                                  "e.g. 'seed:1 epochs:2; seed:2 lr:0.1' (keys epochs, lr, seed; '' for none)"),
    # run
    "device": Param(str, "compute device", choices=("auto", "cpu", "cuda")),
    # speed measurements (notebook 08)
    "benchmark_models": Param(str, "comma-separated models timed with every engine, the clock reference included"),
    "benchmark_large_models": Param(str, "comma-separated models timed with the exact engines only (may be empty)"),
    "benchmark_batch_size": Param(int, "images in the timed batch", low=1),
    "benchmark_repeats": Param(int, "timed repetitions (the median is reported)", low=1),
    "profile": Param(str, "name of the profile that produced the run (recorded, not used for computation)"),
}


def _get(name: str) -> Param:
    if name not in PARAMS:
        raise ValueError(f"unknown parameter {name!r}; allowed parameters: {', '.join(sorted(PARAMS))}")
    return PARAMS[name]


def _refuse(name: str, value: Any, spec: Param) -> ValueError:
    return ValueError(f"parameter {name}={value!r} is not allowed: it must be {spec.allowed()}")


def validate(name: str, value: Any) -> Any:
    """Check ``value`` for parameter ``name``; return it (ints become floats for float parameters).

    Raises ``ValueError`` naming the value and what is allowed.
    """
    spec = _get(name)
    if value is None:
        if spec.nullable:
            return None
        raise _refuse(name, value, spec)
    if spec.type is bool:
        if not isinstance(value, bool):
            raise _refuse(name, value, spec)
    elif spec.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _refuse(name, value, spec)
    elif spec.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _refuse(name, value, spec)
        value = float(value)
    elif spec.type is str:
        if not isinstance(value, str):
            raise _refuse(name, value, spec)
    if spec.choices is not None and value not in spec.choices:
        raise _refuse(name, value, spec)
    if spec.low is not None and (value < spec.low or (spec.low_open and value == spec.low)):
        raise _refuse(name, value, spec)
    if spec.high is not None and (value > spec.high or (spec.high_open and value == spec.high)):
        raise _refuse(name, value, spec)
    return value


def validate_all(values: Mapping[str, Any]) -> Dict[str, Any]:
    """Validate every entry, then the constraints between parameters."""
    out = {name: validate(name, value) for name, value in values.items()}
    ef, T = out.get("ef_start"), out.get("T")
    if ef is not None and T is not None and ef > T:
        raise ValueError(f"parameter ef_start={ef!r} is not allowed with T={T!r}: ef_start must be <= T (or None)")
    grid = [out.get(name) for name in ("grid_T", "grid_tau", "grid_ef_start", "grid_td")]
    if any(value is not None for value in grid) or "robustness_trainings" in out:
        from t2fsnn.experiments import design_space  # the notebook's own parsers: a bad list fails before any notebook starts

        if all(value is not None for value in grid):
            design_space.parse_grid(*grid)
        if "robustness_trainings" in out:
            design_space.parse_trainings(out["robustness_trainings"])
    return out


def parse(name: str, text: str) -> Any:
    """Turn a command-line string into a validated value of parameter ``name``'s type."""
    spec = _get(name)
    if not isinstance(text, str):
        return validate(name, text)
    stripped = text.strip()
    if spec.nullable and stripped.lower() in ("none", "null", ""):
        return None
    try:
        if spec.type is int:
            try:
                value = int(stripped)
            except ValueError:
                number = float(stripped)  # accept "1e3" or "20.0", refuse "1.5"
                if not number.is_integer():
                    raise
                value = int(number)
        elif spec.type is float:
            value = float(stripped)
        elif spec.type is bool:
            lowered = stripped.lower()
            if lowered in ("true", "1", "yes"):
                value = True
            elif lowered in ("false", "0", "no"):
                value = False
            else:
                raise ValueError(stripped)
        else:
            value = stripped
    except ValueError:
        raise _refuse(name, text, spec) from None
    return validate(name, value)


def describe() -> str:
    """A plain-text table of all parameters."""
    width = max(len(n) for n in PARAMS)
    return "\n".join(f"{n:<{width}}  {p.allowed():<45}  {p.description}" for n, p in sorted(PARAMS.items()))
