"""The losses and analytic gradients of gradient-based kernel optimization (Eqs. 9-14)."""
import math

import pytest
import torch

from t2fsnn.snn import go_losses as losses
from t2fsnn.snn.kernels import decode, encode, representable_range


def _sample(seed=0, shape=(4, 3, 5, 5), T=20):
    g = torch.Generator().manual_seed(seed)
    z_bar = torch.rand(shape, generator=g, dtype=torch.float64)
    t_f = torch.randint(-1, T, shape, generator=g)
    return z_bar, t_f


def _autograd(loss_fn, tau, td):
    tau_t = torch.tensor(tau, dtype=torch.float64, requires_grad=True)
    td_t = torch.tensor(td, dtype=torch.float64, requires_grad=True)
    loss = loss_fn(tau_t, td_t)
    return torch.autograd.grad(loss, (tau_t, td_t))


@pytest.mark.parametrize("tau,td", [(2.0, 0.0), (5.0, -1.5), (18.0, 2.0), (0.7, -3.0)])
def test_precision_gradient_matches_autograd(tau, td):
    z_bar, t_f = _sample()
    expected = _autograd(lambda a, b: losses.precision_loss(z_bar, t_f, a, b), tau, td)
    got = losses.precision_loss_grad(z_bar, t_f, tau, td)
    for e, g in zip(expected, got):
        assert torch.allclose(g, e, rtol=1e-10, atol=1e-14)
    assert got[0] != 0 and got[1] != 0


@pytest.mark.parametrize("tau,td", [(2.0, 0.0), (5.0, -1.5), (18.0, 2.0)])
def test_representation_gradients_match_autograd(tau, td):
    g = torch.Generator().manual_seed(1)
    z_min = torch.rand(6, generator=g, dtype=torch.float64) * 0.1
    z_max = 0.5 + 0.5 * torch.rand(6, generator=g, dtype=torch.float64)
    z_min[2] = float("nan")  # an image without positive activations is ignored
    T = 20
    cases = [
        (lambda a, b: losses.min_representation_loss(z_min, T, a, b), losses.min_representation_loss_grad(z_min, T, tau, td)),
        (lambda a, b: losses.max_representation_loss(z_max, a, b), losses.max_representation_loss_grad(z_max, tau, td)),
    ]
    for loss_fn, got in cases:
        expected = _autograd(loss_fn, tau, td)
        for e, value in zip(expected, got):
            assert torch.allclose(value, e, rtol=1e-10, atol=1e-15)


def test_paper_equations_12_to_14_written_out():
    """The paper's closed forms (Eqs. 12-14), typed independently, agree with the functions."""
    z_bar, t_f = _sample(seed=3)
    tau, td, T = 4.0, -1.0, 20
    fired = t_f >= 0
    z_hat = torch.exp(-(t_f[fired].double() - td) / tau)
    eq12 = -((t_f[fired] - td) / tau ** 2 * (z_bar[fired] - z_hat) * z_hat).mean()
    assert math.isclose(float(losses.precision_loss_grad(z_bar, t_f, tau, td)[0]), float(eq12), rel_tol=1e-12)
    z_min_bar, z_max_bar = 0.01, 0.8
    z_min_hat, z_max_hat = math.exp(-(T - td) / tau), math.exp(td / tau)
    eq13 = -(T - td) / tau ** 2 * (z_min_bar - z_min_hat) * z_min_hat
    eq14 = -1 / tau * (z_max_bar - z_max_hat) * z_max_hat
    assert math.isclose(float(losses.min_representation_loss_grad(torch.tensor([z_min_bar], dtype=torch.float64), T, tau, td)[0]), eq13, rel_tol=1e-12)
    assert math.isclose(float(losses.max_representation_loss_grad(torch.tensor([z_max_bar], dtype=torch.float64), tau, td)[1]), eq14, rel_tol=1e-12)


def test_decoded_value_derivative_sign_by_finite_differences():
    """d z_hat / d tau = +(t_f - td)/tau^2 z_hat: positive for spikes after td."""
    t_f, tau, td, h = torch.tensor([3, 7, 12]), 5.0, -1.0, 1e-6
    fd = (decode(t_f, tau + h, td) - decode(t_f, tau - h, td)) / (2 * h)
    analytic = (t_f - td) / tau ** 2 * decode(t_f, tau, td)
    assert torch.allclose(fd, analytic, rtol=1e-6)
    assert (fd > 0).all()


def test_precision_gradient_equals_finite_differences_of_the_encoded_loss():
    """With the spike steps recomputed by the encoder, the loss is piecewise smooth; between
    jumps its finite-difference slope is Eq. 12."""
    g = torch.Generator().manual_seed(5)
    u = 0.02 + 0.98 * torch.rand(200, generator=g, dtype=torch.float64)
    z_bar = (u + 0.01 * torch.randn(200, generator=g, dtype=torch.float64)).clamp(0, 1)
    T, td, h = 20, -0.5, 1e-7
    for tau in (3.3, 5.1, 7.7):
        lo, hi = encode(u, T, tau - h, td), encode(u, T, tau + h, td)
        assert torch.equal(lo, hi), "no spike step may jump inside the difference interval"
        loss = lambda a: losses.precision_loss(z_bar, encode(u, T, a, td), a, td)
        fd = (loss(tau + h) - loss(tau - h)) / (2 * h)
        analytic = losses.precision_loss_grad(z_bar, encode(u, T, tau, td), tau, td)[0]
        assert math.isclose(float(fd), float(analytic), rel_tol=1e-5)


def test_precision_loss_counts_only_fired_neurons():
    z_bar = torch.tensor([0.5, 0.9, 0.3])
    t_f = torch.tensor([2, -1, -1])
    z_hat = math.exp(-2 / 4.0)
    assert math.isclose(float(losses.precision_loss(z_bar, t_f, 4.0, 0.0)), 0.5 * (0.5 - z_hat) ** 2, rel_tol=1e-12)
    assert float(losses.precision_loss(z_bar, torch.full((3,), -1), 4.0, 0.0)) == 0.0
    assert all(float(v) == 0.0 for v in losses.precision_loss_grad(z_bar, torch.full((3,), -1), 4.0, 0.0))


def test_losses_vanish_at_their_targets():
    tau, td, T = 5.0, -1.0, 20
    z_min = representable_range(T, tau, td)[0].reshape(1)
    z_max = representable_range(T, tau, td)[1].reshape(1)
    assert float(losses.min_representation_loss(z_min, T, tau, td)) == 0.0
    assert float(losses.max_representation_loss(z_max, tau, td)) == 0.0
    assert float(losses.min_representation_loss(torch.tensor([float("nan")]), T, tau, td)) == 0.0


def test_activation_range_is_a_per_image_percentile_of_positive_values():
    z = torch.zeros(2, 1, 10, 10)
    z[0].view(-1)[:50] = torch.linspace(0.01, 0.5, 50)
    low, high = losses.activation_range(z, 0.0, 100.0)
    assert math.isclose(float(low[0]), 0.01, rel_tol=1e-6) and math.isclose(float(high[0]), 0.5, rel_tol=1e-6)
    assert math.isnan(float(low[1])) and math.isnan(float(high[1]))
    low2, _ = losses.activation_range(z, 10.0, 100.0)
    assert float(low2[0]) > float(low[0])
    with pytest.raises(ValueError, match="min_percentile"):
        losses.activation_range(z, -1.0, 100.0)


def test_first_spike_value():
    t_f = torch.tensor([[[-1, 4, 2]], [[-1, -1, -1]]])
    values = losses.first_spike_value(t_f, 2.0, 0.0)
    assert math.isclose(float(values[0]), math.exp(-1.0), rel_tol=1e-12)
    assert math.isnan(float(values[1]))
