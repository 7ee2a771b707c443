"""Rate, phase and burst codings: hand-computed spike trains, configs, read-out, comparison, costs."""
import math

import numpy as np
import pytest
import torch
from torch import nn

import t2fsnn
from t2fsnn import BurstConfig, PhaseConfig, RateConfig, TTFSConfig
from t2fsnn.snn.codings.common import route
from t2fsnn.experiments.comparison import (
    CodingRun,
    comparison_table,
    latency_to_accuracy,
    run_coding,
    t2fsnn_variants,
)
from t2fsnn.snn.conversion import Block, SpikingNetwork
from t2fsnn.snn.costs import fan_out, operations_table, paper_operations, synaptic_operations
from t2fsnn.snn.engines import SimulationResult
from model_fixtures import trained_model, trained_mnist  # noqa: F401


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Step-by-step simulations of small batches run fastest, and steadiest on a busy machine, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _chain(hidden_weight=1.0, hidden_bias=0.0, out_weight=1.0, out_bias=0.0) -> SpikingNetwork:
    """input (1 neuron) -> hidden (1 neuron) -> output (1 neuron), identity-like weights."""
    blocks = []
    for name, (w, b) in (("fc1", (hidden_weight, hidden_bias)), ("fc2", (out_weight, out_bias))):
        linear = nn.Linear(1, 1)
        with torch.no_grad():
            linear.weight.fill_(w)
            linear.bias.fill_(b)
        blocks.append(Block(nn.Sequential(), linear, name))
    return SpikingNetwork(blocks, [1.0, 1.0], 99.9)


def _hidden_trace(net, x, cfg):
    """Spike steps of the hidden neuron, read from spikes_per_step."""
    result = net.simulate(x, cfg)
    per_step = result.extra["spikes_per_step"]
    return result, torch.nonzero(per_step[:, 1]).flatten().tolist(), torch.nonzero(per_step[:, 0]).flatten().tolist()


# ---------------------------------------------------------------- hand-computed spike trains
def test_rate_constant_input_fires_every_fourth_step():
    net = _chain()
    result, hidden, inputs = _hidden_trace(net, torch.tensor([[0.25]]), RateConfig(T=8, threshold=1.0))
    assert isinstance(result, SimulationResult)
    assert hidden == [3, 7]  # u = 0.25, 0.5, 0.75, 1.0 -> spike, reset by subtraction
    assert inputs == []  # a constant current is not a spike
    assert result.spikes_per_layer.tolist() == [[0, 2]]
    assert result.output_potential.item() == pytest.approx(2.0)
    assert result.latency == 8 and result.predictions_over_time.shape == (8, 1)


def test_rate_threshold_below_amplitude_rounds():
    # the authors' setting: fire at u >= 0.4, send and subtract 1
    net = _chain()
    _, hidden, _ = _hidden_trace(net, torch.tensor([[0.25]]), RateConfig(T=8, threshold=0.4))
    # u: .25, .5 -> spike (-.5), -.25, 0, .25, .5 -> spike, -.25, 0
    assert hidden == [1, 5]


def test_rate_poisson_input_spike_counts():
    net = _chain()
    result = net.simulate(torch.tensor([[1.0], [0.0]]), RateConfig(T=20, input="poisson"))
    assert result.spikes_per_layer[:, 0].tolist() == [20, 0]  # probability 1 and 0
    many = _chain()
    x = torch.full((2000, 1), 0.5)
    first = many.simulate(x, RateConfig(T=50, input="poisson", seed=3))
    again = many.simulate(x, RateConfig(T=50, input="poisson", seed=3))
    other = many.simulate(x, RateConfig(T=50, input="poisson", seed=4))
    assert torch.equal(first.spikes_per_layer, again.spikes_per_layer)
    assert not torch.equal(first.spikes_per_layer, other.spikes_per_layer)
    rate = first.spikes_per_layer[:, 0].double().mean().item() / 50
    assert abs(rate - 0.5) < 0.01  # 100,000 draws: standard error 0.0016


def test_phase_weighted_spikes():
    # x = 0.625 = 0.101b: input spikes of weight 0.5 and 0.125 every period of 3 steps
    net = _chain()
    result, hidden, inputs = _hidden_trace(net, torch.tensor([[0.625]]), PhaseConfig(T=6, phase_bits=3))
    assert inputs == [0, 2, 3, 5]
    # hidden weights 1, .5, .25: u=.5 -> fires at step 1 (w=.5); step 4 (u=.625, w=.5); step 5 (u=.25, w=.25)
    assert hidden == [1, 4, 5]
    assert result.output_potential.item() == pytest.approx(1.25)


def test_burst_input_cycle_and_hidden_bursts():
    net = _chain()
    result, hidden, inputs = _hidden_trace(net, torch.tensor([[1.0]]), BurstConfig(T=8))
    # input: .125, .25, .5 (a burst), silent step 3 -> reload; again at 4, 5, 6
    assert inputs == [0, 1, 2, 4, 5, 6]
    # hidden (threshold .4): u=.875 -> .4 at step 2, then 4 and 6
    assert hidden == [2, 4, 6]
    assert result.output_potential.item() == pytest.approx(1.2)


def test_burst_max_burst_caps_the_amplitude():
    net = _chain(hidden_weight=0.0)
    result, _, inputs = _hidden_trace(net, torch.tensor([[1.0]]), BurstConfig(T=5, max_burst=2))
    # amplitudes .125, .25, .25, .25 drain .875; the .125 left cannot reach .25: silent at step 4
    assert inputs == [0, 1, 2, 3]


@pytest.mark.parametrize("cfg, injections", [
    (RateConfig(T=8), 8),
    (PhaseConfig(T=8, phase_bits=3), 3),  # steps 0, 3, 6
    (BurstConfig(T=8), 2),  # the default, once per input cycle: step 0 and after the reload at step 3
    (BurstConfig(T=8, bias_schedule="every_step"), 8),  # as the authors' VGG-16 code
])
def test_bias_schedule(cfg, injections):
    net = _chain(hidden_weight=0.0, out_weight=0.0, out_bias=1.0)
    result = net.simulate(torch.tensor([[1.0]]), cfg)
    assert result.output_potential.item() == pytest.approx(injections)


def test_burst_bias_schedule_changes_the_hidden_spike_train():
    # a hidden neuron driven only by its bias (0.25): every step it reaches 0.4 at step 1;
    # once per input cycle (steps 0 and 4) it holds 0.25, then 0.5 -> spike at step 4
    net = _chain(hidden_weight=0.0, hidden_bias=0.25)
    every = net.simulate(torch.tensor([[1.0]]), BurstConfig(T=8, bias_schedule="every_step"))
    cycle = net.simulate(torch.tensor([[1.0]]), BurstConfig(T=8))
    every_steps = torch.nonzero(every.extra["spikes_per_step"][:, 1]).flatten().tolist()
    cycle_steps = torch.nonzero(cycle.extra["spikes_per_step"][:, 1]).flatten().tolist()
    assert cycle_steps == [4]
    assert every_steps[0] == 1 and len(every_steps) > len(cycle_steps)
    with pytest.raises(ValueError, match=r"bias_schedule='always' is not allowed: choose one of 'every_step', 'per_cycle'"):
        BurstConfig(T=8, bias_schedule="always")


def test_burst_reload_is_per_image():
    # a blank image reloads every step; it must not change the other image's spike train
    net = _chain()
    alone = net.simulate(torch.tensor([[1.0]]), BurstConfig(T=12))
    together = net.simulate(torch.tensor([[1.0], [0.0]]), BurstConfig(T=12))
    assert torch.equal(alone.spikes_per_layer[0], together.spikes_per_layer[0])
    assert together.spikes_per_layer[1].sum() == 0


def test_gated_max_pool_passes_the_most_active_neuron():
    values = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    sent = torch.tensor([[[[3.0, 1.0], [2.0, 0.5]]]])
    assert route(nn.Sequential(nn.MaxPool2d(2)), values, sent).flatten().tolist() == [1.0]
    sent = torch.tensor([[[[0.0, 1.0], [2.0, 5.0]]]])
    assert route(nn.Sequential(nn.MaxPool2d(2)), values, sent).flatten().tolist() == [1.0]
    sent = torch.tensor([[[[0.0, 1.0], [7.0, 5.0]]]])
    assert route(nn.Sequential(nn.MaxPool2d(2), nn.Flatten()), values, sent).tolist() == [[0.0]]


# ---------------------------------------------------------------- shared result contract
@pytest.mark.parametrize("cfg", [RateConfig(T=12), RateConfig(T=12, input="poisson"), PhaseConfig(T=12),
                                 BurstConfig(T=12)])
def test_result_contract_on_a_converted_network(trained_mnist, cfg):
    net, images, _ = trained_mnist
    x = images[:5]
    result = net.simulate(x, cfg)
    L = net.num_spiking_layers
    assert result.spikes_per_layer.shape == (5, L)
    assert result.predictions_over_time.shape == (12, 5)
    assert torch.equal(result.num_spikes, result.spikes_per_layer.sum(1))
    assert result.extra["spikes_per_step"].sum(0).tolist() == result.spikes_per_layer.sum(0).tolist()
    assert torch.equal(result.predictions, result.output_potential.argmax(1))
    assert torch.equal(result.predictions, result.predictions_over_time[-1])
    # batched and one-by-one runs agree (no coupling between images)
    single = net.simulate(x[2:3], cfg) if cfg.__class__ is not RateConfig or cfg.input == "constant" else None
    if single is not None:
        assert torch.equal(single.spikes_per_layer[0], result.spikes_per_layer[2])
    assert torch.equal(net.simulate(x, cfg, engine="clock").spikes_per_layer, result.spikes_per_layer)
    with pytest.raises(ValueError, match="engine='fast'"):
        net.simulate(x, cfg, engine="fast")


def test_rate_coding_approaches_the_ann(trained_mnist):
    net, images, labels = trained_mnist
    images, labels = images[:32], labels[:32]
    ann = net.ann_forward(images).argmax(1)
    result = net.simulate(images, RateConfig(T=100, threshold=1.0))
    agreement = (result.predictions_over_time == ann[None]).double().mean(1)
    assert agreement[2] < agreement[-1]
    assert agreement[-20:].min() >= 0.95
    accuracy = result.accuracy_over_time(labels)
    ann_accuracy = 100 * (ann == labels).double().mean().item()
    assert abs(accuracy[-1] - ann_accuracy) <= abs(accuracy[2] - ann_accuracy)


def test_codings_classify_like_the_ann(trained_mnist):
    net, images, _ = trained_mnist
    images = images[:32]
    ann = net.ann_forward(images).argmax(1)
    for cfg in (PhaseConfig(T=48), BurstConfig(T=48)):
        result = net.simulate(images, cfg)
        assert (result.predictions == ann).double().mean() >= 0.9, cfg


# ---------------------------------------------------------------- configurations
@pytest.mark.parametrize("make, text", [
    (lambda: RateConfig(T=0), "T=0"),
    (lambda: RateConfig(T=2.5), "T=2.5"),
    (lambda: RateConfig(T=True), "T=True"),
    (lambda: RateConfig(T=10, input="gaussian"), "input='gaussian'"),
    (lambda: RateConfig(T=10, threshold=0), "threshold=0"),
    (lambda: RateConfig(T=10, amplitude=float("nan")), "amplitude=nan"),
    (lambda: RateConfig(T=10, seed=-1), "seed=-1"),
    (lambda: PhaseConfig(T=10, phase_bits=0), "phase_bits=0"),
    (lambda: PhaseConfig(T=10, phase_bits=31), "phase_bits=31"),
    (lambda: PhaseConfig(T=10, threshold=-1.0), "threshold=-1.0"),
    (lambda: PhaseConfig(T=10, input_threshold=0.0), "input_threshold=0.0"),
    (lambda: BurstConfig(T=-3), "T=-3"),
    (lambda: BurstConfig(T=10, beta=1.0), "beta=1.0"),
    (lambda: BurstConfig(T=10, beta=math.inf), "beta=inf"),
    (lambda: BurstConfig(T=10, max_burst=0), "max_burst=0"),
    (lambda: BurstConfig(T=10, input_threshold=-0.1), "input_threshold=-0.1"),
])
def test_configs_reject_bad_values(make, text):
    with pytest.raises(ValueError, match=text.replace("(", r"\(").replace(".", r"\.")):
        make()


def test_configs_are_exported_and_registered():
    assert t2fsnn.RateConfig is RateConfig and "BurstConfig" in t2fsnn.__all__
    from t2fsnn.snn.engines import _ENGINES
    assert {RateConfig, PhaseConfig, BurstConfig} <= set(_ENGINES)


# ---------------------------------------------------------------- latency and comparison
def test_latency_definition():
    assert latency_to_accuracy([10, 50, 90, 99, 99, 99]) == 4
    assert latency_to_accuracy([10, 99, 98, 99, 99]) == 4  # must stay within the tolerance
    assert latency_to_accuracy([10, 99, 98.95, 99, 99], tolerance=0.1) == 2
    assert latency_to_accuracy([50, 40]) == 1  # never below the final value
    with pytest.raises(ValueError, match="tolerance=-1"):
        latency_to_accuracy([1, 2], tolerance=-1)
    with pytest.raises(ValueError, match="non-empty"):
        latency_to_accuracy([])


def _run(name, accuracy, spikes_per_step):
    """A run whose spikes are all in one hidden layer (the input layer sends none)."""
    hidden = np.cumsum(np.asarray(spikes_per_step, dtype=float))
    spikes = np.stack([np.zeros_like(hidden), hidden], 1)
    return CodingRun(name, np.asarray(accuracy, dtype=float), spikes, 10, ["input", "conv1"])


def test_comparison_table_reads_spikes_at_the_latency():
    runs = {"rate": _run("rate", [0, 50, 100, 100], [1e6, 1e6, 1e6, 1e6]),
            "burst": _run("burst", [0, 100, 100, 100], [1e5, 1e5, 0, 0])}
    table = comparison_table(runs)
    assert table.loc["rate", "latency (steps)"] == 3 and table.loc["burst", "latency (steps)"] == 2
    assert table.loc["rate", "spikes (10^6)"] == pytest.approx(3.0)
    assert table.loc["burst", "spikes (10^6)"] == pytest.approx(0.2)
    assert table.loc["rate", "energy TrueNorth"] == pytest.approx(1.0)
    assert table.loc["burst", "energy TrueNorth"] == pytest.approx(0.2 / 3 * 0.4 + 2 / 3 * 0.6)
    assert table.loc["burst", "energy SpiNNaker"] == pytest.approx(0.2 / 3 * 0.64 + 2 / 3 * 0.36)
    with pytest.raises(ValueError, match="reference='phase'"):
        comparison_table(runs, reference="phase")


def test_latency_definitions_give_each_coding_its_latency_spikes_and_energy():
    import pandas as pd

    from t2fsnn.experiments.comparison import first_step_within, latency_definitions_table, definition_key

    assert first_step_within([10, 89.5, 89.95, 90], target=90, points=1) == 2
    assert first_step_within([10, 89.5, 89.95, 90], target=90, points=0.1) == 3
    assert first_step_within([10, 20], target=90, points=1) is None
    with pytest.raises(ValueError, match="points=-1"):
        first_step_within([1], target=90, points=-1)
    runs = {"rate": _run("rate", [0, 89.5, 90, 90, 90, 90], [1e6] * 6),
            "burst": _run("burst", [0, 80, 89.95, 89.0, 89.0, 89.0], [1e5, 1e5, 1e5, 0, 0, 0])}
    table = latency_definitions_table(runs, ann_accuracy=90.0, tolerance=0.1)
    assert table.loc[("rate", "within 1 point of the ANN"), "latency (steps)"] == 2
    assert table.loc[("rate", "within 0.1 point of the ANN"), "latency (steps)"] == 3
    assert table.loc[("rate", "steps simulated"), "latency (steps)"] == 6
    assert table.loc[("burst", "settled"), "latency (steps)"] == 3  # within 0.1 of its final 89.0 from step 3 on
    assert table.loc[("burst", "within 0.1 point of the ANN"), "latency (steps)"] == 3
    # energy relative to rate under the same definition: within 0.1 point both read step 3
    assert table.loc[("burst", "within 0.1 point of the ANN"), "energy TrueNorth"] == pytest.approx(0.3 / 3 * 0.4 + 0.6)
    assert table.loc[("rate", "steps simulated"), "energy SpiNNaker"] == pytest.approx(1.0)
    never = latency_definitions_table({**runs, "phase": _run("phase", [0, 50, 60, 70, 70, 70], [1] * 6)}, 90.0)
    assert pd.isna(never.loc[("phase", "within 1 point of the ANN"), "energy TrueNorth"])
    assert never.loc[("phase", "steps simulated"), "accuracy (%)"] == 70
    assert [definition_key(d) for d in ("settled", "within 1 point of the ANN", "within 0.1 point of the ANN",
                                        "steps simulated")] == ["settled", "within_1", "within_0_1", "simulated"]
    with pytest.raises(ValueError, match="definition='halfway'"):
        definition_key("halfway")


def test_run_coding_matches_simulate(trained_mnist):
    net, images, labels = trained_mnist
    cfg = BurstConfig(T=10)
    run = run_coding(net, images[:20], labels[:20], cfg, batch_size=7, progress=False)
    whole = net.simulate(images[:20], cfg)
    assert np.allclose(run.accuracy_over_time, whole.accuracy_over_time(labels[:20]).numpy())
    assert np.allclose(run.spikes_over_time[-1] * 20, whole.spikes_per_layer.sum(0).numpy())
    t2 = run_coding(net, images[:20], labels[:20], TTFSConfig(T=10, tau=3.0), progress=False)
    ttfs = net.simulate(images[:20], TTFSConfig(T=10, tau=3.0))
    assert np.allclose(t2.spikes_over_time[-1] * 20, ttfs.spikes_per_layer.sum(0).numpy())


def test_t2fsnn_variants():
    base = TTFSConfig(T=20, tau=5.0)
    assert list(t2fsnn_variants(base)) == ["T2FSNN", "T2FSNN+EF"]
    optimized = TTFSConfig(T=20, tau=(4.0, 6.0), td=(0.5, 1.0))
    variants = t2fsnn_variants(base, optimized)
    assert list(variants) == ["T2FSNN", "T2FSNN+GO", "T2FSNN+EF", "T2FSNN+GO+EF"]
    assert variants["T2FSNN+EF"].ef_start == 10 and variants["T2FSNN+GO+EF"].tau == (4.0, 6.0)
    assert t2fsnn_variants(base, ef_start=5)["T2FSNN+EF"].ef_start == 5


# ---------------------------------------------------------------- operation counts
def _small_net() -> SpikingNetwork:
    conv = nn.Conv2d(1, 2, 3, padding=1)
    fc = nn.Linear(2 * 2 * 2, 3)
    return SpikingNetwork([Block(nn.Sequential(), conv, "conv1"),
                           Block(nn.Sequential(nn.MaxPool2d(2), nn.Flatten()), fc, "fc1")], [1.0, 1.0], 99.9)


def test_fan_out_and_operation_counts():
    net = _small_net()
    # conv: 2 channels x 16 positions x 9 weights over 16 input neurons; fc: 24 synapses over 32 neurons
    assert fan_out(net, (1, 4, 4)).tolist() == pytest.approx([18.0, 0.75])
    assert paper_operations("rate", 10) == {"mult": 0.0, "add": 10.0}
    assert paper_operations("rate (Poisson input)", 10)["mult"] == 0.0
    assert paper_operations("T2FSNN+GO+EF", 10) == {"mult": 10.0, "add": 10.0}
    assert synaptic_operations("burst", [2, 4], [18.0, 0.75]) == {"mult": 39.0, "add": 39.0}
    assert synaptic_operations("rate", [0, 4], [18.0, 0.75], analog_input_steps=5, input_macs=288) == \
        {"mult": 1440.0, "add": 1443.0}
    table = operations_table(net, (1, 4, 4), {"rate": [0, 4], "phase": [2, 4]}, {"rate": 5})
    assert table.loc["ANN", "mult (paper)"] == pytest.approx((288 + 24) / 1e6)
    assert table.loc["phase", "add (synaptic)"] == pytest.approx(39 / 1e6)
    assert table.loc["rate", "mult (paper)"] == 0.0
    with pytest.raises(ValueError, match="one value per spiking layer"):
        synaptic_operations("rate", [1, 2, 3], [1.0, 2.0])
    with pytest.raises(ValueError, match="spikes=-1"):
        paper_operations("phase", -1)


def test_pure_neuron_steps_on_hand_computed_values():
    from t2fsnn.snn.codings.neurons import burst_step, phase_step, rate_step

    u, values, fired = rate_step(torch.tensor([0.1, 0.3, 0.9]), torch.tensor([0.2, 0.2, 0.2]), threshold=0.4)
    assert torch.allclose(u, torch.tensor([0.3, -0.5, 0.1])) and fired.tolist() == [False, True, True]
    assert values.tolist() == [0.0, 1.0, 1.0]
    u, values, fired = rate_step(torch.tensor([0.0]), torch.tensor([1.0]), threshold=1.0, amplitude=0.5)
    assert u.tolist() == [0.5] and values.tolist() == [0.5]
    # phase: weight 0.25 at this step; 0.3 fires and keeps 0.05, 0.2 stays
    u, values, fired = phase_step(torch.tensor([0.3, 0.2]), None, 0.25)
    assert torch.allclose(u, torch.tensor([0.05, 0.2])) and values.tolist() == [0.25, 0.0]
    # burst: a spike of theta, theta doubles after it and returns to the threshold after a silent step
    u, theta, values, fired = burst_step(torch.tensor([0.5, 0.1]), torch.tensor([0.4, 0.8]), None, 0.4, 2.0)
    assert torch.allclose(u, torch.tensor([0.1, 0.1])) and torch.allclose(values, torch.tensor([0.4, 0.0]))
    assert torch.allclose(theta, torch.tensor([0.8, 0.4]))
    _, theta, _, _ = burst_step(torch.tensor([2.0]), torch.tensor([0.8]), None, 0.4, 2.0, cap=0.8)
    assert theta.tolist() == [pytest.approx(0.8)]  # capped
    # the steps are pure: the inputs are unchanged
    state = torch.tensor([0.5])
    burst_step(state, torch.tensor([0.4]), torch.tensor([0.1]), 0.4, 2.0)
    assert state.tolist() == [0.5]
