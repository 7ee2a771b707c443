"""The head-to-head against SpikingJelly: our side runs without it; the run itself only where it is installed."""
import importlib.util
import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

from t2fsnn import TTFSConfig, convert, models
from t2fsnn.experiments import peers
from t2fsnn.experiments.peers import PeerCurve

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def _cli():
    spec = importlib.util.spec_from_file_location("peers_cli", REPO / "benchmarks" / "peers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def without_spikingjelly(monkeypatch):
    """Every ``spikingjelly`` module hidden, as when the extra is not installed."""
    for name in [n for n in sys.modules if n == "spikingjelly" or n.startswith("spikingjelly.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "spikingjelly", None)


# ----------------------------------------------------------------------------- iso-accuracy
@pytest.mark.parametrize("curve,target,step", [
    ([90.0, 98.0, 99.5, 99.8, 99.6, 99.9], 99.5, 3),   # reaches at step 3 and stays
    ([99.6, 99.4, 99.7, 99.5], 99.5, 3),                # a dip below: the step after the last dip
    ([99.6, 99.7], 99.5, 1),                            # never below
    ([99.6, 99.7, 99.4], 99.5, None),                   # the last step is below: not reached
    ([50.0], 99.5, None),
])
def test_iso_accuracy_step(curve, target, step):
    assert peers.iso_accuracy_step(curve, target) == step


@pytest.mark.parametrize("curve,target", [([], 99.0), ([[1.0]], 99.0), ([99.0], math.nan), ([99.0], True)])
def test_iso_accuracy_step_refuses_bad_input(curve, target):
    with pytest.raises(ValueError, match="is not allowed"):
        peers.iso_accuracy_step(curve, target)


def test_time_to_step():
    assert peers.time_to_step([0.5, 1.0, 1.5], 2) == 1.0
    assert math.isnan(peers.time_to_step([0.5, 1.0], None))
    with pytest.raises(ValueError, match="has 2 steps"):
        peers.time_to_step([0.5, 1.0], 3)
    with pytest.raises(ValueError, match="step=0"):
        peers.time_to_step([0.5, 1.0], 0)


def _curve(simulator, method, accuracy, seconds, spikes, images=100):
    n = len(accuracy)
    return PeerCurve(simulator, method, np.array(accuracy, dtype=float),
                     np.broadcast_to(np.asarray(seconds, dtype=float), (n,)).copy(),
                     np.broadcast_to(np.asarray(spikes, dtype=float), (n,)).copy(), images,
                     whole_run=simulator == "t2fsnn")


def test_summarize_reads_time_and_spikes_at_the_iso_accuracy_step():
    curves = [
        _curve("t2fsnn", "exact", [0.0, 99.0, 99.1], 0.2, 700.0),                       # whole call: 0.2 s
        _curve("SpikingJelly", "rate", [90.0, 98.9, 99.1, 99.0], [1.0, 2.0, 3.0, 4.0], [10, 20, 30, 40]),
        _curve("SpikingJelly", "slow", [90.0, 95.0], [1.0, 2.0], [10, 20]),           # never within
    ]
    table = peers.summarize(curves, ann_accuracy=99.2, tolerance=0.3, model="m", device="cpu")
    assert list(table.columns) == list(peers.SUMMARY_COLUMNS)
    ours, theirs, slow = (table.iloc[i] for i in range(3))
    assert ours["target (%)"] == pytest.approx(98.9)
    # one call gives every step: read at the end of the pipeline, though within the target from step 2
    assert ours["steps to target"] == 3 and ours["accuracy at target (%)"] == 99.1
    assert ours["ms per image to target"] == pytest.approx(2.0)
    assert ours["hidden spikes per image to target"] == 700.0
    assert theirs["steps to target"] == 2 and theirs["ms per image to target"] == pytest.approx(20.0)
    assert theirs["hidden spikes per image to target"] == 20.0
    assert theirs["time / t2fsnn time"] == pytest.approx(10.0) and ours["time / t2fsnn time"] == pytest.approx(1.0)
    assert math.isnan(slow["steps to target"]) and math.isnan(slow["time / t2fsnn time"])


def test_ratio_is_nan_when_no_t2fsnn_run_reaches_the_target():
    curves = [_curve("t2fsnn", "exact", [90.0], 0.1, 5.0), _curve("SpikingJelly", "rate", [99.0], 1.0, 5.0)]
    table = peers.summarize(curves, ann_accuracy=99.0, tolerance=0.3)
    assert table["time / t2fsnn time"].isna().all()
    with pytest.raises(ValueError, match="tolerance"):
        peers.summarize(curves, ann_accuracy=99.0, tolerance=-1)


# ----------------------------------------------------------------------------- without SpikingJelly
def test_missing_spikingjelly_names_the_extra(without_spikingjelly):
    with pytest.raises(peers.PeerMissingError, match=r"pip install -e '\.\[peers\]'.*spikingjelly==2\.0\.0"):
        peers.import_spikingjelly()


def test_head_to_head_fails_before_training_without_spikingjelly(without_spikingjelly, monkeypatch):
    from t2fsnn import training

    monkeypatch.setattr(training, "train_or_load", lambda **_: pytest.fail("trained without SpikingJelly"))
    with pytest.raises(peers.PeerMissingError, match="peers"):
        peers.head_to_head(["mnist_cnn_avg"], test_images=10)


def test_cli_without_spikingjelly_exits_2_with_the_install_command(without_spikingjelly, capsys):
    assert _cli().main(["--models", "mnist_cnn_avg", "--test-images", "10"]) == 2
    assert "pip install -e '.[peers]'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- argument checks
@pytest.mark.parametrize("kwargs,message", [
    (dict(model_names=["mnist_cnn"]), "average-pooling twins"),
    (dict(model_names=[]), "no model given"),
    (dict(test_images=0), "test_images=0"),
    (dict(steps=0), "steps=0"),
    (dict(batch_size=-1), "batch_size=-1"),
    (dict(repeats=0), "repeats=0"),
    (dict(device="tpu"), "device='tpu'"),
])
def test_head_to_head_checks_arguments_first(kwargs, message, without_spikingjelly):
    with pytest.raises(ValueError, match=message):
        peers.head_to_head(**kwargs)


@pytest.mark.parametrize("argv", [["--models", "vgg16"], ["--test-images", "0"], ["--steps", "0"],
                                  ["--batch-size", "0"], ["--repeats", "0"], ["--tolerance", "-1"], ["--device", "tpu"]])
def test_cli_refuses_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _cli().main(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_compare_checks_arguments_before_importing_spikingjelly(without_spikingjelly):
    ann = models.build("mnist_cnn_avg", 10)
    x = torch.rand(4, 1, 28, 28)
    cfg = [TTFSConfig(T=4, tau=2.0)]
    with pytest.raises(ValueError, match="labels"):
        peers.compare(ann, x, x, torch.zeros(3, dtype=torch.long), cfg, steps=4)
    with pytest.raises(ValueError, match="steps=0"):
        peers.compare(ann, x, x, torch.zeros(4, dtype=torch.long), cfg, steps=0)
    with pytest.raises(ValueError, match="TTFSConfig"):
        peers.compare(ann, x, x, torch.zeros(4, dtype=torch.long), [], steps=4)


# ----------------------------------------------------------------------------- the average-pooling twins
@pytest.mark.parametrize("twin,original,shape", [("mnist_cnn_avg", "mnist_cnn", (1, 28, 28)),
                                                  ("vgg_small_avg", "vgg_small", (3, 32, 32))])
def test_average_pooling_twins_differ_only_in_pooling(twin, original, shape):
    a, b = models.build(twin, 10), models.build(original, 10)
    assert models.default_in_channels(twin) == shape[0]
    assert [type(m) for m in a if not isinstance(m, nn.AvgPool2d)] == [type(m) for m in b if not isinstance(m, nn.MaxPool2d)]
    assert not any(isinstance(m, nn.MaxPool2d) for m in a) and sum(isinstance(m, nn.AvgPool2d) for m in a) >= 2
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    assert a(torch.rand((2,) + shape)).shape == (2, 10)


def test_pool_is_checked():
    with pytest.raises(ValueError, match="pool='min'"):
        models.mnist_cnn(pool="min")


def test_t2fsnn_exact_engine_matches_the_clock_on_an_average_pooling_twin():
    torch.manual_seed(0)
    ann = models.build("mnist_cnn_avg", 10).eval()
    images = torch.rand(16, 1, 28, 28)
    net = convert(ann, images)
    cfg = TTFSConfig(T=20, tau=5.0)
    exact, clock = net.simulate(images, cfg, engine="exact"), net.simulate(images, cfg, engine="clock")
    assert torch.equal(exact.predictions_over_time, clock.predictions_over_time)
    assert torch.equal(exact.spikes_per_layer, clock.spikes_per_layer)


# ----------------------------------------------------------------------------- with SpikingJelly (optional)
def test_compare_runs_both_simulators_on_the_same_images():
    pytest.importorskip("spikingjelly")
    torch.manual_seed(0)
    ann = models.build("mnist_cnn_avg", 10).eval()
    images = torch.rand(40, 1, 28, 28)
    labels = ann(images).argmax(1)
    summary, curves = peers.compare(ann, images[:20], images[20:], labels[20:], [TTFSConfig(T=8, tau=3.0)],
                                    steps=12, batch_size=10, device="cpu", samples_per_call=50, repeats=2,
                                    progress=False)
    assert list(summary["simulator"]) == ["ANN", "t2fsnn", "SpikingJelly", "SpikingJelly"]
    assert summary.loc[0, "accuracy at last step (%)"] == 100.0
    single, multi = summary.iloc[2], summary.iloc[3]
    assert multi["steps simulated"] == (single["steps to target"] if single["steps to target"] > 0 else 12)
    # the multi-step run computes what the single-step run computes at that step
    at = curves[(curves["simulator"] == "SpikingJelly")]["accuracy (%)"].to_numpy()[int(multi["steps simulated"]) - 1]
    assert multi["accuracy at last step (%)"] == at
    assert (curves[curves["simulator"] == "SpikingJelly"]["hidden spikes per image"].diff().dropna() >= 0).all()
    ours = curves[curves["simulator"] == "t2fsnn"]
    net = convert(ann, images[:20])
    expected = net.simulate(images[20:], TTFSConfig(T=8, tau=3.0)).accuracy_over_time(labels[20:]).numpy()
    np.testing.assert_allclose(ours["accuracy (%)"].to_numpy(), expected)


def test_key_numbers_take_the_fastest_run_of_each_simulator():
    curves = [
        _curve("t2fsnn", "exact", [99.0], 0.2, 700.0),
        _curve("SpikingJelly", "rate coding, single-step", [98.0, 99.0, 99.1], [1.0, 2.0, 3.0], [10, 20, 30]),
    ]
    table = peers.summarize(curves, ann_accuracy=99.2, tolerance=0.3, model="m")
    numbers = peers.key_numbers(table, "m")
    assert numbers["t2fsnn_ms"] == pytest.approx(2.0) and numbers["sj_ms"] == pytest.approx(20.0)
    assert numbers["sj_steps"] == 2 and numbers["sj_spikes"] == 20.0 and numbers["ratio"] == pytest.approx(10.0)
    assert numbers["ratio_single"] == pytest.approx(10.0) and math.isnan(numbers["ratio_multi"])
    assert math.isnan(numbers["ann_ms"]) and math.isnan(numbers["t2fsnn_passes"])
    assert all(math.isnan(v) for v in peers.key_numbers(table, "other").values())


def test_recorded_head_to_head_reads_only_peers_entries(tmp_path):
    import pandas as pd

    curves = [_curve("t2fsnn", "exact", [99.0], 0.2, 700.0)]
    peers.summarize(curves, 99.0, model="m").to_csv(tmp_path / "peers.csv", index=False)
    peers.curves_table(curves, "m").to_csv(tmp_path / "peers_curves.csv", index=False)
    pd.DataFrame({"model": ["m"]}).to_csv(tmp_path / "engines.csv", index=False)
    (tmp_path / "runs.yml").write_text("- file: engines.csv\n- file: peers.csv\n  kind: peers\n  curves: peers_curves.csv\n")
    (run, summary, curve), = peers.recorded_head_to_head(tmp_path)
    assert run["file"] == "peers.csv" and summary["method"].tolist() == ["exact"] and len(curve) == 1
    fig = peers.plot_accuracy_against_time(summary.assign(device="cpu"), curve)
    assert len(fig.axes) == 1
