"""The design-space grid of notebook 09 in this process and on a Dask cluster: the same table, and each wall time.

    python benchmarks/design_space_cluster.py [--profile quick] [-p NAME VALUE ...] [--scheduler local:2]

Loads (or trains) the notebook's ANN under ``--profile``, measures every configuration of its
grid without the result cache, once in this process and once on ``--scheduler``, checks that
the two tables are identical (exit 1 if not) and prints both wall times.
"""
import argparse
import sys
import time

import pandas as pd

from t2fsnn import TTFSConfig, cluster
from t2fsnn.book import runner
from t2fsnn.experiments import design_space, experiment


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--scheduler", default="local:2", help="'local:N' or a scheduler address")
    args = parser.parse_args(argv)
    try:
        scheduler = cluster.scheduler_setting(args.scheduler)
    except ValueError as error:
        parser.error(str(error))
    if scheduler is None:
        parser.error("--scheduler is empty: give 'local:N' or a scheduler address to compare with")
    p = runner.resolve_parameters("09_design_space", args.profile, dict(args.p))
    exp = experiment.prepare(p["dataset"], p["model"], p["epochs"], p["lr"], p["batch_size"], p["seed"],
                             p["train_limit"], p["calibration_limit"], p["percentile"], p["test_limit"],
                             precision=p["precision"], train_jpeg_quality=p["train_jpeg_quality"],
                             label_smoothing=p["label_smoothing"], normalization=p["normalization"])
    grid = design_space.parse_grid(p["grid_T"], p["grid_tau"], p["grid_ef_start"], p["grid_td"])
    working = TTFSConfig(T=p["T"], tau=p["tau"], td=p["td"]).with_early_firing(p["ef_start"])
    tables, seconds = {}, {}
    for where in ("", scheduler):
        start = time.perf_counter()
        tables[where] = design_space.evaluate_grid(exp.net, exp.x_test, exp.y_test, *grid, reference=working,
                                                   tolerance=p["latency_tolerance"], batch_size=p["sim_batch_size"],
                                                   use_cache=False, scheduler=where)
        seconds[where or "this process"] = time.perf_counter() - start
    try:
        pd.testing.assert_frame_equal(tables[""], tables[scheduler])
    except AssertionError as error:
        print(f"the tables differ:\n{error}", file=sys.stderr)
        return 1
    print(f"{len(tables[''])} configurations on {len(exp.x_test)} test images: identical tables")
    for where, value in seconds.items():
        print(f"  {where}: {value:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
