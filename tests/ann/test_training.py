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


def _record_beside_a_run(trained, cache_root, runs):
    """Put ``trained``'s cache file beside a made-up run.json, as ``t2fsnn record`` does."""
    import json
    import shutil

    from t2fsnn import data

    name = next((cache_root / "models").glob("*.pt")).name
    folder = runs / "made-up-run"
    folder.mkdir(parents=True)
    shutil.copyfile(cache_root / "models" / name, folder / name)
    (folder / "run.json").write_text(json.dumps({"models": {name: data.file_digest(folder / name, "sha256")}}))
    return folder / name


def test_a_recorded_ann_is_found_by_its_key_and_not_trained_again(tmp_path, monkeypatch):
    import t2fsnn.training as training

    first = train_or_load(**{**SMALL, "epochs": 1}, cache_root=tmp_path / "a")
    recorded = _record_beside_a_run(first, tmp_path / "a", tmp_path / "runs")

    def no_training(*args, **kwargs):
        raise AssertionError("trained although a recorded ANN has the key")

    monkeypatch.setattr(training, "_augment", no_training)
    monkeypatch.setattr(torch.optim, "SGD", no_training)
    loaded = train_or_load(**{**SMALL, "epochs": 1}, cache_root=tmp_path / "empty", recorded_root=tmp_path / "runs")
    assert loaded.from_cache and loaded.origin == str(recorded) and loaded.key == first.key
    for a, b in zip(first.model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)
    table = training.recorded_models(tmp_path / "runs")
    assert table.loc[0, "sha256"] == "verified" and table.loc[0, "model"] == "mnist_cnn"
    assert table.loc[0, "test accuracy (%)"] == pytest.approx(first.history["test_accuracy"].iloc[-1])
    # another key is not served by it: that one trains
    monkeypatch.undo()
    other = train_or_load(**{**SMALL, "epochs": 1, "seed": 3}, cache_root=tmp_path / "empty",
                          recorded_root=tmp_path / "runs")
    assert other.origin == "trained"


def test_a_recorded_ann_whose_hash_differs_is_refused(tmp_path):
    import json

    from t2fsnn.training import RecordedModelError

    first = train_or_load(**{**SMALL, "epochs": 1}, cache_root=tmp_path / "a")
    recorded = _record_beside_a_run(first, tmp_path / "a", tmp_path / "runs")
    with open(recorded, "r+b") as handle:  # one byte changed
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(RecordedModelError, match=r"made-up-run/mnist_cnn-.*\.pt: sha256 [0-9a-f]{64} differs from "
                                                 r"[0-9a-f]{64} recorded in .*run.json"):
        train_or_load(**{**SMALL, "epochs": 1}, cache_root=tmp_path / "empty", recorded_root=tmp_path / "runs")
    (recorded.parent / "run.json").write_text("{not json")
    with pytest.raises(RecordedModelError, match=r"run.json: not a readable run record"):
        train_or_load(**{**SMALL, "epochs": 1}, cache_root=tmp_path / "empty", recorded_root=tmp_path / "runs")
    (recorded.parent / "run.json").write_text(json.dumps({"models": {}}))
    with pytest.raises(RecordedModelError, match=r"run.json does not list it under 'models'"):
        train_or_load(**{**SMALL, "epochs": 1}, cache_root=tmp_path / "empty", recorded_root=tmp_path / "runs")


def test_bf16_training_is_refused_where_it_would_be_emulated(tmp_path, monkeypatch):
    import t2fsnn.training as training

    monkeypatch.setattr(training, "native_bf16", lambda device: False)
    with pytest.raises(ValueError, match=r"precision='bf16' is not allowed on this cpu .*precision='fp32'"):
        train_or_load(**{**SMALL, "precision": "bf16", "epochs": 1}, cache_root=tmp_path)
    assert not list(tmp_path.rglob("*.pt"))  # refused before any epoch
    monkeypatch.setattr(training, "native_bf16", lambda device: True)
    trained = train_or_load(**{**SMALL, "precision": "bf16", "epochs": 1}, cache_root=tmp_path)
    assert not trained.from_cache and trained.spec["precision"] == "bf16"
    # a network trained in bf16 elsewhere still loads here: only training is refused
    monkeypatch.setattr(training, "native_bf16", lambda device: False)
    assert train_or_load(**{**SMALL, "precision": "bf16", "epochs": 1}, cache_root=tmp_path).from_cache
