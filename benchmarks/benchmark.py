"""Engine speed as ratios to one converted-ANN forward pass on the same batch.

    python benchmarks/benchmark.py [--batch-size 256] [--device auto|cpu|cuda] [--fuse]
                                   [--ef-methods cutoffs events ...] [--output results.csv]

Runs on the CPU, and on CUDA as well when a GPU is present and --device is auto.
"""
import argparse
import sys

import pandas as pd
import torch

from t2fsnn.experiments.benchmark import default_methods, engine_timings, report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--models", nargs="+", default=["mnist_cnn", "vgg_small"])
    parser.add_argument("--T", type=int, default=20)
    parser.add_argument("--tau", type=float, default=5.0)
    parser.add_argument("--ef-start", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-clock", action="store_true", help="skip the clock-driven reference")
    parser.add_argument("--fuse", action="store_true",
                        help="also time the exact engine without early firing with its step look-up, decoding and "
                             "spike count fused (torch.compile)")
    parser.add_argument("--ef-methods", nargs="+", default=[], metavar="METHOD",
                        help="also time the exact engine with early firing by each of these early-firing methods "
                             "(t2fsnn.snn.engines.ttfs.EARLY_FIRING_METHODS), on the same batch")
    parser.add_argument("--output", help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    devices = ["cpu", "cuda"] if args.device == "auto" and torch.cuda.is_available() else [
        "cpu" if args.device == "auto" else args.device]
    methods = default_methods(T=args.T, tau=args.tau, ef_start=args.ef_start, clock=not args.no_clock)
    tables = [engine_timings(args.models, args.batch_size, device, methods, repeats=args.repeats) for device in devices]
    def timed_again(chosen, rename):
        """A further pass over ``chosen`` methods, without its own ANN row, its methods renamed."""
        for device in devices:
            timed = engine_timings(args.models, args.batch_size, device, chosen, repeats=args.repeats)
            timed = timed[timed["method"] != "converted ANN forward"]
            timed["method"] = timed["method"].map(rename)
            tables.append(timed)

    if args.fuse:
        from t2fsnn.snn import kernels

        kernels.fuse_elementwise = True  # compiled on first use, before the timed repeats
        timed_again([m for m in methods if m[2] == "exact" and m[1].ef_start is None], lambda label: label + " (fused)")
        kernels.fuse_elementwise = False
    if args.ef_methods:
        from t2fsnn.snn.engines import ttfs

        unknown = [m for m in args.ef_methods if m not in ttfs.EARLY_FIRING_METHODS]
        if unknown:
            parser.error(f"--ef-methods {' '.join(unknown)} is not allowed: choose from "
                         f"{', '.join(ttfs.EARLY_FIRING_METHODS)}")
        early = [m for m in methods if m[2] == "exact" and m[1].ef_start is not None]
        for method in args.ef_methods:
            ttfs.early_firing_method = method
            timed_again(early, lambda label: label.replace("T2FSNN+EF exact", f"T2FSNN+EF exact, {method}"))
        ttfs.early_firing_method = "auto"
    table = pd.concat(tables, ignore_index=True)
    report(table, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
