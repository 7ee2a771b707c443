"""Speed of the spiking engines as ratios to one forward pass of the converted ANN on the same batch."""
from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import pandas as pd
import torch

from t2fsnn import models
from t2fsnn.snn.config import TTFSConfig
from t2fsnn.snn.conversion import convert
from t2fsnn.training import resolve_device

__all__ = ["time_call", "time_against", "engine_timings", "default_methods", "coding_methods", "recorded_runs", "recorded_ratio", "recorded_certificates",
           "report"]

INPUT_SHAPES = {"mnist_cnn": (1, 28, 28), "vgg_small": (3, 32, 32), "vgg16": (3, 32, 32)}


#: Repeats of the converted-ANN pass, the denominator of every ratio: it is short, so more of them cost
#: little and steady the ratios on a machine whose speed drifts between calls.
ANN_REPEATS = 15


def time_call(fn: Callable[[], object], device: torch.device, repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds, synchronising CUDA around each call."""
    def synced():
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        synced()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        synced()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_against(fn: Callable[[], object], reference: Callable[[], object], device: torch.device, repeats: int = 3,
                 reference_repeats: int = 3, warmup: int = 1) -> tuple[float, float, float]:
    """``(seconds, reference seconds, ratio)``: medians of ``fn()``'s and ``reference()``'s wall times, and the
    median of the ratios of each call of ``fn`` to the median of ``reference_repeats`` calls of ``reference`` timed
    just before it. Pairing the two cancels the drift of a machine whose speed changes between calls."""
    for _ in range(warmup):
        time_call(fn, device, 1, warmup=0)
    seconds, references, ratios = [], [], []
    for _ in range(repeats):
        reference_seconds = time_call(reference, device, reference_repeats, warmup=0)
        seconds.append(time_call(fn, device, 1, warmup=0))
        references.append(reference_seconds)
        ratios.append(seconds[-1] / reference_seconds)
    return statistics.median(seconds), statistics.median(references), statistics.median(ratios)


def default_methods(T: int = 20, tau: float = 5.0, td: float = 0.0, ef_start: int = 10, clock: bool = True):
    """``[(label, config, engine)]``: the exact engine with and without early firing, and the clock reference."""
    methods = [
        ("T2FSNN exact", TTFSConfig(T=T, tau=tau, td=td), "exact"),
        (f"T2FSNN+EF exact (ef_start={ef_start})", TTFSConfig(T=T, tau=tau, td=td, ef_start=ef_start), "exact"),
    ]
    if clock:
        methods += [
            ("T2FSNN clock", TTFSConfig(T=T, tau=tau, td=td), "clock"),
            (f"T2FSNN+EF clock (ef_start={ef_start})", TTFSConfig(T=T, tau=tau, td=td, ef_start=ef_start), "clock"),
        ]
    return methods


def coding_methods(rate_T: int, phase_T: int, burst_T: int, T: int = 20, tau: float = 5.0, ef_start: int = 10,
                   rate_input: str = "constant"):
    """``[(label, config, engine)]`` for rate, phase and burst coding at the given latencies, and T2FSNN (+EF)."""
    from t2fsnn.snn.codings import BurstConfig, PhaseConfig, RateConfig

    return [
        (f"rate ({rate_input} input), {rate_T} steps", RateConfig(T=rate_T, input=rate_input), "clock"),
        (f"phase, {phase_T} steps", PhaseConfig(T=phase_T), "clock"),
        (f"burst, {burst_T} steps", BurstConfig(T=burst_T), "clock"),
        ("T2FSNN exact", TTFSConfig(T=T, tau=tau), "exact"),
        (f"T2FSNN+EF exact (ef_start={ef_start})", TTFSConfig(T=T, tau=tau, ef_start=ef_start), "exact"),
    ]


@torch.no_grad()
def engine_timings(
    model_names: Sequence[str] = ("mnist_cnn", "vgg_small"),
    batch_size: int = 256,
    device: str = "auto",
    methods: Optional[Iterable] = None,
    repeats: int = 3,
    seed: int = 0,
    networks: Optional[dict] = None,
) -> pd.DataFrame:
    """Time each method on one batch per model; ``ratio`` is time / one converted-ANN forward pass.

    Unless ``networks`` supplies converted networks by model name, each model is built
    untrained and converted on the batch itself: every engine does dense tensor work
    whose cost does not depend on the weights.
    """
    for name in model_names:
        if name not in INPUT_SHAPES:
            raise ValueError(f"unknown model {name!r}: choose from {', '.join(INPUT_SHAPES)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} is not allowed: it must be an integer >= 1")
    dev = resolve_device(device)
    methods = list(default_methods() if methods is None else methods)
    rows = []
    for name in model_names:
        generator = torch.Generator().manual_seed(seed)
        batch = torch.rand((batch_size,) + INPUT_SHAPES[name], generator=generator)
        if networks and name in networks:
            net = networks[name]
        else:
            torch.manual_seed(seed)
            net = convert(models.build(name, 10).eval(), batch)
        net = net.to(dev).eval()
        batch = batch.to(dev)
        ann = time_call(lambda: net.ann_forward(batch), dev, max(repeats, ANN_REPEATS))
        rows.append(_row(name, dev, "converted ANN forward", ann, 1.0, None, batch_size))
        for label, cfg, engine in methods:
            seconds, _, ratio = time_against(lambda: net.simulate(batch, cfg, engine=engine),
                                             lambda: net.ann_forward(batch), dev, repeats)
            latency = net.simulate(batch[:1], cfg, engine="exact" if engine == "clock" else engine).latency
            rows.append(_row(name, dev, label, seconds, ratio, latency, batch_size))
    return pd.DataFrame(rows)


def _row(model: str, device: torch.device, method: str, seconds: float, ratio: float, latency, batch: int) -> dict:
    return {
        "model": model,
        "device": _device_name(device),
        "method": method,
        "latency (steps)": latency,
        "ms per batch": 1000.0 * seconds,
        "ms per image": 1000.0 * seconds / batch,
        "ratio to ANN": ratio,
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"


def report(table: pd.DataFrame, output=None) -> None:
    """Print a timing table and, if ``output`` is given, write it as CSV."""
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    if output:
        table.to_csv(output, index=False)


def _results_folder(folder=None) -> Path:
    return Path(folder) if folder else Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def recorded_runs(folder=None) -> list[tuple[dict, pd.DataFrame]]:
    """Benchmark tables recorded elsewhere (``benchmarks/results``), each with its provenance."""
    import yaml

    folder = _results_folder(folder)
    index = folder / "runs.yml"
    if not index.exists():
        return []
    runs = yaml.safe_load(index.read_text()) or []
    return [(run, pd.read_csv(folder / run["file"])) for run in runs if (folder / run["file"]).exists()]


def recorded_ratio(table: pd.DataFrame, model: str, method_start: str, device_start: str = "NVIDIA",
                   file: Optional[str] = None, column: str = "ratio to ANN") -> float:
    """The ratio to ANN (or another ``column``) of the first row of ``table`` (recorded runs, with their
    ``file``) for ``model`` whose method and device start as given; NaN where none was recorded."""
    if not len(table):
        return float("nan")
    rows = table[(table["model"] == model) & table["device"].str.startswith(device_start)
                 & table["method"].str.startswith(method_start) & ((table["file"] == file) if file else True)]
    return float(rows[column].iloc[0]) if len(rows) else float("nan")


CERTIFICATE_KIND = "early_firing"  # runs.yml entries written by benchmarks/early_firing.py


def recorded_certificates(folder=None) -> pd.DataFrame:
    """Per network and early-firing method of each recorded ``early_firing`` run: its cost in ANN passes,
    the neurons whose spike step differs from the clock and how many of them are certified ties."""
    columns = ["network", "setting", "method", "test images", "ANN passes", "differing", "certified ties", "machine"]
    rows = []
    for run, timings in recorded_runs(folder):
        if run.get("kind") != CERTIFICATE_KIND:
            continue
        ties = pd.read_csv(_results_folder(folder) / run["ties"])
        for (network, method), layers in ties.groupby(["network", "method"], sort=False):
            timed = timings[timings["method"].str.startswith(f"T2FSNN+EF exact, {method} ")]
            if len(timed) != 1:
                raise ValueError(f"{run['file']}: expected one timing row for early-firing method {method!r}, "
                                 f"found {len(timed)}")
            rows.append({"network": network, "setting": run.get("setting"), "method": method, "test images": run.get("images"),
                         "ANN passes": float(timed["ratio to ANN"].iloc[0]),
                         "differing": int(layers["differing"].sum()),
                         "certified ties": int(layers["certified ties"].sum()), "machine": run.get("machine")})
    return pd.DataFrame(rows, columns=columns)
