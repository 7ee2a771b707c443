"""Table I helpers: the four configurations, the table, the paper's values beside ours, first spikes."""
import numpy as np
import pandas as pd
import pytest
import torch

from t2fsnn import TTFSConfig
from t2fsnn.experiments import ablation, paper_results
from t2fsnn.snn.engines.ttfs import local_fire_steps
from model_fixtures import trained_model, trained_mnist  # noqa: F401


def test_ablation_configs_share_kernels_and_start_early_firing_at_half_the_window():
    cfg = TTFSConfig(T=20, tau=5.0)
    opt = TTFSConfig(T=20, tau=(6.0, 5.5, 5.8), td=(0.0, -1.0, -1.5))
    configs = ablation.ablation_configs(cfg, opt)
    assert list(configs) == list(ablation.VARIANTS)
    assert configs["T2FSNN"].ef_start is None and configs["T2FSNN+GO"].ef_start is None
    assert configs["T2FSNN+EF"].ef_start == 10 and configs["T2FSNN+GO+EF"].ef_start == 10
    assert configs["T2FSNN+GO+EF"].tau == opt.tau and configs["T2FSNN+EF"].tau == cfg.tau
    assert ablation.ablation_configs(cfg, opt, 7)["T2FSNN+EF"].ef_start == 7
    with pytest.raises(ValueError, match="ef_start=21"):
        ablation.ablation_configs(cfg, opt, 21)
    with pytest.raises(ValueError, match="optimized.T"):
        ablation.ablation_configs(cfg, TTFSConfig(T=10, tau=5.0))


def test_table_and_paper_values(trained_mnist):
    net, images, labels = trained_mnist
    cfg = TTFSConfig(T=12, tau=3.0)
    configs = ablation.ablation_configs(cfg, TTFSConfig(T=12, tau=(3.5, 3.0, 3.2), td=(0.0, -0.5, -0.5)))
    evaluations = ablation.run_ablation(net, images[:32], labels[:32], configs)
    table = ablation.ablation_table(evaluations)
    assert list(table.columns) == ["latency", "accuracy", "spikes", "input spikes"]
    L = net.num_spiking_layers
    assert table.loc["T2FSNN", "latency"] == (L - 1) * 12 + 12
    assert table.loc["T2FSNN+EF", "latency"] == (L - 1) * 6 + 12
    result = net.simulate(images[:32], configs["T2FSNN+GO"])
    assert table.loc["T2FSNN+GO", "spikes"] == pytest.approx(result.hidden_spikes.double().mean().item())
    assert table.loc["T2FSNN+GO", "input spikes"] == pytest.approx(result.input_spikes.double().mean().item())
    paper = {name: paper_results.table_i(name) for name in paper_results.TABLE_I}
    combined = ablation.with_paper(table, paper, label="ours")
    assert combined.loc[("paper, CIFAR-100", "T2FSNN+GO+EF"), "accuracy"] == 68.79
    assert combined.loc[("paper, CIFAR-10", "T2FSNN"), "latency"] == 1280
    assert len(combined) == 12


def test_first_spike_profile_matches_the_engine(trained_mnist):
    net, images, _ = trained_mnist
    cfg = TTFSConfig(T=20, tau=5.0)
    x = images[:24]
    profile = ablation.first_spike_profile(net, x, cfg, batch_size=10)
    steps = local_fire_steps(net, x, cfg)
    for layer, t in enumerate(steps):
        flat = t.flatten(1).numpy()
        firsts = [row[row >= 0].min() for row in flat if (row >= 0).any()]
        assert profile.iloc[layer]["earliest first spike"] == min(firsts)
        assert profile.iloc[layer]["mean first spike"] == pytest.approx(np.mean(firsts))
        assert profile.iloc[layer]["spikes per image"] == pytest.approx((flat >= 0).sum() / len(x))
    both = ablation.first_spike_comparison(net, x, {"a": cfg, "b": TTFSConfig(T=20, tau=5.0, td=-2.0)})
    # a lower delay lowers every threshold: first spikes come no later
    assert (both[("b", "mean first spike")] <= both[("a", "mean first spike")] + 1e-12).all()
    with pytest.raises(ValueError, match="empty"):
        ablation.first_spike_profile(net, x[:0], cfg)


def test_kernels_beside_authors_only_where_the_authors_released_kernels():
    import pandas as pd
    from t2fsnn.experiments import ablation, paper_results

    names = ["input"] + [f"conv{i}" for i in range(1, 14)] + ["fc1", "fc2"]
    summary = pd.DataFrame({"tau after": [20.0 + i for i in range(16)], "td after": [-0.1 * i for i in range(16)]},
                           index=pd.Index(names, name="layer"))
    beside = ablation.kernels_beside_authors(summary, "cifar10", "vgg16", 80)
    assert list(beside.index) == names and beside["tau after GO"].iloc[3] == 23.0
    authors = paper_results.authors_kernels("CIFAR-10", "VGG-16", 80)
    assert beside["authors' tau"].tolist() == authors["tau"].tolist()
    assert 19 < authors["tau"].iloc[1:].min() < authors["tau"].iloc[1:].max() < 20  # hidden layers of the file
    assert ablation.kernels_beside_authors(summary, "cifar10", "vgg16", 20) is None
    assert ablation.kernels_beside_authors(summary, "mnist", "mnist_cnn", 80) is None
    with pytest.raises(ValueError, match="15 spiking layers here but 16"):
        ablation.kernels_beside_authors(summary.iloc[1:], "cifar10", "vgg16", 80)
    with pytest.raises(ValueError, match="released kernels for"):
        paper_results.authors_kernels("CIFAR-100", "VGG-16", 80)
