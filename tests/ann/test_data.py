import gzip
import hashlib
import os
import pickle
import time
import warnings

import numpy as np
import pytest
import torch

from t2fsnn import data


# --------------------------------------------------------------------------- helpers

def write_cifar100(root, n_train=20, n_test=10, seed=0):
    """A small synthetic CIFAR-100 in torchvision's layout (cifar-100-python/{train,test,meta})."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        entry = {
            "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            "fine_labels": [int(v) for v in rng.integers(0, 100, size=n)],
            "coarse_labels": [int(v) for v in rng.integers(0, 20, size=n)],
        }
        with open(folder / split, "wb") as f:
            pickle.dump(entry, f)
    meta = {"fine_label_names": [f"class{i}" for i in range(100)], "coarse_label_names": [f"super{i}" for i in range(20)]}
    with open(folder / "meta", "wb") as f:
        pickle.dump(meta, f)
    return folder


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- names and info

def test_unknown_name_lists_allowed_names():
    with pytest.raises(ValueError) as err:
        data.load("imagenet", "train")
    for name in ("'imagenet'", "mnist_subset", "mnist", "cifar10", "cifar100"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match="imagenet"):
        data.info("imagenet")


def test_unknown_split():
    with pytest.raises(ValueError, match="'val'.*train, test"):
        data.load("mnist_subset", "val")


def test_info():
    assert data.info("mnist_subset") == data.DatasetInfo("mnist_subset", 10, (1, 28, 28))
    assert data.info("cifar10").shape == (3, 32, 32)
    assert data.info("cifar100").num_classes == 100


def test_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("T2FSNN_DATA", raising=False)
    assert data.data_root() == data.REPO_ROOT / "data"
    monkeypatch.setenv("T2FSNN_DATA", str(tmp_path))
    assert data.data_root() == tmp_path.resolve()


def test_registry_matches_torchvision():
    import torchvision.datasets as tv

    for name, cls in (("cifar10", tv.CIFAR10), ("cifar100", tv.CIFAR100)):
        ours = {s.path.split("/")[-1]: s.digest for s in data.REGISTRY[name]}
        theirs = {f: m for f, m in cls.train_list + cls.test_list}
        theirs[cls.meta["filename"]] = cls.meta["md5"]
        assert ours == theirs
        assert all(s.path.startswith(cls.base_folder + "/") for s in data.REGISTRY[name])


# --------------------------------------------------------------------------- embedded subset

def test_subset_files_match_sha256sums_and_size():
    sums = (data.SUBSET_DIR / "SHA256SUMS").read_text().split("\n")
    total = 0
    for line in filter(None, sums):
        digest, name = line.split()
        path = data.SUBSET_DIR / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        total += path.stat().st_size
    assert total <= 5 * 1024 * 1024
    assert (data.SUBSET_DIR / "PROVENANCE.md").is_file()


def test_subset_loads_as_float_tensors_in_unit_range():
    train = data.load("mnist_subset", "train")
    test = data.load("mnist_subset", "test")
    assert (len(train), len(test)) == (12000, 2000)
    x, y = train[0]
    assert x.dtype == torch.float32 and x.shape == (1, 28, 28)
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() == 1.0
    assert y == 5  # the first MNIST training label
    xs, ys = data.to_tensors(test, 10)
    assert xs.shape == (10, 1, 28, 28)
    assert torch.equal(xs[3], test[3][0]) and ys[3].item() == test[3][1]


def test_subset_ignores_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("T2FSNN_DATA", str(tmp_path / "elsewhere"))
    assert len(data.load("mnist_subset", "test")) == 2000


def test_subset_cache_is_rebuilt_when_damaged(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "cache_dir", lambda: tmp_path)
    first = data.load("mnist_subset", "test")
    raw = tmp_path / "mnist-subset" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    assert raw.is_file()
    raw.write_bytes(b"damaged")
    again = data.load("mnist_subset", "test")
    assert torch.equal(first.targets, again.targets)
    assert not [p for p in raw.parent.iterdir() if p.name.endswith(".tmp")]


def test_file_digest_is_memoised(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert data.file_digest(path) == hashlib.md5(b"abc").hexdigest()
    calls = []
    real_new = hashlib.new
    try:
        hashlib.new = lambda *a, **k: calls.append(a) or real_new(*a, **k)
        data.file_digest(path)
        assert calls == []  # served from the memo
        time.sleep(0.01)
        path.write_bytes(b"abcd")
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
        assert data.file_digest(path) == hashlib.md5(b"abcd").hexdigest()
        assert calls
    finally:
        hashlib.new = real_new


# --------------------------------------------------------------------------- missing files

def test_missing_files_error_lists_files_and_remedies(tmp_path, monkeypatch):
    monkeypatch.setenv("T2FSNN_NO_DOWNLOAD", "1")
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("cifar10", "train", root=tmp_path)
    assert isinstance(err.value, FileNotFoundError)
    text = str(err.value)
    for i in range(1, 6):
        assert str(tmp_path / "cifar-10-batches-py" / f"data_batch_{i}") in text
    assert str(tmp_path / "cifar-10-batches-py" / "batches.meta") in text
    assert "T2FSNN_DATA" in text and "copy" in text and "network" in text


def test_failed_download_gives_the_same_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets as tv

    monkeypatch.delenv("T2FSNN_NO_DOWNLOAD", raising=False)

    def offline(self):
        raise OSError("no network")

    monkeypatch.setattr(tv.MNIST, "download", offline)
    with pytest.raises(data.DatasetNotFoundError) as err:
        data.load("mnist", "test", root=tmp_path)
    text = str(err.value)
    assert "no network" in text
    assert str(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte") in text
    assert "train-images" not in text  # only the files the split needs


# --------------------------------------------------------------------------- copies with other checksums

def test_cifar100_synthetic_layout_loads_with_mismatch_warning(tmp_path):
    write_cifar100(tmp_path)
    with pytest.warns(UserWarning, match="checksums differ") as record:
        train = data.load("cifar100", "train", root=tmp_path)
    message = str(record[0].message)
    assert "cifar-100-python/train" in message and "cifar-100-python/meta" in message
    assert "cifar-100-python/test" not in message
    assert len(train) == 20
    x, y = train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert 0 <= y < 100
    assert train.classes[:2] == ["class0", "class1"]
    xs, ys = data.to_tensors(train)
    assert torch.equal(xs[5], train[5][0]) and ys[5].item() == train[5][1]


def test_cifar100_with_registered_checksums_loads_silently(tmp_path, monkeypatch):
    folder = write_cifar100(tmp_path)
    registry = [data.FileSpec(f"cifar-100-python/{n}", md5(folder / n), split=s)
                for n, s in (("train", "train"), ("test", "test"), ("meta", None))]
    monkeypatch.setitem(data.REGISTRY, "cifar100", registry)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        test = data.load("cifar100", "test", root=tmp_path)
    assert len(test) == 10


def test_mnist_copy_with_other_checksums(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(data.SUBSET_DIR / f"{name}.gz") as f:
            (raw / name).write_bytes(f.read())
    with pytest.warns(UserWarning, match="t10k-images-idx3-ubyte"):
        test = data.load("mnist", "test", root=tmp_path)
    assert len(test) == 2000


def test_status(tmp_path):
    write_cifar100(tmp_path)
    rows = {r["dataset"]: r for r in data.status(tmp_path)}
    assert rows["mnist_subset"]["state"] == "verified"
    assert rows["mnist"]["state"] == "missing"
    assert rows["cifar10"]["state"] == "missing"
    assert rows["cifar100"]["state"] == "mismatched"
    assert str(tmp_path / "cifar-100-python" / "meta") in rows["cifar100"]["files"]
    assert {r["state"] for r in data.status(tmp_path, verify=False)} == {"present", "missing"}
    table = data.format_status(data.status(tmp_path))
    assert "cifar100" in table and "mismatched" in table
