"""Speed of every coding at the latency it needs, as ratios to one converted-ANN forward pass.

    python benchmarks/codings.py [--rate-T N] [--phase-T N] [--burst-T N] [--T 20 --tau 5 --ef-start 10]
                                 [--batch-size 256] [--device auto|cpu|cuda] [--output codings.csv]

Each coding is simulated for the latency it needs to reach its final accuracy (the
defaults are the latencies measured on full MNIST with ``mnist_cnn``, see the book's
chapter on the comparison of codings); T2FSNN runs its whole pipeline. ``ratio to ANN``
is the time of the simulation divided by the time of one ANN forward pass on the same
batch, on the same device, in the same run.
"""
import argparse
import sys

import pandas as pd
import torch

from t2fsnn.experiments.benchmark import coding_methods, engine_timings, report

# latencies (steps) measured on full MNIST (mnist_cnn, 10,000 test images)
MNIST_LATENCIES = {"rate": 27, "phase": 6, "burst": 73}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate-T", type=int, default=MNIST_LATENCIES["rate"])
    parser.add_argument("--phase-T", type=int, default=MNIST_LATENCIES["phase"])
    parser.add_argument("--burst-T", type=int, default=MNIST_LATENCIES["burst"])
    parser.add_argument("--rate-input", default="constant", choices=["constant", "poisson"])
    parser.add_argument("--T", type=int, default=20)
    parser.add_argument("--tau", type=float, default=5.0)
    parser.add_argument("--ef-start", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=["mnist_cnn"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    devices = ["cpu", "cuda"] if args.device == "auto" and torch.cuda.is_available() else [
        "cpu" if args.device == "auto" else args.device]
    latencies = dict(rate_T=args.rate_T, phase_T=args.phase_T, burst_T=args.burst_T, T=args.T, tau=args.tau,
                     ef_start=args.ef_start, rate_input=args.rate_input)
    methods = coding_methods(**latencies)
    report(pd.concat([engine_timings(args.models, args.batch_size, device, methods, repeats=args.repeats)
                      for device in devices], ignore_index=True), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
