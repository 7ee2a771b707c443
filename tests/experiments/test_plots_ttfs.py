"""The primer's and spike-time chapter's figure helpers draw what they are given."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from t2fsnn import TTFSConfig, convert
from t2fsnn.experiments import analysis, plots  # noqa: E402
from t2fsnn.snn.engines.ttfs import trace_clock  # noqa: E402
from t2fsnn.snn.metrics import evaluate  # noqa: E402


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    images = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    net = convert(model, images, percentile=99.0)
    labels = net.ann_forward(images).argmax(1)
    return net, images, labels


def test_coding_figures():
    fig = plots.kernel_and_threshold(20, [2, 5], [0, 2])
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 4  # a line and dots per tau
    plt.close(fig)
    table = analysis.coding_table([1.0, 0.4, 0.05, 0.001], 20, 5.0)
    fig = plots.encoding_decoding(table, 20, 5.0)
    assert len(fig.axes) == 2
    plt.close(fig)
    sweep = analysis.tau_tradeoff(torch.rand(500, dtype=torch.float64), 20, [2.0, 5.0, 10.0])
    fig = plots.tau_tradeoff(sweep, values=torch.rand(500))
    assert len(fig.axes) == 3  # range, error and its twin axis
    plt.close(fig)


def test_trace_and_evaluation_figures(small):
    net, images, labels = small
    traces = {"T2FSNN": trace_clock(net, images[:1], TTFSConfig(T=8, tau=2.0)),
              "T2FSNN+EF": trace_clock(net, images[:1], TTFSConfig(T=8, tau=2.0, ef_start=4))}
    fig = plots.spike_raster(traces["T2FSNN"])
    spikes = sum(len(c.get_offsets()) for c in fig.axes[1].collections)
    assert spikes == int(traces["T2FSNN"].result.num_spikes[0])
    plt.close(fig)
    fig = plots.membrane_traces(traces, 1, [0, 1])
    assert len(fig.axes) == 2
    plt.close(fig)
    evaluations = {name: evaluate(net, images, labels, cfg, progress=False)
                   for name, cfg in (("T2FSNN", TTFSConfig(T=8, tau=2.0)), ("EF", TTFSConfig(T=8, tau=2.0, ef_start=4)))}
    fig = plots.spike_time_histograms(evaluations)
    assert len(fig.axes) == 2
    plt.close(fig)
    fig = plots.spikes_per_layer(evaluations)
    assert len(fig.axes[0].patches) == 2 * net.num_spiking_layers
    plt.close(fig)
    fig = plots.accuracy_curves(evaluations, reference=100.0)
    assert len(fig.axes[0].lines) == 3
    plt.close(fig)
    table = analysis.loss_breakdown(net, images, labels, TTFSConfig(T=8, tau=2.0, ef_start=4))
    fig = plots.loss_breakdown(table)
    assert len(fig.axes[0].patches) == len(table)
    plt.close(fig)
