import pytest
import torch

from t2fsnn import cache, models
from t2fsnn.training import train_or_load

SMALL = dict(dataset="mnist_subset", model="mnist_cnn", epochs=2, lr=0.05, batch_size=64, seed=0,
             train_limit=600, device="cpu", progress=False)


def test_training_is_seeded_cached_and_resumes(tmp_path):
    first = train_or_load(**SMALL, cache_root=tmp_path / "a")
    assert not first.from_cache and len(first.history) == 2
    again = train_or_load(**SMALL, cache_root=tmp_path / "a")
    assert again.from_cache and again.key == first.key
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    # same seed and parameters in a fresh cache: the same weights
    fresh = train_or_load(**SMALL, cache_root=tmp_path / "b")
    for a, b in zip(first.model.state_dict().values(), fresh.model.state_dict().values()):
        assert torch.equal(a, b)
    # a different parameter gives a different key
    other = train_or_load(**{**SMALL, "seed": 1}, cache_root=tmp_path / "b")
    assert other.key != first.key
    assert not list((tmp_path / "a").rglob("*.tmp"))


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    import t2fsnn.training as training

    calls = {"n": 0}
    real_evaluate = training.evaluate

    def interrupt_after_first_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate", interrupt_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_or_load(**SMALL, cache_root=tmp_path)
    monkeypatch.setattr(training, "evaluate", real_evaluate)
    assert list(tmp_path.rglob("*.partial.pt")), "the completed epoch was checkpointed"
    resumed = train_or_load(**SMALL, cache_root=tmp_path)
    straight = train_or_load(**SMALL, cache_root=tmp_path / "straight")
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob("models/*.partial.pt"))


def test_corrupted_checkpoint_is_removed_and_retrained(tmp_path):
    trained = train_or_load(**{**SMALL, "epochs": 1}, cache_root=tmp_path)
    (path,) = list((tmp_path / "models").glob("*.pt"))
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(cache.CacheWarning, match=path.name):
        again = train_or_load(**{**SMALL, "epochs": 1}, cache_root=tmp_path)
    assert trained.key in path.name and not again.from_cache
    assert torch.equal(again.model.state_dict()["0.weight"], trained.model.state_dict()["0.weight"])
    assert cache.safe_load(path, ("state_dict",))  # rewritten, sound


@pytest.mark.parametrize(
    "override,fragment",
    [({"epochs": 0}, "epochs=0"), ({"lr": -1.0}, "lr=-1.0"), ({"batch_size": 0}, "batch_size=0"),
     ({"model": "resnet"}, "unknown model 'resnet'"), ({"dataset": "imagenet"}, "imagenet"),
     ({"train_limit": 0}, "train_limit=0"), ({"dataset": "cifar10"}, "channels"),
     ({"jpeg_quality": 0}, "jpeg_quality=0"), ({"jpeg_quality": 101}, "jpeg_quality=101")],
)
def test_bad_arguments_rejected_before_work(tmp_path, override, fragment):
    with pytest.raises(ValueError, match=fragment):
        train_or_load(**{**SMALL, **override}, cache_root=tmp_path)


def test_jpeg_round_trip_changes_images_a_little_and_is_deterministic():
    from t2fsnn.training import jpeg_round_trip

    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    once = jpeg_round_trip(images, 75)
    assert once.shape == images.shape and once.dtype == images.dtype
    assert 0 < (once - images).abs().mean() < 0.25  # lossy, but still the same images
    assert torch.equal(once, jpeg_round_trip(images, 75))
    assert (jpeg_round_trip(images, 95) - images).abs().mean() < (once - images).abs().mean()


def test_jpeg_training_is_its_own_model(tmp_path):
    plain = train_or_load(**{**SMALL, "epochs": 1}, cache_root=tmp_path)
    jpeg = train_or_load(**{**SMALL, "epochs": 1, "jpeg_quality": 75}, cache_root=tmp_path)
    assert jpeg.key != plain.key and jpeg.spec["jpeg_quality"] == 75 and "jpeg_quality" not in plain.spec
    assert not torch.equal(jpeg.model.state_dict()["0.weight"], plain.model.state_dict()["0.weight"])


def test_build_by_name():
    assert models.build("vgg16", 100)(torch.rand(2, 3, 32, 32)).shape == (2, 100)
    assert models.build("vgg_small", 10)(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert models.build("mnist_cnn", 10)(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    convs = [m for m in models.build("vgg16", 10).modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13
    with pytest.raises(ValueError, match="unknown model 'vgg19'"):
        models.build("vgg19", 10)
