"""Table II, Table III and the key points of Fig. 6 on full MNIST, for every coding, in one run.

    T2FSNN_DATA=/path/to/torchvision python benchmarks/mnist_codings.py [--device cuda] [--out results/]
    python benchmarks/mnist_codings.py --make-bundle bundle.pt     # pack model and images for another machine
    python benchmarks/mnist_codings.py --bundle bundle.pt --device cuda --out results/

The model is ``train_or_load(dataset="mnist", model="mnist_cnn", epochs=5, lr=0.05,
batch_size=64, seed=0)`` (or ``--model-file``, a state dict saved by it); conversion
uses the first ``--calibration`` training images, kernel optimization (GO) the first
``--go-images``. Every coding runs on the whole test set for its own horizon; the
tables use the book's definitions (``t2fsnn.experiments.comparison``, ``t2fsnn.snn.costs``).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from t2fsnn import TTFSConfig, convert, models
from t2fsnn.experiments import comparison, paper_results
from t2fsnn.snn import costs


def _images_u8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().to(torch.uint8)


def make_bundle(path: str, args) -> None:
    from t2fsnn import data, training

    if args.model_file:
        state = torch.load(args.model_file, weights_only=True)["state_dict"]
    else:
        trained = training.train_or_load(dataset="mnist", model="mnist_cnn", epochs=5, lr=0.05, batch_size=64, seed=0,
                                         progress=False)
        state = trained.model.state_dict()
    train = data.load("mnist", "train")
    x_train, _ = data.to_tensors(train, max(args.calibration, args.go_images))
    x_test, y_test = data.to_tensors(data.load("mnist", "test"))
    torch.save({"state_dict": state, "train": _images_u8(x_train), "test": _images_u8(x_test), "labels": y_test}, path)
    print(f"bundle written to {path}: {len(x_train)} training and {len(x_test)} test images")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="model and images packed by --make-bundle")
    parser.add_argument("--make-bundle", metavar="PATH")
    parser.add_argument("--model-file", help="a cached model file of train_or_load (instead of calling it)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--out", default=".", help="folder for the CSV tables")
    parser.add_argument("--calibration", type=int, default=5000)
    parser.add_argument("--go-images", type=int, default=10000)
    parser.add_argument("--go-steps", type=int, default=300)
    parser.add_argument("--go-batch-size", type=int, default=64)
    parser.add_argument("--go-lr", type=float, default=1.0)
    parser.add_argument("--go-max-target", default="first_spike", choices=["first_spike", "ann"])
    parser.add_argument("--T", type=int, default=20)
    parser.add_argument("--tau", type=float, default=5.0)
    parser.add_argument("--ef-start", type=int, default=10)
    parser.add_argument("--rate-T", type=int, default=2000)
    parser.add_argument("--phase-T", type=int, default=500)
    parser.add_argument("--burst-T", type=int, default=500)
    parser.add_argument("--rate-variants", action="store_true",
                        help="add rate coding with Poisson input and with threshold 1 (not the energy reference)")
    parser.add_argument("--batch-size", type=int, default=2500)
    parser.add_argument("--tolerance", type=float, default=0.1)
    parser.add_argument("--test-limit", type=int, help="only the first N test images (a quick check)")
    args = parser.parse_args(argv)
    if args.make_bundle:
        make_bundle(args.make_bundle, args)
        return 0
    from t2fsnn.training import resolve_device

    device = resolve_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    if args.bundle:
        bundle = torch.load(args.bundle, weights_only=True)
        state, x_train = bundle["state_dict"], bundle["train"].float() / 255
        x_test, y_test = bundle["test"].float() / 255, bundle["labels"]
    else:
        from t2fsnn import data, training

        trained = training.train_or_load(dataset="mnist", model="mnist_cnn", epochs=5, lr=0.05, batch_size=64, seed=0,
                                         progress=False)
        state = trained.model.state_dict()
        x_train, _ = data.to_tensors(data.load("mnist", "train"), max(args.calibration, args.go_images))
        x_test, y_test = data.to_tensors(data.load("mnist", "test"))
    if args.test_limit:
        x_test, y_test = x_test[:args.test_limit], y_test[:args.test_limit]
    model = models.build("mnist_cnn", 10)
    model.load_state_dict(state)
    model.eval()
    net = convert(model, x_train[:args.calibration])
    with torch.no_grad():
        ann_accuracy = 100 * (model(x_test).argmax(1) == y_test).float().mean().item()
        converted_accuracy = 100 * (net.ann_forward(x_test).argmax(1) == y_test).float().mean().item()
    print(f"ANN {ann_accuracy:.2f} %, converted ANN {converted_accuracy:.2f} % on {len(x_test)} test images; "
          f"device {device}", flush=True)

    cfg = TTFSConfig(T=args.T, tau=args.tau)
    t0 = time.time()
    # kernel optimization on the CPU (cheap: a few layers' spike times per mini-batch)
    cfg_go, history = net.optimize_kernels(x_train[:args.go_images], cfg, steps=args.go_steps,
                                           lr=args.go_lr, batch_size=args.go_batch_size, seed=0,
                                           max_target=args.go_max_target, use_cache=False)
    net_dev = net.to(device)
    print(f"GO: {time.time() - t0:.1f} s, tau={cfg_go.tau}, td={cfg_go.td}", flush=True)
    configs = {**comparison.baseline_configs(args.rate_T, args.phase_T, args.burst_T),
               **comparison.t2fsnn_variants(cfg, cfg_go, args.ef_start)}
    if args.rate_variants:
        configs["rate (Poisson input)"] = comparison.RateConfig(T=args.rate_T, input="poisson")
        configs["rate (threshold 1)"] = comparison.RateConfig(T=args.rate_T, threshold=1.0)
    runs = {}
    for name, c in configs.items():
        t0 = time.time()
        runs[name] = comparison.run_coding(net_dev, x_test, y_test, c, name=name, batch_size=args.batch_size,
                                           device=device, progress=False)
        print(f"{name}: {c} -> final {runs[name].final_accuracy:.2f} % ({time.time() - t0:.1f} s)", flush=True)

    net = net_dev.cpu()
    table = comparison.comparison_table(runs, reference="rate", tolerance=args.tolerance)
    image_shape = tuple(x_test.shape[1:])
    spikes = {name: runs[name].spikes_per_layer_at(int(table.loc[name, "latency (steps)"])) for name in table.index}
    analog = {name: int(table.loc[name, "latency (steps)"]) for name, c in configs.items()
              if isinstance(c, comparison.RateConfig) and c.input == "constant"}
    ops = costs.operations_table(net, image_shape, spikes, analog)
    marks = [1, 2, 5, 10, 20, 30, 40, 50, 60, 100, 200, 500, 1000, 2000, 5000]
    points = comparison.key_points(runs, [m for m in marks if m <= max(r.steps for r in runs.values())])
    per_layer = pd.DataFrame(spikes, index=net.layer_names).T
    kernels = pd.DataFrame({"tau": cfg_go.tau, "td": cfg_go.td}, index=net.layer_names)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4f}".format):
        for title, frame in (("Table II (ours, full MNIST)", table), ("paper, Table II (MNIST)", paper_results.table_ii("MNIST")),
                             ("Table III (ours, millions of operations per image)", ops),
                             ("Fig. 6 key points: accuracy (%) after each step", points),
                             ("spikes per layer at the latency", per_layer), ("GO kernels", kernels)):
            print(f"\n== {title}\n{frame.to_string()}")
    table.to_csv(out / "table_ii.csv")
    ops.to_csv(out / "table_iii.csv")
    points.to_csv(out / "fig6_key_points.csv")
    per_layer.to_csv(out / "spikes_per_layer.csv")
    comparison.accuracy_curves(runs).to_csv(out / "fig6_curves.csv.gz")
    (out / "summary.json").write_text(json.dumps({
        "ann_accuracy": ann_accuracy, "converted_accuracy": converted_accuracy, "tau_go": list(cfg_go.tau),
        "td_go": list(cfg_go.td), "device": str(device), "seconds": time.time() - started, "args": vars(args)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
