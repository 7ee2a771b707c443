"""The engines on CUDA: the same spikes as the clock reference there, and as the CPU (skipped without a GPU)."""
import pytest
import torch
from torch import nn

from t2fsnn import TTFSConfig, convert, models
from t2fsnn.snn.metrics import evaluate

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(autouse=True)
def full_precision():
    # TF32 convolutions would round potentials differently from the CPU
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


@pytest.mark.parametrize("name,shape", [("mnist_cnn", (1, 28, 28)), ("vgg_small", (3, 32, 32))])
@pytest.mark.parametrize("cfg", [TTFSConfig(T=20, tau=5.0), TTFSConfig(T=20, tau=5.0, ef_start=10),
                                 TTFSConfig(T=12, tau=3.0, td=-1.0, ef_start=4)], ids=["base", "ef10", "ef4"])
def test_exact_equals_clock_on_cuda(name, shape, cfg):
    torch.manual_seed(0)
    images = torch.rand((32,) + shape)
    net = convert(models.build(name, 10).eval(), images).cuda()
    exact = net.simulate(images.cuda(), cfg, engine="exact")
    clock = net.simulate(images.cuda(), cfg, engine="clock")
    for a, b in zip(exact.spike_times, clock.spike_times):
        assert torch.equal(a, b)
    assert torch.equal(exact.predictions_over_time, clock.predictions_over_time)


def test_cuda_matches_cpu_predictions():
    torch.manual_seed(1)
    images = torch.rand(64, 1, 28, 28)
    labels = torch.randint(0, 10, (64,))
    net = convert(models.build("mnist_cnn", 10).eval(), images)
    cfg = TTFSConfig(T=20, tau=5.0, ef_start=10)
    cpu = evaluate(net, images, labels, cfg, device="cpu", progress=False)
    gpu = evaluate(net, images, labels, cfg, device="cuda", progress=False)
    # potentials may differ in the last bits between devices: spikes agree to within a few per thousand
    assert abs(cpu.spikes_per_image - gpu.spikes_per_image) <= 0.005 * cpu.spikes_per_image
    assert abs(cpu.accuracy - gpu.accuracy) <= 100.0 / 64 * 2
