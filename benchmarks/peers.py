"""t2fsnn against SpikingJelly's ann2snn (rate coding) on the same trained weights, images and device.

    python benchmarks/peers.py [--models mnist_cnn_avg vgg_small_avg] [--test-images 2000] [--device auto|cpu|cuda]
                               [--steps N] [--batch-size 500] [--repeats 2]
                               [--output summary.csv] [--curves curves.csv]

Needs SpikingJelly: pip install -e '.[peers]'. Trains the average-pooling twins on first use
(cached). Prints, per network, the accuracy against time step and wall time, and the wall time
and spikes per image each simulator needs to come within --tolerance points of the ANN.
"""
import argparse
import sys

import pandas as pd

from t2fsnn.experiments import peers


def _accuracy_against_time(curves: pd.DataFrame, points: int = 12) -> pd.DataFrame:
    """About ``points`` rows of each curve, evenly spaced in steps, and its last step."""
    parts = []
    for _, curve in curves.groupby(["model", "simulator", "method"], sort=False):
        stride = max(1, len(curve) // points)
        parts.append(curve.iloc[sorted(set(range(stride - 1, len(curve), stride)) | {len(curve) - 1})])
    return pd.concat(parts, ignore_index=True) if parts else curves


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mnist_cnn_avg"], choices=list(peers.PEER_MODELS))
    parser.add_argument("--test-images", type=int, default=2000, help="the first N test images")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--steps", type=int, help="SpikingJelly's time steps (default: per model, "
                        + ", ".join(f"{name} {spec.steps}" for name, spec in peers.PEER_MODELS.items()) + ")")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2, help="timings of every batch; the fastest counts")
    parser.add_argument("--tolerance", type=float, default=0.3, help="percentage points below the ANN's accuracy")
    parser.add_argument("--no-early-firing", action="store_true", help="leave out the t2fsnn runs with early firing")
    parser.add_argument("--no-multi-step", action="store_true", help="leave out SpikingJelly's multi-step run")
    parser.add_argument("--output", help="write the summary table to this CSV file")
    parser.add_argument("--curves", help="write every accuracy curve (step, wall time, spikes) to this CSV file")
    args = parser.parse_args(argv)
    for name, value in (("--test-images", args.test_images), ("--batch-size", args.batch_size), ("--repeats", args.repeats),
                        ("--steps", 1 if args.steps is None else args.steps)):
        if value < 1:
            parser.error(f"{name} {value} is not allowed: it must be an integer >= 1")
    if not args.tolerance >= 0:
        parser.error(f"--tolerance {args.tolerance} is not allowed: it must be >= 0")
    try:
        summary, curves = peers.head_to_head(
            args.models, args.test_images, args.device, args.steps, args.batch_size, args.tolerance,
            early_firing=not args.no_early_firing, multi_step=not args.no_multi_step, repeats=args.repeats)
    except (peers.PeerMissingError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        print("\nAccuracy against time step and wall time (ms per image, all steps up to this one):")
        print(_accuracy_against_time(curves).to_string(index=False))
        print(f"\nTo within {args.tolerance} points of the ANN:")
        print(summary.to_string(index=False))
    if args.output:
        summary.to_csv(args.output, index=False)
    if args.curves:
        curves.to_csv(args.curves, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
