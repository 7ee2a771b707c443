"""Early firing on a trained network: each method's cost in ANN passes, and its certified ties with the clock.

    python benchmarks/early_firing.py [--profile quick] [-p NAME VALUE ...] [--images 64]
                                      [--output timings.csv] [--ties ties.csv] [--repeats 2]

Loads (or trains) the ANN of notebook 05 under ``--profile`` and its ``-p`` overrides, converts
it as the book does, and runs :func:`t2fsnn.snn.engines.ttfs.certify_against_clock` on the first
``--images`` test images with the run's T, tau and early firing, for each early-firing method.
It times, on the same batch, one converted-ANN forward pass, the exact engine without early
firing and with each early-firing method (``--output``: rows as ``benchmarks/benchmark.py``
writes them). Then, per spiking layer, it counts the neurons whose step differs from the clock
and how many of them lie within the rounding bound of the threshold (certified ties; ``--ties``).
The script fails if any difference is not certified.
"""
import argparse
import sys

import pandas as pd
import torch

from t2fsnn import TTFSConfig
from t2fsnn.book import runner
from t2fsnn.experiments import experiment
from t2fsnn.experiments.benchmark import ANN_REPEATS, _row, report, time_against, time_call
from t2fsnn.snn.engines import ttfs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", help="write the timings to this CSV file")
    parser.add_argument("--ties", help="write the per-layer ties to this CSV file")
    args = parser.parse_args(argv)
    if args.images < 1:
        parser.error(f"--images {args.images} is not allowed: it must be >= 1")
    params = runner.resolve_parameters("05_ablation", args.profile, dict(args.p))
    exp = experiment.prepare(params["dataset"], params["model"], params["epochs"], params["lr"], params["batch_size"],
                             params["seed"], params["train_limit"], params["calibration_limit"], params["percentile"],
                             args.images, precision=params["precision"],
                             train_jpeg_quality=params["train_jpeg_quality"],
                             label_smoothing=params["label_smoothing"], normalization=params["normalization"])
    cfg = TTFSConfig(T=params["T"], tau=params["tau"], td=params["td"], ef_start=params["ef_start"])
    if cfg.ef_start is None:
        parser.error("the run has no early firing: set -p ef_start N")
    net, batch, device = exp.net.eval(), exp.x_test, torch.device("cpu")
    ann = time_call(lambda: net.ann_forward(batch), device, max(args.repeats, ANN_REPEATS))
    timings = [_row(params["model"], device, "converted ANN forward", ann, 1.0, None, len(batch))]

    def timed(config):
        """Seconds and ratio to the ANN pass timed beside each call."""
        seconds, _, ratio = time_against(lambda: net.simulate(batch, config, engine="exact"),
                                         lambda: net.ann_forward(batch), device, args.repeats)
        return seconds, ratio

    no_ef = TTFSConfig(T=cfg.T, tau=cfg.tau, td=cfg.td)
    timings.append(_row(params["model"], device, "T2FSNN exact (trained, test images)", *timed(no_ef),
                        no_ef.latency(net.num_spiking_layers), len(batch)))
    methods = [m for m in ttfs.EARLY_FIRING_METHODS if m != "auto"]  # auto is one of the others
    for method in methods:
        ttfs.early_firing_method = method
        timings.append(_row(params["model"], device, f"T2FSNN+EF exact, {method} (ef_start={cfg.ef_start}, trained, "
                            "test images)", *timed(cfg), cfg.latency(net.num_spiking_layers), len(batch)))
    report(pd.DataFrame(timings), args.output)
    rows = []
    for method in methods:
        ttfs.early_firing_method = method
        certificate = ttfs.certify_against_clock(exp.net, exp.x_test, cfg)
        for layer, (differing, certified) in enumerate(zip(certificate.differing, certificate.certified), start=1):
            rows.append({"network": params["model"], "method": method, "layer": layer, "differing": differing,
                         "certified ties": certified})
        if certificate.uncertified:
            print(f"not certified ({method}): {certificate.uncertified[:5]}", file=sys.stderr)
            return 1
    table = pd.DataFrame(rows)
    totals = table.groupby(["network", "method"])[["differing", "certified ties"]].sum()
    print(f"{args.images} test images, T={cfg.T}, tau={cfg.tau:g}, ef_start={cfg.ef_start}")
    print(totals.to_string())
    if args.ties:
        table.to_csv(args.ties, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
