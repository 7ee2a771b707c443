"""t2fsnn.data_pack: CIFAR-10 packed small enough to travel to a GPU machine, and rebuilt there."""
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from t2fsnn import data_pack as pack_cifar10

NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _images(rng, n):
    """Smooth colour images with a little noise, as CIFAR rows (R, G, B planes of 32x32)."""
    y, x = np.mgrid[0:32, 0:32]
    rows = []
    for _ in range(n):
        a, b, c = rng.uniform(-3, 3, size=3)
        planes = [128 + 60 * np.sin(a * x / 16 + b * y / 16 + c + k) for k in range(3)]
        image = np.stack(planes) + rng.normal(0, 3, size=(3, 32, 32))
        rows.append(np.clip(image, 0, 255).astype(np.uint8).reshape(-1))
    return np.stack(rows)


@pytest.fixture
def fake_cifar(tmp_path):
    """A cifar-10-batches-py folder in the standard pickle format: 3 images per training batch, 4 test images."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "src" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in NAMES:
        n = 4 if name == "test_batch" else 3
        entry = {"batch_label": f"fake {name}", "labels": [int(v) for v in rng.integers(0, 10, n)], "data": _images(rng, n)}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
        batches[name] = entry
    meta = {"num_cases_per_batch": 3, "label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder, batches


def _load(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def test_pack_and_unpack_keep_labels_exact_images_and_jpeg_ones_close(fake_cifar, tmp_path):
    source, batches = fake_cifar
    packed = tmp_path / "packed" / "cifar10.npz"
    manifest = pack_cifar10.pack(source.parent, packed, quality=75, lossless=2)
    assert [b["lossless"] for b in manifest["batches"]] == [0] * 5 + [2]
    assert not list(packed.parent.glob("*.tmp"))  # written under a temporary name, then renamed
    folder = pack_cifar10.unpack(packed, tmp_path / "root")
    assert folder == tmp_path / "root" / "cifar-10-batches-py"
    assert (folder / "batches.meta").read_bytes() == (source / "batches.meta").read_bytes()
    for name in NAMES:
        original, rebuilt = batches[name], _load(folder / name)
        assert rebuilt["labels"] == original["labels"]
        assert rebuilt["batch_label"] == original["batch_label"]
        assert rebuilt["data"].dtype == np.uint8 and rebuilt["data"].shape == original["data"].shape
        exact = 2 if name == "test_batch" else 0
        assert np.array_equal(rebuilt["data"][:exact], original["data"][:exact])
        error = np.abs(rebuilt["data"][exact:].astype(int) - original["data"][exact:].astype(int)).mean()
        assert 0 < error < 6, (name, error)

    # the package loads the rebuilt copy: its checksums differ from the registered ones, which only warns
    from t2fsnn import data

    with pytest.warns(UserWarning, match="checksums differ"):
        data.check("cifar10", root=folder.parent)


def test_unpack_refuses_an_existing_folder_unless_forced(fake_cifar, tmp_path):
    source, _ = fake_cifar
    packed = tmp_path / "cifar10.npz"
    pack_cifar10.pack(source, packed)
    pack_cifar10.unpack(packed, tmp_path / "root")
    with pytest.raises(pack_cifar10.PackError, match="exists"):
        pack_cifar10.unpack(packed, tmp_path / "root")
    assert pack_cifar10.unpack(packed, tmp_path / "root", force=True).is_dir()


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "not a zip"])
def test_a_damaged_pack_is_refused_with_its_name(fake_cifar, tmp_path, capsys, damage):
    source, _ = fake_cifar
    packed = tmp_path / "cifar10.npz"
    pack_cifar10.pack(source, packed)
    blob = bytearray(packed.read_bytes())
    if damage == "truncated":
        blob = blob[: len(blob) // 2]
    elif damage == "flipped byte":
        blob[len(blob) // 3] ^= 0xFF
    else:
        blob = bytearray(b"hello")
    packed.write_bytes(bytes(blob))
    assert pack_cifar10.main(["unpack", str(packed), "--root", str(tmp_path / "root")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"t2fsnn.data_pack: error: pack {packed} is damaged"), err
    assert "Traceback" not in err
    assert not (tmp_path / "root" / "cifar-10-batches-py").exists()


def test_a_missing_source_or_pack_is_refused_clearly(tmp_path, capsys):
    assert pack_cifar10.main(["pack", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p.npz")]) == 2
    assert f"source {tmp_path / 'nowhere'} is not a folder" in capsys.readouterr().err
    (tmp_path / "cifar-10-batches-py").mkdir()
    assert pack_cifar10.main(["pack", str(tmp_path), "--out", str(tmp_path / "p.npz")]) == 2
    assert "lacks data_batch_1" in capsys.readouterr().err
    assert pack_cifar10.main(["unpack", str(tmp_path / "p.npz"), "--root", str(tmp_path)]) == 2
    assert f"pack {tmp_path / 'p.npz'} not found" in capsys.readouterr().err
    assert not (tmp_path / "p.npz").exists()
