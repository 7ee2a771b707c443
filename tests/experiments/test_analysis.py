"""Coding-error analysis: transmitted values, the tau trade-off and the accuracy breakdown."""
import math

import pytest
import torch
from torch import nn

from t2fsnn import TTFSConfig, convert
from t2fsnn.experiments import analysis
from t2fsnn.snn import kernels


def _network(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(6 * 2 * 2, 12), nn.ReLU(), nn.Linear(12, 5),
    ).eval()
    images = torch.rand(40, 1, 12, 12, generator=torch.Generator().manual_seed(seed))
    return convert(model, images, percentile=99.0), images


def test_transmit_rounded_is_decode_of_encode_and_exact_keeps_the_value():
    T, tau, td = 20, 5.0, 0.5
    u = torch.linspace(-0.2, 1.6, 500, dtype=torch.float64)
    rounded = analysis.transmit(u, T, tau, td)
    assert torch.equal(rounded, kernels.decode(kernels.encode(u, T, tau, td), tau, td))
    exact = analysis.transmit(u, T, tau, td, rounding=False)
    first, last = math.exp(td / tau), math.exp(-(T - 1 - td) / tau)
    inside = (u >= last) & (u <= first)
    assert torch.equal(exact[inside], u[inside])
    assert torch.all(exact[u < last] == 0)
    assert torch.allclose(exact[u > first], torch.tensor(first, dtype=torch.float64))
    # the same neurons fire with and without rounding
    assert torch.equal(rounded > 0, exact > 0)
    with pytest.raises(ValueError, match="tau=-1"):
        analysis.transmit(u, T, -1.0)


def test_coding_table_error_within_precision_bound():
    T, tau = 20, 4.0
    values = torch.linspace(0.001, 1.0, 300, dtype=torch.float64)
    table = analysis.coding_table(values, T, tau)
    assert list(table.columns) == ["value", "spike step", "decoded", "error", "bound"]
    assert (table["spike step"].to_numpy() == kernels.encode(values, T, tau, 0.0).numpy()).all()
    fired = table[table["spike step"] >= 0]
    assert (fired["error"] >= 0).all() and (fired["error"] <= fired["bound"] + 1e-12).all()
    silent = table[table["spike step"] < 0]
    assert len(silent) > 0 and (silent["error"] == silent["value"]).all() and silent["bound"].isna().all()


def test_tau_tradeoff_parts_add_up_and_follow_the_trade_off():
    values = torch.rand(20000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) ** 3
    taus = [1.0, 2.0, 4.0, 8.0, 16.0]
    table = analysis.tau_tradeoff(values, 20, taus)
    assert list(table["tau"]) == taus
    assert ((table["precision part"] + table["lost part"] - table["mean error"]).abs() < 1e-12).all()
    # larger tau: finer precision but a larger smallest representable value, so more values are lost
    assert table["precision bound at 1"].is_monotonic_decreasing
    assert table["z_min"].is_monotonic_increasing and table["lost (%)"].is_monotonic_increasing
    assert table["lost (%)"].iloc[-1] > table["lost (%)"].iloc[0]
    assert (table["z_max"] == 1.0).all() and (table["saturated (%)"] == 0).all()
    with pytest.raises(ValueError, match="taus"):
        analysis.tau_tradeoff(values, 20, [])
    with pytest.raises(ValueError, match="T=0"):
        analysis.tau_tradeoff(values, 0, [2.0])


@pytest.mark.parametrize("cfg", [
    TTFSConfig(T=20, tau=5.0),
    TTFSConfig(T=12, tau=[2.0, 3.0, 4.0, 5.0], td=[0.0, -1.0, 1.0, 0.5]),
])
def test_quantized_forward_matches_the_engine_without_early_firing(cfg):
    net, images = _network()
    logits = analysis.quantized_forward(net, images, cfg)
    simulated = net.simulate(images, cfg).output_potential
    assert torch.allclose(logits, simulated, atol=1e-5)
    assert torch.equal(logits.argmax(1), simulated.argmax(1))
    plain = analysis.quantized_forward(net, images, cfg, input=False, hidden=False)
    assert torch.allclose(plain, net.ann_forward(images), atol=1e-6)


def test_loss_breakdown_stages_and_consistency():
    net, images = _network(1)
    labels = net.ann_forward(images).argmax(1)  # the ANN is right by construction
    cfg = TTFSConfig(T=12, tau=3.0, ef_start=4)
    table = analysis.loss_breakdown(net, images, labels, cfg, batch_size=16)
    assert len(table) == 5 and table.index[0] == "ANN" and "early firing" in table.index[-1]
    assert table["accuracy"].iloc[0] == 100.0 and table["agreement with ANN"].iloc[0] == 100.0
    # with labels equal to the ANN's predictions, accuracy and agreement coincide
    assert (table["accuracy"] == table["agreement with ANN"]).all()
    assert torch.isnan(torch.tensor(table["change"].iloc[0]))
    diffs = table["accuracy"].diff().iloc[1:].to_numpy()
    assert (abs(diffs - table["change"].iloc[1:].to_numpy()) < 1e-9).all()
    snn = net.simulate(images, TTFSConfig(T=12, tau=3.0)).accuracy(labels)
    ef = net.simulate(images, cfg).accuracy(labels)
    assert table["accuracy"].iloc[3] == pytest.approx(snn) and table["accuracy"].iloc[4] == pytest.approx(ef)
    without_ef = analysis.loss_breakdown(net, images, labels, TTFSConfig(T=12, tau=3.0, ef_start=12))
    assert len(without_ef) == 4
    with pytest.raises(ValueError, match="labels"):
        analysis.loss_breakdown(net, images, labels[:3], cfg)
    with pytest.raises(ValueError, match="engine='fast'"):
        analysis.loss_breakdown(net, images, labels, cfg, engine="fast")


def test_loss_breakdown_reuses_the_evaluations_of_its_spiking_stages():
    import dataclasses

    from t2fsnn.snn import metrics

    net, images = _network(1)
    labels = net.ann_forward(images).argmax(1)
    cfg = TTFSConfig(T=12, tau=3.0, ef_start=4)
    evaluations = [metrics.evaluate(net, images, labels, c, progress=False)
                   for c in (TTFSConfig(T=12, tau=3.0), cfg)]
    fresh = analysis.loss_breakdown(net, images, labels, cfg)
    reused = analysis.loss_breakdown(net, images, labels, cfg, evaluations=evaluations)
    assert reused.equals(fresh)
    # the stage takes the evaluation's predictions rather than simulating: wrong predictions show
    wrong = dataclasses.replace(evaluations[1], predictions=(evaluations[1].predictions + 1) % 10)
    table = analysis.loss_breakdown(net, images, labels, cfg, evaluations=[wrong])
    assert table["accuracy"].iloc[4] < fresh["accuracy"].iloc[4] and table["accuracy"].iloc[3] == fresh["accuracy"].iloc[3]
    with pytest.raises(ValueError, match="predictions of these"):
        analysis.loss_breakdown(net, images[:-1], labels[:-1], cfg, evaluations=evaluations)


def test_representative_neurons_spread_over_spike_steps():
    steps = torch.tensor([[5, -1, 0, 9], [3, -1, 7, 1]])
    chosen = analysis.representative_neurons(steps, 3)
    flat = steps.flatten()
    assert len(chosen) == 3 and (flat[chosen] >= 0).all()
    assert flat[chosen[0]] == 0 and flat[chosen[-1]] == 9
    padded = analysis.representative_neurons(torch.tensor([4, -1, -1]), 3)
    assert padded[0] == 0 and sorted(padded[1:]) == [1, 2]
    with pytest.raises(ValueError, match="count=0"):
        analysis.representative_neurons(steps, 0)


def test_evaluation_table_rows(trained_like_evaluations):
    table = analysis.evaluation_table(trained_like_evaluations)
    assert list(table.index) == ["T2FSNN", "T2FSNN+EF"]
    assert table.loc["T2FSNN+EF", "latency (steps)"] < table.loc["T2FSNN", "latency (steps)"]
    layer_columns = [c for c in table.columns if c.startswith("spikes ") and c != "spikes per image (hidden layers)"]
    hidden = [c for c in layer_columns if c != "spikes input"]
    assert (table[hidden].sum(axis=1) - table["spikes per image (hidden layers)"]).abs().max() < 1e-6
    assert (table["spikes input"] > 0).all()


@pytest.fixture
def trained_like_evaluations():
    from t2fsnn.snn.metrics import evaluate

    net, images = _network(2)
    labels = net.ann_forward(images).argmax(1)
    return {
        "T2FSNN": evaluate(net, images, labels, TTFSConfig(T=10, tau=3.0), progress=False),
        "T2FSNN+EF": evaluate(net, images, labels, TTFSConfig(T=10, tau=3.0, ef_start=5), progress=False),
    }


def test_differing_neurons_orders_by_gap():
    a = torch.tensor([3, 5, -1, 2, 7])
    b = torch.tensor([3, 1, 3, 2, 6])
    assert analysis.differing_neurons(a, b, 3) == [2, 1, 4]  # no spike in a counts as step 8
    assert analysis.differing_neurons(a, a, 2) == []
    with pytest.raises(ValueError, match="same layer"):
        analysis.differing_neurons(a, b[:3])


def test_settling_step():
    curve = [-1, 10.0, 50.0, 97.0, 99.5, 98.0, 98.6, 98.5]
    assert analysis.settling_step(curve, 1.0) == 5  # from step 5 on, within 1 point of 98.5
    assert analysis.settling_step(curve, 0.05) == 8
    assert analysis.settling_step([90.0, 90.0], 0.0) == 1
    with pytest.raises(ValueError, match="tolerance=-1"):
        analysis.settling_step(curve, -1)


def test_tau_tradeoff_thins_large_inputs():
    values = torch.linspace(0.001, 1.0, 10_001, dtype=torch.float64)
    full = analysis.tau_tradeoff(values, 20, [5.0], max_values=None)
    thin = analysis.tau_tradeoff(values, 20, [5.0], max_values=1000)
    assert abs(full["mean error"].iloc[0] - thin["mean error"].iloc[0]) < 2e-3
    assert abs(full["lost (%)"].iloc[0] - thin["lost (%)"].iloc[0]) < 0.5
    with pytest.raises(ValueError, match="max_values=0"):
        analysis.tau_tradeoff(values, 20, [5.0], max_values=0)
