"""trace_clock records the clock engine's membranes and thresholds without changing its result."""
import math

import pytest
import torch
from torch import nn

from t2fsnn import TTFSConfig, convert
from t2fsnn.snn.engines.ttfs import simulate_clock, trace_clock


def _network():
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(3 * 4 * 4, 10), nn.ReLU(), nn.Linear(10, 4),
    ).eval()
    images = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    return convert(model, images, percentile=99.0), images


@pytest.mark.parametrize("cfg", [
    TTFSConfig(T=10, tau=3.0),
    TTFSConfig(T=10, tau=[2.0, 3.0, 4.0], td=[0.0, 1.0, -0.5], ef_start=4),
])
def test_trace_keeps_the_clock_result_and_records_consistent_membranes(cfg):
    net, images = _network()
    trace = trace_clock(net, images, cfg)
    reference = simulate_clock(net, images, cfg)
    for a, b in zip(trace.result.spike_times, reference.spike_times):
        assert torch.equal(a, b)
    assert torch.equal(trace.result.predictions_over_time, reference.predictions_over_time)
    L, T, s = net.num_spiking_layers, cfg.T, cfg.stride
    latency = cfg.latency(L)
    assert trace.names == net.layer_names + [net.output_name] and len(trace.membranes) == L + 1
    assert trace.thresholds.shape == (latency, L)
    for l in range(L):
        phase = torch.zeros(latency, dtype=torch.bool)
        phase[l * s:l * s + T] = True
        assert not torch.isnan(trace.thresholds[phase, l]).any() and torch.isnan(trace.thresholds[~phase, l]).all()
    for l in range(1, L):
        membrane = trace.membranes[l]
        assert membrane.shape == (latency, len(images), trace.result.spike_times[l][0].numel())
        assert torch.isnan(membrane[:(l - 1) * s]).all() and not torch.isnan(membrane[(l - 1) * s:]).any()
        times = trace.result.spike_times[l].flatten(1)
        threshold = trace.thresholds[:, l]
        for b in range(len(images)):
            for n in range(times.shape[1]):
                t = int(times[b, n])
                fire_phase = range(l * s, (t + 1) if t >= 0 else l * s + T)
                for step in fire_phase:
                    crossed = bool(membrane[step, b, n] >= threshold[step].to(membrane.dtype))
                    assert crossed == (step == t), (l, b, n, step, t)
    out = trace.membranes[L]
    assert torch.isnan(out[:(L - 1) * s]).all()
    assert torch.allclose(out[-1], reference.output_potential)
    assert torch.equal(out[(L - 1) * s:].argmax(-1), reference.predictions_over_time[(L - 1) * s:])
    # the input layer's potential is the image itself
    assert torch.equal(trace.membranes[0][5], images.flatten(1))


def test_max_neurons_keeps_the_first_neurons_only():
    net, images = _network()
    cfg = TTFSConfig(T=8, tau=2.0)
    full = trace_clock(net, images[:2], cfg)
    cut = trace_clock(net, images[:2], cfg, max_neurons=5)
    for a, b in zip(full.membranes, cut.membranes):
        assert b.shape[-1] == min(5, a.shape[-1])
        assert torch.equal(torch.nan_to_num(a[..., :5], nan=math.pi), torch.nan_to_num(b, nan=math.pi))
    with pytest.raises(ValueError, match="max_neurons=0"):
        trace_clock(net, images, cfg, max_neurons=0)


def test_layers_records_only_the_chosen_layers():
    net, images = _network()
    cfg = TTFSConfig(T=8, tau=2.0)
    full = trace_clock(net, images[:2], cfg)
    some = trace_clock(net, images[:2], cfg, layers=[1, 3])
    assert [m.shape[-1] for m in some.membranes] == [0, full.membranes[1].shape[-1], 0, full.membranes[3].shape[-1]]
    assert torch.equal(torch.nan_to_num(some.membranes[1]), torch.nan_to_num(full.membranes[1]))
    with pytest.raises(ValueError, match="layers=\\[4\\]"):
        trace_clock(net, images, cfg, layers=[4])
