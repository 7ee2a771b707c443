"""The exact engine must reproduce the clock-driven reference spike for spike."""
import pytest
import torch
from torch import nn

from t2fsnn import TTFSConfig, convert
from t2fsnn.snn.engines import SimulationResult
from model_fixtures import trained_model, trained_mnist  # noqa: F401


def _random_network(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.2),
        nn.Linear(6 * 2 * 2, 12), nn.ReLU(), nn.Linear(12, 5),
    )
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


CONFIGS = [
    TTFSConfig(T=20, tau=5.0, td=0.0),
    TTFSConfig(T=20, tau=5.0, td=0.0, ef_start=10),
    TTFSConfig(T=12, tau=[2.0, 3.0, 4.0, 5.0], td=[0.0, -1.0, 1.0, 0.5], ef_start=3),
    TTFSConfig(T=8, tau=3.0, td=2.0, ef_start=1),
    TTFSConfig(T=8, tau=1.5, td=-0.5, ef_start=7),
    TTFSConfig(T=30, tau=[8.0, 2.0, 12.0, 4.0], td=[1.0, 0.0, -2.0, 0.0], theta0=0.8),
]


def _assert_identical(a: SimulationResult, b: SimulationResult):
    assert a.latency == b.latency
    for layer, (ta, tb) in enumerate(zip(a.spike_times, b.spike_times)):
        assert torch.equal(ta, tb), f"spike times differ in layer {layer}"
    assert torch.equal(a.predictions_over_time, b.predictions_over_time)
    assert torch.equal(a.num_spikes, b.num_spikes)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"T{c.T}-ef{c.ef_start}")
def test_exact_equals_clock_on_random_networks(seed, cfg):
    model = _random_network(seed)
    images = torch.rand(24, 1, 12, 12, generator=torch.Generator().manual_seed(seed))
    net = convert(model, images, percentile=99.0)
    _assert_identical(net.simulate(images, cfg, engine="exact"), net.simulate(images, cfg, engine="clock"))


def test_exact_equals_clock_on_trained_mnist_cnn(trained_mnist):
    net, images, _ = trained_mnist
    for cfg in (TTFSConfig(T=20, tau=5.0, td=0.0), TTFSConfig(T=20, tau=5.0, td=0.0, ef_start=10)):
        _assert_identical(net.simulate(images, cfg, engine="exact"), net.simulate(images, cfg, engine="clock"))


def test_result_fields_and_semantics(trained_mnist):
    net, images, labels = trained_mnist
    cfg = TTFSConfig(T=20, tau=5.0, td=0.0)
    res = net.simulate(images, cfg)
    L, B = net.num_spiking_layers, len(images)
    assert res.latency == cfg.latency(L) == 2 * 20 + 20
    assert res.predictions.shape == (B,)
    assert res.predictions_over_time.shape == (res.latency, B)
    assert torch.equal(res.predictions, res.predictions_over_time[-1])
    # no output before the last hidden layer starts firing
    assert (res.predictions_over_time[: (L - 1) * cfg.T] == -1).all()
    assert len(res.spike_times) == L and all(t.dtype == torch.int64 for t in res.spike_times)
    for layer, times in enumerate(res.spike_times):
        fired = times[times >= 0]
        assert fired.min() >= layer * cfg.T and fired.max() < layer * cfg.T + cfg.T
    counted = sum((t >= 0).flatten(1).sum(1) for t in res.spike_times)
    assert torch.equal(res.num_spikes, counted)
    # at most one spike per neuron
    sizes = torch.tensor([t[0].numel() for t in res.spike_times])
    assert (res.spikes_per_layer <= sizes).all()
    assert res.accuracy(labels) > 80.0


def test_spike_times_are_made_from_local_steps_when_read():
    from t2fsnn.snn.engines.result import SpikeTimes

    local = [torch.tensor([[0, 3], [4, 1]], dtype=torch.int32), torch.tensor([[4, 2]])]
    times = SpikeTimes(local, [0, 10], T=4)
    assert len(times) == 2 and isinstance(times[-1], torch.Tensor)
    assert torch.equal(times[0], torch.tensor([[0, 3], [-1, 1]])) and times[0].dtype == torch.int64
    assert torch.equal(times[1], torch.tensor([[-1, 12]]))
    assert [t.tolist() for t in times[:1]] == [[[0, 3], [-1, 1]]] and len(list(times)) == 2
    with pytest.raises(IndexError):
        times[2]
    with pytest.raises(ValueError, match="2 layers of steps but 1 offsets"):
        SpikeTimes(local, [0], T=4)


def test_early_firing_shortens_latency_and_input_layer_unchanged(trained_mnist):
    net, images, _ = trained_mnist
    base = net.simulate(images, TTFSConfig(T=20, tau=5.0))
    early = net.simulate(images, TTFSConfig(T=20, tau=5.0, ef_start=10))
    assert early.latency == 40 < base.latency == 60
    assert torch.equal(base.spike_times[0], early.spike_times[0])


def test_bad_engine_and_layer_count_rejected(trained_mnist):
    net, images, _ = trained_mnist
    with pytest.raises(ValueError, match="engine='fast'"):
        net.simulate(images, TTFSConfig(T=20, tau=5.0), engine="fast")
    with pytest.raises(ValueError, match="2 values but the network has 3"):
        net.simulate(images, TTFSConfig(T=20, tau=[5.0, 4.0]))


def test_float64_and_per_layer_kernels_run(trained_mnist):
    net, images, _ = trained_mnist
    cfg = TTFSConfig(T=16, tau=[4.0, 5.0, 6.0], td=[0.0, -1.0, 1.0], ef_start=6)
    double = net.double()
    try:
        _assert_identical(double.simulate(images.double(), cfg), double.simulate(images.double(), cfg, engine="clock"))
    finally:
        net.float()


def test_images_of_wrong_shape_or_integer_type_refused(trained_mnist):
    net, images, _ = trained_mnist
    cfg = TTFSConfig(T=20, tau=5.0)
    with pytest.raises(ValueError, match=r"shape \(2, 1, 32, 32\).*\[B, 1, 28, 28\]"):
        net.simulate(torch.rand(2, 1, 32, 32), cfg)
    with pytest.raises(ValueError, match="dtype torch.uint8"):
        net.simulate((images[:2] * 255).to(torch.uint8), cfg)


def test_evaluate_leaves_the_network_where_it_was(trained_mnist):
    from t2fsnn.snn.metrics import evaluate

    net, images, labels = trained_mnist
    before = net.device
    evaluate(net, images[:8], labels[:8], TTFSConfig(T=20, tau=5.0), device="cpu", progress=False)
    assert net.device == before


@pytest.mark.parametrize("T, tau, td, theta0", [(80, 20.0, 0.0, 1.0), (20, 5.0, 0.0, 1.0), (12, 2.0, -1.0, 1.0),
                                               (30, 8.0, 1.0, 0.8), (500, 3.0, 0.0, 1.0), (1, 5.0, 0.0, 1.0),
                                               (300, 2000.0, 0.0, 1.0)])
def test_fast_crossing_steps_equal_the_reference(T, tau, td, theta0):
    from t2fsnn.snn.kernels import crossing_steps, fast_crossing_steps, threshold_table

    table = threshold_table(T, tau, td, theta0)
    edges = torch.tensor([0.0, -0.0, 1e-40, -1e-40, 3e38, -3e38, 1.0, 2.0])
    u = torch.cat([torch.randn(20000, generator=torch.Generator().manual_seed(T)) * 2, table,
                   torch.nextafter(table, torch.tensor(0.0)), torch.nextafter(table, torch.tensor(9.0)), edges])
    fast = fast_crossing_steps(u, table)
    assert fast.dtype == torch.int32 and torch.equal(fast.long(), crossing_steps(u, table))
    strided = u[:400].view(4, 100)[:, ::3]
    assert torch.equal(fast_crossing_steps(strided, table).long(), crossing_steps(strided, table))
    odd = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.5])  # checked unless the caller vouches
    fallback = fast_crossing_steps(odd, table)
    assert fallback.dtype == torch.int32 and torch.equal(fallback.long(), crossing_steps(odd, table))


@pytest.mark.parametrize("cfg", [TTFSConfig(T=12, tau=3.0), TTFSConfig(T=12, tau=3.0, ef_start=5)], ids=["noEF", "EF"])
def test_exact_equals_clock_with_average_pooling_before_the_output(cfg):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
                          nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 2 * 2, 5)).eval()
    images = torch.rand(16, 1, 14, 14, generator=torch.Generator().manual_seed(3))
    net = convert(model, images, percentile=99.0)
    _assert_identical(net.simulate(images, cfg, engine="exact"), net.simulate(images, cfg, engine="clock"))


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c.ef_start is not None], ids=lambda c: f"T{c.T}-ef{c.ef_start}")
def test_early_firing_one_cutoff_at_a_time_equals_clock(monkeypatch, cfg):
    """Large layers evaluate early firing's partial sums one cutoff at a time (latest first); force that path."""
    from t2fsnn.snn.engines import ttfs

    monkeypatch.setattr(ttfs, "_ONE_BATCH", 0)
    model = _random_network(1)
    images = torch.rand(24, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    net = convert(model, images, percentile=99.0)
    _assert_identical(net.simulate(images, cfg, engine="exact"), net.simulate(images, cfg, engine="clock"))


def test_early_firing_one_cutoff_at_a_time_on_trained_mnist_cnn(monkeypatch, trained_mnist):
    from t2fsnn.snn.engines import ttfs

    monkeypatch.setattr(ttfs, "_ONE_BATCH", 0)
    net, images, _ = trained_mnist
    cfg = TTFSConfig(T=20, tau=5.0, ef_start=10)
    _assert_identical(net.simulate(images, cfg, engine="exact"), net.simulate(images, cfg, engine="clock"))


# ----------------------------------------------------------------------------- exactness up to rounding, certified

def _certify(net, images, cfg):
    from t2fsnn.snn.engines import ttfs

    certificate = ttfs.certify_against_clock(net, images, cfg)
    assert certificate.uncertified == [], certificate.uncertified[:5]
    assert certificate.certified == certificate.differing
    return certificate


@pytest.mark.parametrize("method", ["candidates", "cutoffs", "events"])
@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c.ef_start is not None], ids=lambda c: f"T{c.T}-ef{c.ef_start}")
def test_every_difference_from_the_clock_is_a_certified_tie_on_random_networks(monkeypatch, method, cfg):
    from t2fsnn.snn.engines import ttfs

    monkeypatch.setattr(ttfs, "early_firing_method", method)
    for seed in (0, 1):
        model = _random_network(seed)
        images = torch.rand(24, 1, 12, 12, generator=torch.Generator().manual_seed(seed))
        net = convert(model, images, percentile=99.0)
        _certify(net, images, cfg)


@pytest.mark.parametrize("method", ["candidates", "cutoffs", "events"])
def test_every_difference_from_the_clock_is_a_certified_tie_on_the_trained_mnist_cnn(monkeypatch, trained_mnist,
                                                                                      method):
    from t2fsnn.snn.engines import ttfs

    monkeypatch.setattr(ttfs, "early_firing_method", method)
    net, images, _ = trained_mnist
    for cfg in (TTFSConfig(T=20, tau=5.0, ef_start=10), TTFSConfig(T=80, tau=20.0, ef_start=40)):
        _certify(net, images, cfg)
        exact, clock = net.simulate(images, cfg, engine="exact"), net.simulate(images, cfg, engine="clock")
        assert abs(exact.accuracy(_labels(net, images)) - clock.accuracy(_labels(net, images))) <= 100 / len(images)


@pytest.fixture(scope="module")
def small_vgg_and_its_clock():
    """The small VGG at the paper's setting (T = 80, tau = 20, EF at 40), and the clock's predictions (run once)."""
    from t2fsnn import models

    torch.manual_seed(0)
    images = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    net = convert(models.build("vgg_small", 10).eval(), images)
    cfg = TTFSConfig(T=80, tau=20.0, ef_start=40)
    return net, images, cfg, net.simulate(images, cfg, engine="clock").predictions_over_time


@pytest.mark.parametrize("method", ["candidates", "cutoffs", "events"])
def test_every_difference_from_the_clock_is_a_certified_tie_on_the_small_vgg(monkeypatch, method,
                                                                             small_vgg_and_its_clock):
    """Its weights are drawn, since the tests never read CIFAR-10, but its convolutions, pooling and dense
    layers are the book's."""
    from t2fsnn.snn.engines import ttfs

    monkeypatch.setattr(ttfs, "early_firing_method", method)
    net, images, cfg, clock_predictions = small_vgg_and_its_clock
    certificate = _certify(net, images, cfg)
    exact = net.simulate(images, cfg, engine="exact")
    if sum(certificate.differing) == 0:  # no tie at all: the two engines agree spike for spike, step by step
        assert torch.equal(exact.predictions_over_time, clock_predictions)


def _strided_network(seed: int) -> nn.Sequential:
    """Convolutions with stride, dilation, uneven padding and a non-square kernel: the events method's grid layout."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 5, 3, stride=2, padding=2, dilation=2), nn.ReLU(),
        nn.Conv2d(5, 6, (3, 2), stride=(1, 2), padding=(1, 0)), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 4, 1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 2, 7), nn.ReLU(), nn.Linear(7, 3),
    ).eval()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_events_method_certifies_on_strided_dilated_and_padded_convolutions(monkeypatch, seed):
    from t2fsnn.snn.engines import ttfs

    monkeypatch.setattr(ttfs, "early_firing_method", "events")
    images = torch.rand(16, 2, 17, 15, generator=torch.Generator().manual_seed(seed))
    net = convert(_strided_network(seed), images, percentile=99.0)
    for cfg in (TTFSConfig(T=24, tau=6.0, ef_start=8), TTFSConfig(T=12, tau=[2.0, 3.0, 4.0, 5.0, 3.0], ef_start=3)):
        certificate = _certify(net, images, cfg)
        exact, clock = net.simulate(images, cfg, engine="exact"), net.simulate(images, cfg, engine="clock")
        if sum(certificate.differing) == 0:
            _assert_identical(exact, clock)


def test_the_output_window_through_average_pooling_equals_the_clock():
    """The output block of the average-pooling MNIST CNN pools before its synapse: the window thresholds the
    decoded spikes, then applies the whole block at each step, as the clock does."""
    from t2fsnn import models

    torch.manual_seed(0)
    images = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    net = convert(models.build("mnist_cnn_avg", 10).eval(), images)
    assert any(isinstance(module, nn.AvgPool2d) for module in net.blocks[-1].routing)
    cfg = TTFSConfig(T=20, tau=5.0)
    _assert_identical(net.simulate(images, cfg, engine="exact"), net.simulate(images, cfg, engine="clock"))


def test_the_events_method_lays_out_one_step_at_a_time_when_the_budget_is_small(monkeypatch):
    """The CSR layout of several steps at once, cut into chunks of one step, gives the same spikes."""
    from t2fsnn.snn.engines import ttfs

    monkeypatch.setattr(ttfs, "early_firing_method", "events")
    images = torch.rand(16, 2, 17, 15, generator=torch.Generator().manual_seed(3))
    net = convert(_strided_network(3), images, percentile=99.0)
    cfg = TTFSConfig(T=24, tau=6.0, ef_start=8)
    whole = net.simulate(images, cfg, engine="exact")
    monkeypatch.setattr(ttfs, "_EVENT_ROWS_BUDGET", 1)
    _assert_identical(net.simulate(images, cfg, engine="exact"), whole)


def test_auto_takes_the_events_method_on_the_cpu_and_cutoffs_elsewhere(monkeypatch):
    from t2fsnn.snn.engines import ttfs

    monkeypatch.setattr(ttfs, "early_firing_method", "auto")
    assert ttfs.chosen_early_firing_method(torch.device("cpu")) == "events"
    assert ttfs.chosen_early_firing_method(torch.device("cuda")) == "cutoffs"
    monkeypatch.setattr(ttfs, "early_firing_method", "cutoffs")
    assert ttfs.chosen_early_firing_method(torch.device("cpu")) == "cutoffs"


def test_an_unknown_early_firing_method_is_refused_before_any_work(monkeypatch, trained_mnist):
    from t2fsnn.snn.engines import ttfs

    monkeypatch.setattr(ttfs, "early_firing_method", "sparse")
    net, images, _ = trained_mnist
    with pytest.raises(ValueError, match=r"early_firing_method='sparse' is not allowed: choose one of 'auto', "):
        net.simulate(images, TTFSConfig(T=20, tau=5.0, ef_start=10), engine="exact")


def test_the_events_bound_counts_the_subtracted_terms_twice():
    from t2fsnn.snn.engines.ttfs import engine_sums, rounding_bound

    layer = nn.Linear(100, 4)
    once, twice = rounding_bound(layer, 1.0), rounding_bound(layer, 1.0, sums=engine_sums("events"))
    assert engine_sums("cutoffs") == 1 and engine_sums("events") == 2
    assert bool((twice > 2 * once).all()) and bool((twice < 4.2 * once).all())


def _labels(net, images):
    return net.ann_forward(images).argmax(1)


def test_the_certificate_refuses_a_difference_that_rounding_cannot_explain(monkeypatch, trained_mnist):
    """An engine that fires one step late where the potential is far above the threshold is caught."""
    from t2fsnn.snn.engines import ttfs

    net, images, _ = trained_mnist
    cfg = TTFSConfig(T=20, tau=5.0, ef_start=10)
    honest = ttfs._fire_steps

    def late_by_one(*args):
        steps, T = honest(*args), args[4]
        return torch.where(steps < T - 1, steps + 1, steps)  # every spike but the last step's, one step late

    monkeypatch.setattr(ttfs, "_fire_steps", late_by_one)
    certificate = ttfs.certify_against_clock(net, images, cfg)
    assert certificate.uncertified and sum(certificate.differing) > sum(certificate.certified)


def test_the_rounding_bound_covers_a_float32_sum_in_another_order():
    from t2fsnn.snn.engines.ttfs import rounding_bound

    torch.manual_seed(0)
    layer = nn.Linear(4096, 8)
    x = torch.rand(64, 4096)
    by_matmul = layer(x)
    by_float64 = (x.double() @ layer.weight.double().t() + layer.bias.double())
    bound = rounding_bound(layer, 1.0)
    assert bool(((by_matmul.double() - by_float64).abs() <= bound).all())
    assert bool((bound > 0).all()) and bool((bound < 1e-2).all())
