import pytest
import torch
from torch import nn

from t2fsnn import convert, models
from t2fsnn.snn.conversion import UnsupportedLayerError
from model_fixtures import trained_model, trained_mnist  # noqa: F401


def _with_random_batchnorm(model: nn.Module) -> nn.Module:
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("name,shape", [("mnist_cnn", (1, 28, 28)), ("vgg_small", (3, 32, 32))])
def test_conversion_preserves_predictions(name, shape):
    torch.manual_seed(0)
    model = _with_random_batchnorm(models.build(name, 10))
    images = torch.rand((48,) + shape)
    net = convert(model, images, percentile=99.9)
    with torch.no_grad():
        original = model(images)
    # scaling and folding are exact up to rounding: same logits, 100% argmax agreement
    assert torch.allclose(net.ann_forward(images, clip=False), original, atol=1e-4, rtol=1e-4)
    assert torch.equal(net.ann_forward(images, clip=False).argmax(1), original.argmax(1))
    # at the 100th percentile nothing on the calibration data is clipped
    full = convert(model, images, percentile=100.0)
    assert torch.equal(full.ann_forward(images).argmax(1), original.argmax(1))


def test_hidden_activations_in_unit_interval_and_clipped_above_percentile():
    torch.manual_seed(1)
    model = _with_random_batchnorm(models.build("mnist_cnn", 10))
    images = torch.rand(64, 1, 28, 28)
    net = convert(model, images, percentile=99.0)
    clipped = net.activations(images)
    raw = net.activations(images, clip=False)
    for a, r in zip(clipped[1:], raw[1:]):
        assert a.min() >= 0 and a.max() <= 1.0
        positive = r[r > 0]
        share_above = (positive > 1.0).float().mean().item()
        assert 0.0 < share_above <= 0.011  # about 1% of positive activations exceed the 99th percentile
    assert net.layer_names == ["input", "conv1", "conv2"]
    assert net.output_name == "fc1"
    assert len(net.scales) == 3 and net.scales[0] == 1.0


def test_trained_network_agrees_with_its_ann(trained_model, trained_mnist):
    net, images, _ = trained_mnist
    with torch.no_grad():
        original = trained_model.model(images).argmax(1)
    assert torch.equal(net.ann_forward(images, clip=False).argmax(1), original)


def test_accepts_plain_sequential_with_loader():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    model = _with_random_batchnorm(model)
    images = torch.rand(32, 1, 4, 4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(32)), batch_size=10)
    net = convert(model, loader)
    assert torch.equal(net.ann_forward(images, clip=False).argmax(1), model(images).argmax(1))


@pytest.mark.parametrize("layer", [nn.Sigmoid(), nn.LayerNorm(8), nn.GELU()])
def test_refuses_unsupported_layers_by_name(layer):
    model = nn.Sequential(nn.Linear(8, 8), layer, nn.Linear(8, 2))
    with pytest.raises(UnsupportedLayerError, match=type(layer).__name__):
        convert(model, torch.rand(4, 8))


def test_refuses_bad_percentile_and_empty_calibration():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="percentile=0"):
        convert(model, torch.rand(4, 8), percentile=0)
    with pytest.raises(ValueError, match="calibration holds no images"):
        convert(model, torch.rand(0, 8))


def test_refuses_boolean_percentile_and_remembers_input_shape():
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="percentile=True"):
        convert(model, torch.rand(4, 1, 8), percentile=True)
    assert convert(model, torch.rand(4, 1, 8)).input_shape == (1, 8)
