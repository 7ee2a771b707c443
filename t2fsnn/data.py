"""Datasets: MNIST, CIFAR-10, CIFAR-100 and an embedded MNIST subset.

All datasets use torchvision's classes and torchvision's on-disk layout under a
data root:

* ``$T2FSNN_DATA`` if that environment variable is set, else ``<repo>/data``;
* ``MNIST/raw/*-ubyte`` for MNIST, ``cifar-10-batches-py/`` for CIFAR-10 and
  ``cifar-100-python/`` for CIFAR-100.

Images come back as float tensors in ``[0, 1]`` (``ToTensor`` only, no mean/std
normalisation): the conversion to a spiking network needs inputs in ``[0, 1]``.

Every file is registered with its checksum.  A copy whose checksums differ from
the registered ones still loads, with a warning that names the files.  Files
that are missing are downloaded if the network allows it; otherwise
:class:`DatasetNotFoundError` says which files were expected where and how to
provide them.

``mnist_subset`` is a real subset of MNIST (the first 12,000 training and the
first 2,000 test images) that ships with the repository in ``data/mnist-subset``
and is always found there, whatever ``$T2FSNN_DATA`` says.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch.utils.data import Dataset

ENV_VAR = "T2FSNN_DATA"
NAMES = ("mnist_subset", "mnist", "cifar10", "cifar100")
SPLITS = ("train", "test")

REPO_ROOT = Path(__file__).resolve().parents[1]
SUBSET_DIR = REPO_ROOT / "data" / "mnist-subset"


class DatasetNotFoundError(FileNotFoundError):
    """Raised when a dataset's files are missing and cannot be downloaded."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    shape: Tuple[int, int, int]  # (C, H, W)


_INFO = {
    "mnist_subset": DatasetInfo("mnist_subset", 10, (1, 28, 28)),
    "mnist": DatasetInfo("mnist", 10, (1, 28, 28)),
    "cifar10": DatasetInfo("cifar10", 10, (3, 32, 32)),
    "cifar100": DatasetInfo("cifar100", 100, (3, 32, 32)),
}

# ---------------------------------------------------------------------------
# Registry: every file with its checksum, relative to the data root.
# CIFAR md5s are torchvision's (``train_list``, ``test_list``, ``meta``); MNIST
# md5s are those of the official uncompressed idx files.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSpec:
    path: str  # relative to the dataset root
    digest: str
    algo: str = "md5"
    split: Optional[str] = None  # None: needed by both splits


REGISTRY: Dict[str, List[FileSpec]] = {
    "mnist": [
        FileSpec("MNIST/raw/train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb", split="train"),
        FileSpec("MNIST/raw/train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624", split="train"),
        FileSpec("MNIST/raw/t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea", split="test"),
        FileSpec("MNIST/raw/t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637", split="test"),
    ],
    "cifar10": [
        FileSpec("cifar-10-batches-py/data_batch_1", "c99cafc152244af753f735de768cd75f", split="train"),
        FileSpec("cifar-10-batches-py/data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec", split="train"),
        FileSpec("cifar-10-batches-py/data_batch_3", "54ebc095f3ab1f0389bbae665268c751", split="train"),
        FileSpec("cifar-10-batches-py/data_batch_4", "634d18415352ddfa80567beed471001a", split="train"),
        FileSpec("cifar-10-batches-py/data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb", split="train"),
        FileSpec("cifar-10-batches-py/test_batch", "40351d587109b95175f43aff81a1287e", split="test"),
        FileSpec("cifar-10-batches-py/batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    ],
    "cifar100": [
        FileSpec("cifar-100-python/train", "16019d7e3df5f24257cddd939b257f8d", split="train"),
        FileSpec("cifar-100-python/test", "f0ef6b0ae62326f3e7ffdfab6717acfc", split="test"),
        FileSpec("cifar-100-python/meta", "7973b15100ade9c7d40fb424638fde48"),
    ],
    # The embedded subset: sha256 of the *uncompressed* files (see PROVENANCE.md).
    "mnist_subset": [
        FileSpec("train-images-idx3-ubyte", "dcb5db4d00d217c253d297e530dbd4ee402e840c88dfbb51ac744c47306c98c1", "sha256", "train"),
        FileSpec("train-labels-idx1-ubyte", "2c90b8c2199fe10795e2ce1bdba6c1f0d101391374b748823bdf06b4f282b679", "sha256", "train"),
        FileSpec("t10k-images-idx3-ubyte", "3f6bd66dee48df299584c67669bceee490faa25f931496bd7473b42106d7daed", "sha256", "test"),
        FileSpec("t10k-labels-idx1-ubyte", "7b098e5f6a3065807cebeabf36fb1724a8aff19f2673ac08b4923e0e8c715bce", "sha256", "test"),
    ],
}


# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------


def data_root() -> Path:
    """The data root: ``$T2FSNN_DATA`` if set (made absolute), else ``<repo>/data``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return REPO_ROOT / "data"


def cache_dir() -> Path:
    """Folder for decompressed copies of the embedded subset (git-ignored)."""
    return REPO_ROOT / "data" / ".cache"


def _check_name(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; allowed names: {', '.join(NAMES)}")
    return name


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed splits: {', '.join(SPLITS)}")
    return split


def info(name: str) -> DatasetInfo:
    """Number of classes and input shape ``(C, H, W)`` of a dataset."""
    return _INFO[_check_name(name)]


# ---------------------------------------------------------------------------
# Checksums, memoised per (path, size, mtime)
# ---------------------------------------------------------------------------

_DIGESTS: Dict[Tuple[str, str, int, int], str] = {}


def file_digest(path: Path, algo: str = "md5") -> str:
    """Hex digest of a file; cached in-process by (path, size, mtime)."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), algo, st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.new(algo)
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _specs(name: str, split: Optional[str] = None) -> List[FileSpec]:
    return [s for s in REGISTRY[name] if split is None or s.split in (None, split)]


def _check_files(base: Path, specs: List[FileSpec], verify: bool = True):
    """Return (missing, mismatched) lists of paths."""
    missing = [base / s.path for s in specs if not (base / s.path).is_file()]
    mismatched = []
    if verify and not missing:
        mismatched = [base / s.path for s in specs if file_digest(base / s.path, s.algo) != s.digest]
    return missing, mismatched


# ---------------------------------------------------------------------------
# Errors and downloads
# ---------------------------------------------------------------------------


def _not_found(name: str, root: Path, missing: List[Path], specs: List[FileSpec], reason: str) -> DatasetNotFoundError:
    expected = "\n".join(
        f"  {'MISSING ' if (root / s.path) in missing else 'present '}{root / s.path}  ({s.algo} {s.digest})"
        for s in specs
    )
    return DatasetNotFoundError(
        f"dataset {name!r} not found under the data root {root}.\n"
        f"Expected files (torchvision's layout):\n{expected}\n"
        f"Download failed or was disabled: {reason}\n"
        "Remedies:\n"
        f"  1. on a machine with network access run "
        f"`python -c \"import t2fsnn.data as d; d.load('{name}', 'train'); d.load('{name}', 'test')\"` "
        f"(it downloads into that machine's data root) and copy the files to the paths above;\n"
        f"  2. or set the environment variable {ENV_VAR} to a folder that holds these files in "
        f"torchvision's layout (e.g. {ENV_VAR}=/path/to/torchvision-data)."
    )


def _download_allowed() -> bool:
    return os.environ.get("T2FSNN_NO_DOWNLOAD", "").lower() not in ("1", "true", "yes")


# ---------------------------------------------------------------------------
# torchvision classes that accept copies with other checksums
# ---------------------------------------------------------------------------


def _tv():
    import torchvision

    return torchvision


def _cifar_class(base):
    """A subclass of torchvision's CIFAR class whose integrity check is ours.

    ``t2fsnn.data`` verifies the files (and warns on a mismatch) before the
    class is built, so the class itself accepts any file in the standard
    layout, e.g. pickles without the ``filenames`` key.
    """

    class _Cifar(base):
        def _check_integrity(self) -> bool:  # noqa: D401
            return all(
                os.path.isfile(os.path.join(self.root, self.base_folder, f))
                for f, _ in self.train_list + self.test_list
            )

        def _load_meta(self) -> None:
            path = os.path.join(self.root, self.base_folder, self.meta["filename"])
            with open(path, "rb") as f:
                data = pickle.load(f, encoding="latin1")
            self.classes = data[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    _Cifar.__name__ = base.__name__
    _Cifar.__qualname__ = base.__qualname__
    return _Cifar


def _mnist_class():
    """torchvision's MNIST, needing only the files of the split it loads.

    The class keeps the name ``MNIST``, which torchvision uses as the folder name.
    """
    base = _tv().datasets.MNIST

    def _check_exists(self) -> bool:
        prefix = "train" if self.train else "t10k"
        return all(
            os.path.isfile(os.path.join(self.raw_folder, f"{prefix}-{kind}"))
            for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
        )

    return type("MNIST", (base,), {"_check_exists": _check_exists, "__module__": __name__})


def _to_tensor() -> Callable:
    return _tv().transforms.ToTensor()


def _ensure_files(name: str, root: Path, split: str) -> None:
    specs = _specs(name, split)
    missing, _ = _check_files(root, specs, verify=False)
    if not missing:
        return
    if not _download_allowed():
        raise _not_found(name, root, missing, specs, "downloads disabled by T2FSNN_NO_DOWNLOAD")
    tv = _tv().datasets
    cls = {"mnist": tv.MNIST, "cifar10": tv.CIFAR10, "cifar100": tv.CIFAR100}[name]
    try:
        cls(str(root), train=(split == "train"), download=True)
    except Exception as exc:  # no network, read-only root, ...
        missing, _ = _check_files(root, specs, verify=False)
        if missing:
            raise _not_found(name, root, missing, specs, f"{type(exc).__name__}: {exc}") from exc
    missing, _ = _check_files(root, specs, verify=False)
    if missing:
        raise _not_found(name, root, missing, specs, "the download did not produce these files")


_WARNED: set = set()


def _warn_mismatch(name: str, mismatched: List[Path]) -> None:
    """Warn (once per process for the same files) that a copy's checksums differ."""
    key = (name, tuple(str(p) for p in mismatched))
    if mismatched and key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(
            f"dataset {name!r}: checksums differ from the registered ones for "
            + ", ".join(str(p) for p in mismatched)
            + "; loading this copy anyway",
            stacklevel=3,
        )


# ---------------------------------------------------------------------------
# The embedded MNIST subset
# ---------------------------------------------------------------------------


def _subset_root(subset_dir: Optional[Path] = None) -> Path:
    """Decompress the embedded subset into the cache once; return a torchvision root."""
    src = Path(subset_dir) if subset_dir is not None else SUBSET_DIR
    dest_root = cache_dir() / "mnist-subset"
    raw = dest_root / "MNIST" / "raw"
    for spec in REGISTRY["mnist_subset"]:
        target = raw / spec.path
        if target.is_file() and file_digest(target, spec.algo) == spec.digest:
            continue
        gz = src / f"{spec.path}.gz"
        if not gz.is_file():
            raise DatasetNotFoundError(
                f"the embedded MNIST subset is missing: expected {gz} "
                f"(files {', '.join(s.path + '.gz' for s in REGISTRY['mnist_subset'])} in {src}). "
                "It ships with the repository (data/mnist-subset); restore it with git, or re-create it "
                "with scripts/make_mnist_subset.py from the official MNIST files."
            )
        raw.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=raw, prefix=f".{spec.path}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out, gzip.open(gz, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    out.write(chunk)
            digest = file_digest(Path(tmp), spec.algo)
            if digest != spec.digest:
                raise OSError(
                    f"the embedded MNIST subset file {gz} does not decompress to the registered content "
                    f"(sha256 {digest}, expected {spec.digest}); restore data/mnist-subset from git"
                )
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return dest_root


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def load(name: str, split: str, root: Optional[os.PathLike] = None) -> Dataset:
    """Load a dataset split as a torchvision dataset of ``(float tensor in [0,1], int label)``.

    ``root`` overrides the data root (it is ignored for ``mnist_subset``, which
    always comes from the repository).
    """
    _check_name(name)
    _check_split(split)
    tv = _tv().datasets
    train = split == "train"
    if name == "mnist_subset":
        return _mnist_class()(str(_subset_root()), train=train, download=False, transform=_to_tensor())

    base = Path(root).expanduser().resolve() if root is not None else data_root()
    _ensure_files(name, base, split)
    _, mismatched = _check_files(base, _specs(name, split))
    _warn_mismatch(name, mismatched)
    if name == "mnist":
        return _mnist_class()(str(base), train=train, download=False, transform=_to_tensor())
    cls = _cifar_class(tv.CIFAR10 if name == "cifar10" else tv.CIFAR100)
    return cls(str(base), train=train, download=False, transform=_to_tensor())


def to_tensors(dataset: Dataset, limit: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack (the first ``limit`` items of) a dataset from :func:`load` into ``(x, y)`` tensors.

    Uses the arrays behind torchvision's MNIST/CIFAR classes directly, which is
    much faster than iterating item by item; the result equals
    ``torch.stack([dataset[i][0] ...])``.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit={limit!r} is not allowed: give None or an integer >= 1")
    n = len(dataset) if limit is None else min(limit, len(dataset))
    data = getattr(dataset, "data", None)
    targets = getattr(dataset, "targets", None)
    if data is not None and targets is not None:
        if isinstance(data, torch.Tensor):  # MNIST: uint8 [N, H, W]
            x = data[:n].unsqueeze(1).float().div_(255.0)
        else:  # CIFAR: numpy uint8 [N, H, W, C]
            x = torch.from_numpy(data[:n]).permute(0, 3, 1, 2).float().div_(255.0)
        y = torch.as_tensor(targets[:n], dtype=torch.long)
        return x.contiguous(), y
    xs, ys = zip(*(dataset[i] for i in range(n)))
    return torch.stack(xs), torch.as_tensor(ys, dtype=torch.long)


def status(root: Optional[os.PathLike] = None, verify: bool = True) -> List[dict]:
    """One row per dataset: ``dataset``, ``state`` and ``files``.

    ``state`` is ``verified`` (all files present, checksums match),
    ``mismatched`` (all present, some checksums differ), ``missing`` (some or
    all files absent) or ``present`` (all files present, ``verify=False``).
    """
    base = Path(root).expanduser().resolve() if root is not None else data_root()
    rows = []
    for name in NAMES:
        specs = REGISTRY[name]
        if name == "mnist_subset":
            folder = SUBSET_DIR
            gz_missing = [s for s in specs if not (folder / f"{s.path}.gz").is_file()]
            if gz_missing:
                state = "missing"
            elif not verify:
                state = "present"
            else:
                try:
                    _subset_root()
                    state = "verified"
                except OSError:
                    state = "mismatched"
            files = [str(folder / f"{s.path}.gz") for s in specs]
        else:
            missing, mismatched = _check_files(base, specs, verify=verify)
            if missing:
                state = "missing"
            elif mismatched:
                state = "mismatched"
            else:
                state = "verified" if verify else "present"
            files = [str(base / s.path) for s in specs]
            folder = base
        rows.append({"dataset": name, "state": state, "root": str(folder), "files": files})
    return rows


def format_status(rows: List[dict]) -> str:
    """A plain-text table of :func:`status` rows."""
    lines = [f"{'dataset':<14}{'state':<12}root"]
    for r in rows:
        lines.append(f"{r['dataset']:<14}{r['state']:<12}{r['root']}")
    return "\n".join(lines)
