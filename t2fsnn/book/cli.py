"""Command line: ``t2fsnn run``, ``t2fsnn book``, ``t2fsnn record``, ``t2fsnn data``, ``t2fsnn models``, ``t2fsnn params``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

from t2fsnn.book import progress, runner


def _overrides(pairs) -> dict:
    out = {}
    for name, value in pairs or []:
        if name in out:
            raise runner.ParameterError(f"parameter {name!r} given twice")
        out[name] = value
    return out


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="t2fsnn", description="T2FSNN reference reproduction: run notebooks, build the book.")
    sub = ap.add_subparsers(dest="command", required=True)

    def add_common(p):
        p.add_argument("--profile", default=runner.DEFAULT_PROFILE, choices=runner.PROFILES,
                       help=f"parameter profile (default: {runner.DEFAULT_PROFILE})")
        p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help="override one parameter (repeatable); see `t2fsnn params`")
        p.add_argument("-q", "--quiet", action="store_true",
                       help="one line per notebook, no progress bars (the default when the output is not a terminal)")

    p = sub.add_parser("run", help="execute one notebook with papermill into book/generated/")
    p.add_argument("notebook", help="path of a notebook, or its stem (e.g. 01_train_and_convert)")
    add_common(p)
    p.add_argument("--output-dir", default=None, help="folder for the executed notebook (default: book/generated)")
    p.add_argument("--log-output", action="store_true", help="echo the notebook's output while it runs")

    p = sub.add_parser("book", help="run every book notebook, then build the book with jupyter-book")
    add_common(p)
    p.add_argument("--no-run", action="store_true", help="only build, using the notebooks already in book/generated")
    p.add_argument("--no-build", action="store_true", help="only run the notebooks into book/generated")

    p = sub.add_parser("record", help="run every book notebook at full scale into book/recorded/<profile>-<dataset>/ "
                                      "with run.json (resumes an interrupted record)")
    add_common(p)
    p.add_argument("--allow-dirty", action="store_true",
                   help="record from a work tree with uncommitted changes (run.json and the book say so)")
    p.add_argument("--notebooks", default=None,
                   help="comma-separated notebook stems to record (default: every book notebook)")
    p.add_argument("--output-root", default=None, help="folder of recorded runs (default: book/recorded)")
    p.add_argument("--scheduler", default=None,
                   help="run the notebooks on a Dask cluster: 'local:N' workers or a scheduler address "
                        "(default: $T2FSNN_SCHEDULER; unset: one after the other in this process)")

    p = sub.add_parser("data", help="show which datasets are present and verified")
    p.add_argument("--root", default=None, help="data root (default: $T2FSNN_DATA, else <repo>/data)")
    p.add_argument("--no-verify", action="store_true", help="only check that files exist")

    sub.add_parser("models", help="list the trained ANNs kept with the recorded runs, with their accuracy")
    sub.add_parser("params", help="list every notebook parameter and its allowed values")
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            display = progress.Display.for_terminal(quiet=args.quiet)
            outputs = runner.run_notebooks([args.notebook], args.profile, _overrides(args.parameter),
                                           output_dir=args.output_dir, display=display,
                                           log_output=args.log_output)
            display.summary(outputs)
        elif args.command == "book":
            if args.no_run and args.no_build:
                raise runner.ParameterError("--no-run and --no-build leave nothing to do")
            display = progress.Display.for_terminal(quiet=args.quiet)
            outputs = []
            if not args.no_run:
                outputs = runner.run_book_notebooks(args.profile, _overrides(args.parameter), display=display)
            elif args.parameter:
                raise runner.ParameterError("--no-run takes no parameters")
            else:  # the executed notebooks the chapters paste from, checked before jupyter-book starts
                from t2fsnn.book import preflight

                preflight.check_generated(runner.GENERATED_DIR, runner.BOOK_NOTEBOOKS)
            index = None
            if not args.no_build:
                display.note("building the HTML book (jupyter-book) ...")
                index = runner.build_book()
            display.summary(outputs, index)
        elif args.command == "record":
            from t2fsnn.book import record

            display = progress.Display.for_terminal(quiet=args.quiet)
            stems = [s.strip() for s in args.notebooks.split(",") if s.strip()] if args.notebooks else None
            command = "t2fsnn " + " ".join(sys.argv[1:] if argv is None else argv)
            folder = record.record(args.profile, _overrides(args.parameter), notebooks=stems,
                                   allow_dirty=args.allow_dirty, output_root=args.output_root,
                                   command=command, display=display, scheduler=args.scheduler)
            display.note(f"recorded run complete: {folder}")
        elif args.command == "data":
            from t2fsnn import data

            print(data.format_status(data.status(args.root, verify=not args.no_verify)))
        elif args.command == "models":
            from t2fsnn import training

            table = training.recorded_models()
            print(table.to_string(index=False) if len(table) else f"no recorded ANN under {training.RECORDED_ROOT}")
        elif args.command == "params":
            from t2fsnn.book import params

            print(params.describe())
    except (runner.ParameterError, ValueError, FileNotFoundError, PermissionError) as exc:
        # user errors (parameters, dataset missing or damaged, cache or output not writable)
        print(f"t2fsnn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("t2fsnn: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"t2fsnn: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # papermill execution errors and the like
        print(f"t2fsnn: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
