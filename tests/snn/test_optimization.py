"""Gradient-based optimization of the kernels: the optimizer (the losses: test_go_losses.py)."""
import pandas as pd
import pytest
import torch

from t2fsnn import TTFSConfig
from t2fsnn.snn import optimization as go
from t2fsnn.data import load
from t2fsnn.snn.engines.ttfs import layer_fire_steps, local_fire_steps
from t2fsnn.data import to_tensors
from model_fixtures import trained_model, trained_mnist  # noqa: F401


class _Untouchable:
    def __getattr__(self, name):
        raise AssertionError(f"the network was used ({name}) before the arguments were checked")


@pytest.mark.parametrize("options,match", [
    ({"steps": 0}, "steps=0"), ({"steps": 2.5}, "steps"), ({"lr": 0.0}, "lr=0.0"), ({"lr": float("nan")}, "lr"),
    ({"batch_size": 0}, "batch_size=0"), ({"seed": -1}, "seed=-1"), ({"rates": (1.0, 2.0)}, "rates"),
    ({"rates": (1.0, -2.0, 1.0)}, "rates"), ({"min_percentile": 120.0}, "min_percentile"),
    ({"min_percentile": 50.0, "max_percentile": 10.0}, "min_percentile"), ({"max_target": "largest"}, "max_target"),
    ({"tau_floor": 0.0}, "tau_floor"),
])
def test_bad_options_are_refused_before_any_work(options, match):
    images = torch.rand(4, 1, 28, 28)
    with pytest.raises(ValueError, match=match):
        go.optimize_kernels(_Untouchable(), images, TTFSConfig(T=20, tau=5.0), **options)


def test_bad_images_and_config_are_refused():
    cfg = TTFSConfig(T=20, tau=5.0)
    with pytest.raises(ValueError, match="images"):
        go.optimize_kernels(_Untouchable(), torch.empty(0, 1, 28, 28), cfg)
    with pytest.raises(ValueError, match="images"):
        go.optimize_kernels(_Untouchable(), [[0.0]], cfg)
    with pytest.raises(ValueError, match="cfg"):
        go.optimize_kernels(_Untouchable(), torch.rand(2, 1, 28, 28), {"T": 20})


# --- the optimizer on a small trained network -------------------------------------------

@pytest.fixture(scope="module")
def setting(trained_mnist):
    net, test_images, _ = trained_mnist
    train_images, _ = to_tensors(load("mnist_subset", "train"), 600)
    return net, train_images


@pytest.mark.parametrize("cfg", [TTFSConfig(T=20, tau=5.0), TTFSConfig(T=12, tau=[2.0, 3.0, 4.0], td=[0.0, -1.0, 0.5], ef_start=4)])
def test_layer_fire_steps_agree_with_the_exact_engine(setting, cfg):
    net, images = setting
    x = images[:16]
    result = net.simulate(x, cfg, engine="exact")
    steps = local_fire_steps(net, x, cfg)
    for layer, (local, global_) in enumerate(zip(steps, result.spike_times)):
        expected = torch.where(global_ >= 0, global_ - layer * cfg.stride, global_)
        assert torch.equal(local, expected)
    with pytest.raises(ValueError, match="layer=9"):
        layer_fire_steps(net, cfg, 9, x)


def _early_late(history, column, n=5):
    per_step = history.groupby("step")[column].sum()
    return per_step.iloc[:n].mean(), per_step.iloc[-n:].mean()


def test_from_a_small_tau_tau_rises_and_the_precision_loss_falls(setting, tmp_path):
    net, images = setting
    cfg = TTFSConfig(T=20, tau=2.0)
    cfg_opt, history = go.optimize_kernels(net, images, cfg, steps=25, batch_size=16, cache_root=tmp_path)
    assert list(history.columns) == ["step", "layer", "tau", "td", "L_prec", "L_min", "L_max"]
    assert len(history) == 25 * net.num_spiking_layers
    assert all(t > 2.0 for t in cfg_opt.tau)
    early, late = _early_late(history, "L_prec")
    assert late < 0.7 * early
    early, late = _early_late(history, "L_max")
    assert late < 0.5 * early
    # the first spike moves earlier: t_d < 0 in the hidden layers
    assert all(t < 0 for t in cfg_opt.td[1:])


def test_from_a_large_tau_tau_falls_and_the_min_loss_falls(setting):
    net, images = setting
    cfg = TTFSConfig(T=20, tau=18.0)
    cfg_opt, history = go.optimize_kernels(net, images, cfg, steps=25, batch_size=16, use_cache=False)
    assert all(t < 18.0 for t in cfg_opt.tau)
    early, late = _early_late(history, "L_min")
    assert late < 0.5 * early
    first = history[history.step == 1].set_index("layer")["tau"]
    assert (first == 18.0).all()


def test_result_is_cached_by_what_produced_it(setting, tmp_path):
    net, images = setting
    cfg = TTFSConfig(T=20, tau=5.0)
    options = dict(steps=3, batch_size=8, cache_root=tmp_path)
    first = go.optimize_kernels(net, images, cfg, **options)
    files = list((tmp_path / "kernels").glob("go-*.pt"))
    assert len(files) == 1
    again = go.optimize_kernels(net, images, cfg, **options)
    assert again[0] == first[0]
    pd.testing.assert_frame_equal(again[1], first[1])
    go.optimize_kernels(net, images, cfg, **{**options, "seed": 1})
    assert len(list((tmp_path / "kernels").glob("go-*.pt"))) == 2
    # the method on the network delegates here
    via_method = net.optimize_kernels(images, cfg, **options)
    assert via_method[0] == first[0]
