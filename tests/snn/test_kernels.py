import math

import pytest
import torch

from t2fsnn.snn import kernels


def test_kernel_matches_eq5():
    t = torch.arange(0, 10, dtype=torch.float64)
    expected = torch.exp(-(t - 1.5) / 4.0)
    assert torch.allclose(kernels.kernel(t, 4.0, 1.5), expected)
    assert torch.allclose(kernels.threshold(t, 4.0, 1.5, theta0=0.5), 0.5 * expected)


@pytest.mark.parametrize("tau,td", [(5.0, 0.0), (2.0, -1.3), (18.0, 2.7)])
def test_encode_matches_closed_form_eq7(tau, td):
    T = 20
    u = torch.linspace(1e-4, 1.0, 2001, dtype=torch.float64)
    steps = kernels.encode(u, T, tau, td)
    closed = torch.ceil(-tau * torch.log(u) + td).clamp_min(0)
    closed = torch.where(closed <= T - 1, closed, torch.full_like(closed, -1)).long()
    # the closed form and the threshold comparison may only disagree on exact ties
    assert (steps != closed).sum() <= 2
    fired = steps >= 0
    thresholds = kernels.threshold(steps[fired].double(), tau, td)
    assert torch.all(u[fired] >= thresholds)
    earlier = steps[fired] > 0
    assert torch.all(u[fired][earlier] < kernels.threshold(steps[fired][earlier].double() - 1, tau, td))


def test_encode_edges_never_nan():
    T, tau, td = 10, 3.0, 1.0
    u = torch.tensor([-1.0, 0.0, float("nan"), 1e-30, math.exp(td / tau), 5.0, float("inf")], dtype=torch.float64)
    steps = kernels.encode(u, T, tau, td)
    assert steps.tolist()[:4] == [-1, -1, -1, -1]  # u <= 0, NaN and tiny values never fire
    assert steps.tolist()[4:] == [0, 0, 0]  # at or above the largest value: the earliest step
    decoded = kernels.decode(steps, tau, td)
    assert not torch.isnan(decoded).any()
    assert decoded[:4].eq(0).all()


def test_decode_roundtrip_error_bounded_by_precision_error():
    tau, td, T = 5.0, 0.0, 40
    _, z_max = kernels.representable_range(T, tau, td)
    smallest_fired = kernels.threshold(T - 1, tau, td)  # the last step of the window
    u = torch.linspace(float(smallest_fired), float(z_max), 500, dtype=torch.float64)
    x_hat = kernels.decode(kernels.encode(u, T, tau, td), tau, td)
    assert torch.all(x_hat <= u)  # the crossed threshold is never above the potential
    assert torch.all(u - x_hat <= kernels.precision_error(x_hat, tau) + 1e-12)


def test_precision_error_and_range_formulas():
    assert kernels.precision_error(0.5, 2.0).item() == pytest.approx(0.5 * (math.exp(0.5) - 1))
    z_min, z_max = kernels.representable_range(20, 5.0, 1.0)
    assert z_min.item() == pytest.approx(math.exp(-19 / 5))
    assert z_max.item() == pytest.approx(math.exp(1 / 5))


def test_threshold_table_strictly_decreasing():
    table = kernels.threshold_table(30, 4.0, -2.0)
    assert torch.all(table[1:] < table[:-1])
    assert kernels.first_crossing(torch.tensor([table[3].item()]), table).item() == 3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("tau,td,T,theta0", [(5, 0, 20, 1.0), (2, -1, 20, 0.3), (18, 3, 20, 1.0), (20, -4, 80, 1.0),
                                             (1, 0, 1, 1.0), (1e-3, 0, 3, 1.0), (0.5, 0, 400, 1.0)])
def test_first_crossing_equals_stepwise_comparison(dtype, tau, td, T, theta0):
    """The closed form with correction matches comparing u with every threshold, ties and edges included."""
    table = kernels.threshold_table(T, tau, td, theta0, dtype=dtype)
    u = torch.cat([
        torch.rand(20000, generator=torch.Generator().manual_seed(T), dtype=dtype) * 1.5 - 0.1,
        table,  # exactly on a threshold
        table.nextafter(torch.full_like(table, 10.0)),
        table.nextafter(torch.zeros_like(table)),
        torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0], dtype=dtype),
    ])
    crossed = u[:, None] >= table[None, :]
    stepwise = torch.where(crossed.any(1), crossed.to(torch.uint8).argmax(1), torch.full((len(u),), -1))
    assert torch.equal(kernels.first_crossing(u, table), stepwise)


def test_fire_and_decode_fused_formula_equals_the_lookups():
    """The formula the fused kernel compiles gives the same steps and values as the two look-ups it replaces."""
    from t2fsnn.snn import kernels

    table = kernels.threshold_table(T=80, tau=20.0, td=0.0)
    values = torch.cat([table, torch.zeros(1)])
    u = torch.cat([torch.randn(5000) * 2, table, torch.nextafter(table, torch.zeros_like(table)), torch.zeros(3)])
    buckets = kernels._bucket_tables(table)
    assert buckets is not None
    inner, count = buckets
    rows = u[:5160].view(2, -1)
    steps, decoded, spikes = kernels._steps_and_values(rows, count, inner, values)
    expected = kernels.crossing_steps(rows, table)
    assert steps.dtype == torch.int32 and torch.equal(steps.long(), expected) and torch.equal(decoded, values[expected])
    assert torch.equal(spikes, (expected < 80).sum(1))
    assert torch.equal(steps.view(-1)[5000:5080].long(), torch.arange(80))  # a potential equal to a threshold fires at its step


def test_fire_and_decode_gives_the_crossing_steps_their_values_and_the_spikes_per_image():
    from t2fsnn.snn import kernels

    table = kernels.threshold_table(T=20, tau=5.0, td=0.0)
    values = torch.cat([table, torch.zeros(1)])
    u = torch.cat([torch.randn(3, 4, 5, 6) * 3, table.view(1, 4, 5, 1).expand(1, 4, 5, 6)])
    steps, decoded, spikes = kernels.fire_and_decode(u, table, values)
    expected = kernels.crossing_steps(u, table)
    assert steps.shape == u.shape and torch.equal(steps.long(), expected)
    assert torch.equal(decoded, values[expected])
    assert torch.equal(spikes, (expected < 20).flatten(1).sum(1)) and spikes.dtype == torch.int64
    assert int(spikes[-1]) == u[0].numel()  # a potential equal to its threshold fires
    nan = u.clone()
    nan[0, 0, 0, 0] = float("nan")  # not finite: the log form, where NaN never fires
    steps, _, spikes = kernels.fire_and_decode(nan, table, values)
    assert int(steps[0, 0, 0, 0]) == 20 and int(spikes[0]) == int((expected[0] < 20).sum()) - int(expected[0, 0, 0, 0] < 20)


def test_the_engine_gives_the_same_spikes_with_the_fused_pass(monkeypatch):
    """The fused path through simulate_exact, traced by dynamo without code generation (no compile to wait for)."""
    from t2fsnn import TTFSConfig, convert, models
    from t2fsnn.snn import kernels

    torch.manual_seed(0)
    x = torch.rand(16, 1, 28, 28)
    net = convert(models.build("mnist_cnn", 10).eval(), x)
    cfg = TTFSConfig(T=20, tau=5.0)
    plain = net.simulate(x, cfg, engine="exact")
    monkeypatch.setattr(kernels, "fuse_elementwise", True)
    monkeypatch.setattr(kernels, "_COMPILED", {kernels._steps_and_values: torch.compile(
        kernels._steps_and_values, backend="eager", dynamic=True)})
    fused = net.simulate(x, cfg, engine="exact")
    assert all(torch.equal(a, b) for a, b in zip(plain.spike_times, fused.spike_times))
    assert torch.equal(plain.predictions_over_time, fused.predictions_over_time)


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.int64])
def test_mark_crossings_writes_the_step_where_the_potential_reaches_the_threshold(dtype):
    from t2fsnn.snn import kernels

    generator = torch.Generator().manual_seed(0)
    potential = torch.randn(6, 5, 7, generator=generator)
    potential[0, 0, 0], potential[0, 0, 1] = float("nan"), 0.25  # NaN never crosses; equal to the threshold crosses
    steps = torch.randint(8, 20, potential.shape, generator=generator).to(dtype)
    expected = torch.where(potential >= 0.25, 3, steps)
    marked = kernels.mark_crossings(steps.clone(), potential.transpose(1, 2).contiguous().transpose(1, 2),
                                    torch.tensor(0.25), 3)
    assert marked.dtype == dtype and torch.equal(marked, expected)
    assert int(marked[0, 0, 0]) >= 8 and int(marked[0, 0, 1]) == 3
    # the scratch buffers serve call after call: an earlier step, then another potential
    buffers = kernels.crossing_buffers(steps, potential)
    reused = kernels.mark_crossings(steps.clone(), potential, torch.tensor(0.25), 3, buffers)
    reused = kernels.mark_crossings(reused, potential - 1.0, torch.tensor(0.25), 1, buffers)
    assert torch.equal(reused, torch.where(potential - 1.0 >= 0.25, 1, expected).to(dtype))
