"""The design space (t2fsnn.experiments.design_space) and the kernels chosen for the output (objective="output")."""
import shlex

import numpy as np
import pandas as pd
import pytest
import torch

from t2fsnn import TTFSConfig
from t2fsnn.experiments import design_space
from t2fsnn.snn import optimization
from t2fsnn.book import runner
from t2fsnn.data import load, to_tensors
from t2fsnn.snn.metrics import evaluate
from model_fixtures import trained_model, trained_mnist  # noqa: F401


class _Untouchable:
    def __getattr__(self, name):
        raise AssertionError(f"the network was used ({name}) before the arguments were checked")


# --- Pareto fronts ----------------------------------------------------------------------

def _dominates(a, b, objectives):
    at_least = all((a[c] >= b[c]) if d == "max" else (a[c] <= b[c]) for c, d in objectives.items())
    better = any((a[c] > b[c]) if d == "max" else (a[c] < b[c]) for c, d in objectives.items())
    return at_least and better


def _check_front(table, front, objectives):
    for i, a in front.iterrows():
        for j, b in table.iterrows():
            assert not _dominates(b, a, objectives), f"front point {i} is dominated by {j}"
    for i, a in table.drop(index=front.index).iterrows():
        assert any(_dominates(b, a, objectives) for _, b in front.iterrows()), f"point {i} left out but not dominated"


def test_pareto_front_of_a_table_by_hand():
    table = pd.DataFrame({"accuracy": [90.0, 95.0, 95.0, 99.0, 98.0, 99.0, 95.0],
                          "latency": [10, 20, 30, 40, 50, 40, 20]}, index=list("abcdefg"))
    objectives = {"latency": "min", "accuracy": "max"}
    front = design_space.pareto_front(table, objectives)
    assert list(front.index) == ["a", "b", "g", "d", "f"]  # sorted by latency; equal points b, g and d, f both kept
    _check_front(table, front, objectives)
    # three objectives, random values: still no dominated point inside, none non-dominated outside
    rng = np.random.default_rng(0)
    random = pd.DataFrame({"accuracy": rng.integers(90, 100, 60).astype(float), "latency": rng.integers(10, 60, 60),
                           "spikes": rng.integers(100, 900, 60).astype(float)})
    three = {"accuracy": "max", "latency": "min", "spikes": "min"}
    _check_front(random, design_space.pareto_front(random, three), three)


@pytest.mark.parametrize("objectives, match", [
    ({}, "objectives"), (["latency"], "objectives"), ({"speed": "min"}, "'speed'"),
    ({"latency": "lowest"}, "'lowest' is not allowed"), ({"broken": "max"}, "not finite"),
])
def test_pareto_front_refuses_bad_objectives(objectives, match):
    table = pd.DataFrame({"accuracy": [90.0, 95.0], "latency": [10, 20], "broken": [1.0, np.nan]})
    with pytest.raises(ValueError, match=match):
        design_space.pareto_front(table, objectives)


# --- the grid on a small trained network --------------------------------------------------

@pytest.fixture(scope="module")
def small(trained_mnist, tmp_path_factory):
    net, images, labels = trained_mnist
    cache_root = tmp_path_factory.mktemp("design-space-cache")
    table = design_space.evaluate_grid(net, images, labels, [6, 10], [2.0, 4.0], [None, 3], [0.0, 0.5],
                                       reference=TTFSConfig(T=10, tau=4.0, ef_start=5), tolerance=0.5,
                                       cache_root=cache_root)
    return net, images, labels, table, cache_root


def test_grid_table_holds_every_configuration_and_the_reference(small):
    net, images, labels, table, _ = small
    assert len(table) == 2 * 2 * 2 * 2 + 1 and table.index[-1] == "reference"
    assert list(table.columns) == list(design_space.COLUMNS)
    assert table["reference"].sum() == 1
    reference = table.loc["reference"]
    assert reference["energy TrueNorth"] == pytest.approx(1.0) and reference["energy SpiNNaker"] == pytest.approx(1.0)
    ann = design_space.ann_accuracy(net, images, labels)
    assert np.allclose(table["gap to ANN"], ann - table["accuracy"])
    assert set(table["ef_start"]) == {None, 3, 5}
    L = net.num_spiking_layers
    assert all(row["latency"] == (L - 1) * (row["T"] if row["ef_start"] is None else row["ef_start"]) + row["T"]
               for _, row in table.iterrows())
    assert (table["settled latency"] <= table["latency"]).all()


def test_every_point_rerun_gives_the_same_numbers(small):
    net, images, labels, table, _ = small
    front = design_space.pareto_front(table, {"latency": "min", "accuracy": "max"})
    _check_front(table, front, {"latency": "min", "accuracy": "max"})
    for name, row in table.iterrows():
        cfg = design_space.configuration(row)
        again = design_space.measure(net, images, labels, cfg, tolerance=0.5, use_cache=False)
        for column, value in again.items():
            assert row[column] == pytest.approx(value), (name, column)
        direct = evaluate(net, images, labels, cfg, progress=False)
        assert row["accuracy"] == direct.accuracy and row["spikes"] == pytest.approx(direct.hidden_spikes_per_image)
    for name, row in design_space.front_table(front, "latency").iterrows():
        args = shlex.split(row["re-run with"])
        given = dict(zip(args[1::3], args[2::3]))
        T_values, taus, starts, tds = design_space.parse_grid(given["grid_T"], given["grid_tau"],
                                                              given["grid_ef_start"], given["grid_td"])
        assert design_space.grid(T_values, taus, starts, tds) == [design_space.configuration(table.loc[name])]


def test_cheapest_at_accuracy_and_description(small):
    _, _, _, table, _ = small
    reference = table.loc["reference"]
    cheapest = design_space.cheapest_at_accuracy(table, "latency", reference["accuracy"])
    assert cheapest["accuracy"] >= reference["accuracy"] and cheapest["latency"] <= reference["latency"]
    assert design_space.cheapest_at_accuracy(table, "latency", 101.0) is None
    assert design_space.describe_configuration(reference) == "T = 10, tau = 4, t_d = 0, early firing from step 5"


# --- kernels chosen for the output --------------------------------------------------------

@pytest.fixture(scope="module")
def fitted(small):
    net = small[0]
    images, labels = to_tensors(load("mnist_subset", "train"), 256)
    start = TTFSConfig(T=10, tau=4.0)
    cfg_go, _ = optimization.optimize_kernels(net, images, start, steps=16, batch_size=64, seed=0, use_cache=False)
    cfg_out, history = optimization.optimize_kernels(net, images, start, steps=4, batch_size=256, seed=0,
                                                     objective="output", use_cache=False)
    return net, images, labels, start, cfg_go, cfg_out, history


def test_output_kernels_lose_no_accuracy_against_go_on_their_training_images(fitted):
    net, images, labels, start, cfg_go, cfg_out, _ = fitted
    go = evaluate(net, images, labels, cfg_go, progress=False)
    out = evaluate(net, images, labels, cfg_out, progress=False)
    assert out.accuracy >= go.accuracy
    # still a T2FSNN with the same window, pipeline and latency: only the kernels changed
    assert (cfg_out.T, cfg_out.ef_start, cfg_out.theta0) == (start.T, start.ef_start, start.theta0)
    assert out.latency == go.latency
    L = net.num_spiking_layers
    assert len(cfg_out.tau) == L and len(cfg_out.td) == L
    result = net.simulate(images[:32], cfg_out)
    for times in result.spike_times:  # at most one spike per neuron, by construction of the engine's result
        assert times.dtype == torch.long


def test_output_search_lowers_its_loss_and_is_deterministic(fitted):
    net, images, _, start, _, cfg_out, history = fitted
    assert list(history.columns) == ["step", "layer", "tau", "td", "loss", "loss after"]
    assert (history["loss after"] <= history["loss"] + 1e-12).all()
    again, history_again = optimization.optimize_kernels(net, images, start, steps=4, batch_size=256, seed=0,
                                                         objective="output", use_cache=False)
    assert again == cfg_out
    pd.testing.assert_frame_equal(history, history_again)
    summary = optimization.kernel_summary(history, cfg_out)
    assert list(summary["tau before"]) == [4.0] * net.num_spiking_layers


def test_output_search_is_cached_apart_from_go(small, tmp_path):
    net = small[0]
    images = to_tensors(load("mnist_subset", "train"), 64)[0]
    start = TTFSConfig(T=8, tau=3.0)
    first = optimization.optimize_kernels(net, images, start, steps=1, batch_size=32, objective="output",
                                          cache_root=tmp_path)
    go = optimization.optimize_kernels(net, images, start, steps=1, batch_size=32, cache_root=tmp_path)
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "kernels").iterdir()) == ["go", "output"]
    assert optimization.optimize_kernels(net, images, start, steps=1, batch_size=32, objective="output",
                                         cache_root=tmp_path)[0] == first[0]
    assert optimization.optimize_kernels(net, images, start, steps=1, batch_size=32, objective="activation",
                                         cache_root=tmp_path)[0] == go[0]


def test_kernel_variants_and_table(fitted):
    net, _, _, start, cfg_go, cfg_out, _ = fitted
    variants = design_space.kernel_variants({"GO": cfg_go, "output": cfg_out}, ef_start=4)
    assert list(variants) == ["GO", "GO+EF", "output", "output+EF"]
    assert variants["output+EF"].ef_start == 4 and variants["output+EF"].tau == cfg_out.tau
    table = design_space.kernel_table({"start": start, "output": cfg_out}, net.layer_names)
    assert list(table.index) == net.layer_names and table[("start", "tau")].tolist() == [4.0] * len(net.layer_names)


# --- bad inputs are refused before any work ---------------------------------------------------

@pytest.mark.parametrize("grid, match", [
    (([], [5.0], [None], [0.0]), r"T_values=\[\] is not allowed"),
    (([0, 20], [5.0], [None], [0.0]), r"T_values=\[0, 20\] is not allowed: 0 is not a time window"),
    (([20], [0.0], [None], [0.0]), r"tau_values=\[0.0\] is not allowed: 0.0 is not a time constant"),
    (([20], [-1.0], [None], [0.0]), "not a time constant"),
    (([8, 20], [5.0], [None, 8], [0.0]), r"ef_starts=\[None, 8\] is not allowed with T=8: .*1 .. T-1 = 7"),
    (([20], [5.0], [0], [0.0]), "ef_starts"),
    (([20], [5.0], [None], [float("nan")]), "not a kernel delay"),
    (([20, 20], [5.0], [None], [0.0]), "20 given more than once"),
    (("20", [5.0], [None], [0.0]), "give a list"),
])
def test_bad_grids_are_refused(grid, match):
    with pytest.raises(ValueError, match=match):
        design_space.check_grid(*grid)
    with pytest.raises(ValueError, match=match):
        design_space.evaluate_grid(_Untouchable(), torch.rand(2, 1, 28, 28), torch.zeros(2, dtype=torch.long), *grid)


@pytest.mark.parametrize("options, match", [
    ({"tolerance": -1.0}, "tolerance=-1.0"), ({"batch_size": 0}, "batch_size=0"), ({"engine": "fast"}, "engine='fast'"),
    ({"reference": {"T": 20}}, "reference="),
])
def test_bad_options_are_refused(small, options, match):
    net, images, labels, _, _ = small
    with pytest.raises(ValueError, match=match):
        design_space.evaluate_grid(net, images, labels, [8], [3.0], **options)
    with pytest.raises(ValueError, match="as many labels as images"):
        design_space.evaluate_grid(net, images, labels[:3], [8], [3.0])


@pytest.mark.parametrize("texts, match", [
    (("0,8", "5", "none", "0"), r"grid_T=\[0, 8\] is not allowed"),
    (("8,x", "5", "none", "0"), "grid_T='8,x' is not allowed: 'x' is not a number"),
    (("8.5", "5", "none", "0"), "not an integer"),
    (("8,", "5", "none", "0"), "without empty entries"),
    (("8,12", "5", "none,8", "0"), r"grid_ef_start=\[None, 8\] is not allowed with T=8"),
    (("8", "5,0", "none", "0"), "grid_tau"),
    (("8", "5", "none", "inf"), "grid_td"),
])
def test_grid_parameters_are_refused_with_their_names(texts, match):
    with pytest.raises(ValueError, match=match):
        design_space.parse_grid(*texts)


def test_bad_grid_parameter_is_refused_before_the_notebook_runs():
    with pytest.raises(runner.ParameterError, match="grid_T"):
        runner.resolve_parameters("09_design_space", "smoke", {"grid_T": "0,8"})
    with pytest.raises(runner.ParameterError, match="robustness_trainings"):
        runner.resolve_parameters("09_design_space", "smoke", {"robustness_trainings": "seed:-1"})


def test_trainings_are_parsed_and_checked():
    assert design_space.parse_trainings("seed:1 epochs:2; seed:2 lr:0.1") == [{"seed": 1, "epochs": 2},
                                                                             {"seed": 2, "lr": 0.1}]
    assert design_space.parse_trainings("") == []
    for text, match in [("seed:1.5", "integer"), ("epochs:0", "integer >= 1"), ("lr:0", "lr must be > 0"),
                        ("momentum:0.9", "key:value"), ("seed:1 seed:2", "given twice"), ("seed", "key:value"),
                        ("seed=1", "key:value")]:
        with pytest.raises(ValueError, match=match):
            design_space.parse_trainings(text)
    with pytest.raises(ValueError, match="repeat"):
        design_space.prepare_trainings([{"seed": 0}], epochs=5, lr=0.05, seed=0)


def test_unknown_objective_is_refused_before_any_work():
    with pytest.raises(ValueError, match="objective='accuracy' is not allowed: choose 'activation'"):
        optimization.optimize_kernels(_Untouchable(), torch.rand(4, 1, 28, 28), TTFSConfig(T=20, tau=5.0),
                                      objective="accuracy")


def test_robustness_table_and_summary(small):
    from t2fsnn.experiments.experiment import Experiment

    net, images, labels, _, cache_root = small
    x_go = to_tensors(load("mnist_subset", "train"), 64)[0]
    exp = Experiment(None, net, images, labels, x_go, design_space.ann_accuracy(net, images, labels))
    table = design_space.robustness_table(
        {"first": exp, "again": exp}, TTFSConfig(T=8, tau=3.0, ef_start=4),
        go_options=dict(steps=2, batch_size=32, cache_root=cache_root),
        output_options=dict(steps=1, batch_size=32, cache_root=cache_root))
    assert list(table.index) == ["first", "again"]
    assert set(table.columns.get_level_values(0)) == {"ANN", *design_space.METHODS}
    for method in design_space.METHODS:
        assert np.allclose(table[(method, "gap to ANN")], table[("ANN", "accuracy")] - table[(method, "accuracy")])
    summary = design_space.robustness_summary(table)
    assert summary["networks"] == 2 and 0 <= summary["output not worse"] <= 2
    assert summary["gap T2FSNN+GO"] == pytest.approx(table[("T2FSNN+GO", "gap to ANN")].mean())
    with pytest.raises(ValueError, match="robustness_table"):
        design_space.robustness_summary(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(ValueError, match="GO images"):
        design_space.robustness_table({"x": Experiment(None, net, images, labels, None, 0.0)},
                                      TTFSConfig(T=8, tau=3.0), {}, {})
