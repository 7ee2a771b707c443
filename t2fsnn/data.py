"""Datasets: MNIST, CIFAR-10, CIFAR-100 and an embedded MNIST subset.

All datasets use torchvision's classes and torchvision's on-disk layout under a
data root:

* ``$T2FSNN_DATA`` if that environment variable is set, else ``<repo>/data``;
* ``MNIST/raw/*-ubyte`` for MNIST, ``cifar-10-batches-py/`` for CIFAR-10 and
  ``cifar-100-python/`` for CIFAR-100.

Images come back as float tensors in ``[0, 1]`` (``ToTensor`` only, no mean/std
normalisation): the conversion to a spiking network needs inputs in ``[0, 1]``.

Every file is registered with its checksum.  A copy whose checksums differ from
the registered ones still loads, with a warning that names the files; but the
structure of every file is checked whatever its checksum (MNIST idx headers,
sizes and counts; CIFAR pickles' keys, shapes, dtypes and label ranges), and a
damaged file raises :class:`DatasetCorruptError` naming the file, what was
expected and what was found.  Files
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
import socket
import tempfile
import time
import warnings
import zlib
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


class DatasetCorruptError(ValueError):
    """A dataset file is present but its structure is wrong (truncated, wrong header, bad labels)."""


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
# Structure of the files, checked whatever their checksums say
# ---------------------------------------------------------------------------

_IDX_MAGIC = {"images": 2051, "labels": 2049}  # 0x00000803 and 0x00000801
_CIFAR_LABELS = {"cifar10": ("labels", 10, "label_names"), "cifar100": ("fine_labels", 100, "fine_label_names")}
_STRUCTURE: Dict[Tuple[str, int, int], int] = {}  # (path, size, mtime) -> item count, for files already checked


def _corrupt(name: str, path: Path, expected: str, found: str) -> DatasetCorruptError:
    remedy = (
        "restore data/mnist-subset from git" if name == "mnist_subset" else
        f"delete it and run again to download a fresh copy (unless T2FSNN_NO_DOWNLOAD is set), "
        f"or copy a good one there; `t2fsnn data` shows the state of every dataset"
    )
    return DatasetCorruptError(
        f"dataset {name!r}: file {path} is damaged.\n  expected: {expected}\n  found:    {found}\n  remedy: {remedy}"
    )


def _check_idx(name: str, path: Path) -> int:
    """Check an MNIST idx file (header, magic, sizes, labels 0..9); return its item count."""
    kind = "images" if "images" in path.name else "labels"
    header = 16 if kind == "images" else 8
    expected = (
        f"an idx3 image file: magic 2051 (0x00000803), count N, 28 rows, 28 columns, then N*784 bytes"
        if kind == "images" else
        f"an idx1 label file: magic 2049 (0x00000801), count N, then N label bytes in 0..9"
    )
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(header)
    if len(head) < header:
        raise _corrupt(name, path, expected, f"{size} bytes, shorter than the {header}-byte header")
    fields = [int.from_bytes(head[i:i + 4], "big") for i in range(0, header, 4)]
    if fields[0] != _IDX_MAGIC[kind]:
        raise _corrupt(name, path, expected, f"magic {fields[0]} (0x{fields[0]:08x})")
    count = fields[1]
    if kind == "images":
        if (fields[2], fields[3]) != (28, 28):
            raise _corrupt(name, path, expected, f"images of {fields[2]} rows x {fields[3]} columns")
        want = header + count * 28 * 28
    else:
        want = header + count
    if size != want:
        raise _corrupt(name, path, expected,
                       f"{size} bytes for a count of {count} (should be {want} bytes; truncated or padded)")
    if kind == "labels":
        import numpy as np

        labels = np.fromfile(path, dtype=np.uint8, offset=header)
        if labels.size and labels.max() > 9:
            bad = int(np.argmax(labels > 9))
            raise _corrupt(name, path, expected, f"label {int(labels[bad])} at index {bad}")
    return count


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR pickles hold (containers, numbers, strings and numpy arrays)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"), ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"), ("__builtin__", "object"), ("builtins", "object"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the pickle")


def _check_cifar(name: str, path: Path) -> int:
    """Check a CIFAR pickle (keys, shapes, dtypes, label range); return its image count (0 for meta)."""
    import numpy as np

    label_key, classes, names_key = _CIFAR_LABELS[name]
    is_meta = path.name in ("batches.meta", "meta")
    expected = (
        f"a pickled dict with {names_key!r}: a list of {classes} class names" if is_meta else
        f"a pickled dict with 'data': uint8 array of shape (N, 3072) and {label_key!r}: N integers in 0..{classes - 1}"
    )
    try:
        with open(path, "rb") as f:
            entry = _ArrayUnpickler(f, encoding="latin1").load()
    except Exception as error:
        truncated = isinstance(error, EOFError) or "truncated" in str(error)
        reason = "truncated pickle" if truncated else "unreadable pickle"
        raise _corrupt(name, path, expected, f"{reason} ({type(error).__name__}: {error})") from None
    if not isinstance(entry, dict):
        raise _corrupt(name, path, expected, f"a pickled {type(entry).__name__}")
    if is_meta:
        names = entry.get(names_key)
        if not isinstance(names, (list, tuple)) or len(names) != classes:
            found = f"keys {sorted(map(str, entry))}" if names is None else f"{names_key!r} with {len(names) if hasattr(names, '__len__') else '?'} entries"
            raise _corrupt(name, path, expected, found)
        return 0
    missing = [k for k in ("data", label_key) if k not in entry]
    if missing:
        raise _corrupt(name, path, expected, f"keys {sorted(map(str, entry))} (missing {', '.join(map(repr, missing))})")
    images = entry["data"]
    if not isinstance(images, np.ndarray):
        raise _corrupt(name, path, expected, f"'data' of type {type(images).__name__}")
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072:
        raise _corrupt(name, path, expected, f"'data' {images.dtype} array of shape {tuple(images.shape)}")
    try:
        labels = np.asarray(entry[label_key])
    except Exception:
        labels = np.asarray([])
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise _corrupt(name, path, expected, f"{label_key!r} of dtype {labels.dtype} and shape {tuple(labels.shape)}")
    if len(labels) != len(images):
        raise _corrupt(name, path, expected, f"{len(images)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise _corrupt(name, path, expected, f"labels from {labels.min()} to {labels.max()}")
    return len(images)


def check_file(name: str, path: Path) -> int:
    """Check the structure of one registered file of dataset ``name``; return its item count.

    MNIST idx files: header, magic number, image size and a file size that matches the
    count; labels in 0..9. CIFAR pickles: keys, shapes, dtypes and label range. Raises
    :class:`DatasetCorruptError` naming the file, what was expected and what was found.
    Memoised per (path, size, mtime).
    """
    path = Path(path)
    st = os.stat(path)
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _STRUCTURE:
        _STRUCTURE[key] = _check_idx(name, path) if name in ("mnist", "mnist_subset") else _check_cifar(name, path)
    return _STRUCTURE[key]


def _check_structure(name: str, base: Path, specs: List[FileSpec]) -> None:
    """Check every file, and that each MNIST split has as many labels as images."""
    counts = {s.path: check_file(name, base / s.path) for s in specs}
    if name in ("mnist", "mnist_subset"):
        for s in specs:
            if "images" in s.path:
                labels = s.path.replace("images-idx3", "labels-idx1")
                if labels in counts and counts[labels] != counts[s.path]:
                    raise _corrupt(name, base / labels, f"as many labels as images in {base / s.path} ({counts[s.path]})",
                                   f"{counts[labels]} labels")


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


PROBE_TIMEOUT = 5.0  # seconds to reach a download server before giving up
DOWNLOAD_TIMEOUT = 60.0  # seconds a download connection may stall


def _download_hosts(name: str) -> List[Tuple[str, int]]:
    from urllib.parse import urlsplit

    tv = _tv().datasets
    urls = [m for m in tv.MNIST.mirrors] if name == "mnist" else [
        (tv.CIFAR10 if name == "cifar10" else tv.CIFAR100).url]
    hosts = []
    for url in urls:
        parts = urlsplit(url)
        hosts.append((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)))
    return hosts


def _network_problem(name: str) -> Optional[str]:
    """``None`` if a download server of ``name`` answers within seconds, else why not.

    Name resolution and connection run in a thread, so a machine without network (or
    whose DNS hangs) is told so in ``PROBE_TIMEOUT`` seconds instead of minutes.
    """
    import threading

    hosts = _download_hosts(name)
    errors: List[str] = []
    reached = threading.Event()

    def probe(host, port):
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
            reached.set()
        except Exception as error:  # OSError, or anything a broken resolver raises
            errors.append(f"{host}: {error}")

    threads = [threading.Thread(target=probe, args=hp, daemon=True) for hp in hosts]
    for t in threads:
        t.start()
    deadline = time.monotonic() + PROBE_TIMEOUT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        if reached.is_set():
            return None
    if reached.is_set():
        return None
    detail = "; ".join(errors) or f"no answer within {PROBE_TIMEOUT:.0f} s"
    return (f"no network access: could not reach the download server "
            f"({', '.join(h for h, _ in hosts)}) within {PROBE_TIMEOUT:.0f} s ({detail})")


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
    offline = _network_problem(name)
    if offline:
        raise _not_found(name, root, missing, specs, offline)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # a stalled connection fails instead of hanging
    try:
        cls(str(root), train=(split == "train"), download=True)
    except Exception as exc:  # no network, read-only root, ...
        missing, _ = _check_files(root, specs, verify=False)
        if missing:
            raise _not_found(name, root, missing, specs, f"{type(exc).__name__}: {exc}") from exc
    finally:
        socket.setdefaulttimeout(previous)
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
        expected = f"a gzip file that decompresses to the registered {spec.path} (sha256 {spec.digest})"
        try:
            try:
                with os.fdopen(fd, "wb") as out, gzip.open(gz, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        out.write(chunk)
            except (EOFError, zlib.error, gzip.BadGzipFile) as error:
                raise _corrupt("mnist_subset", gz, expected, f"a damaged gzip file ({type(error).__name__}: {error})") from None
            digest = file_digest(Path(tmp), spec.algo)
            if digest != spec.digest:
                raise _corrupt("mnist_subset", gz, expected, f"content with sha256 {digest}")
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
        subset = _subset_root()
        _check_structure(name, subset / "MNIST" / "raw", _specs(name, split))
        return _mnist_class()(str(subset), train=train, download=False, transform=_to_tensor())

    base = Path(root).expanduser().resolve() if root is not None else data_root()
    _ensure_files(name, base, split)
    _check_structure(name, base, _specs(name, split))  # whatever the checksums say
    _, mismatched = _check_files(base, _specs(name, split))
    _warn_mismatch(name, mismatched)
    if name == "mnist":
        return _mnist_class()(str(base), train=train, download=False, transform=_to_tensor())
    cls = _cifar_class(tv.CIFAR10 if name == "cifar10" else tv.CIFAR100)
    return cls(str(base), train=train, download=False, transform=_to_tensor())


def check(name: str, splits: Tuple[str, ...] = SPLITS, root: Optional[os.PathLike] = None) -> None:
    """Make sure ``name``'s files for ``splits`` are present (downloading if allowed) and well formed.

    What :func:`load` checks, without building the datasets: used before a notebook
    starts, so a missing or damaged dataset is refused in the command line, not in a
    kernel. Raises :class:`DatasetNotFoundError` or :class:`DatasetCorruptError`; a copy
    whose checksums differ only warns.
    """
    _check_name(name)
    for split in splits:
        _check_split(split)
        if name == "mnist_subset":
            _check_structure(name, _subset_root() / "MNIST" / "raw", _specs(name, split))
            continue
        base = Path(root).expanduser().resolve() if root is not None else data_root()
        _ensure_files(name, base, split)
        _check_structure(name, base, _specs(name, split))
        _, mismatched = _check_files(base, _specs(name, split))
        _warn_mismatch(name, mismatched)


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
    ``mismatched`` (all present, some checksums differ), ``corrupt`` (some
    file's structure is wrong, see :func:`check_file`), ``missing`` (some or
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
                except (OSError, DatasetCorruptError):
                    state = "corrupt"
            files = [str(folder / f"{s.path}.gz") for s in specs]
        else:
            missing, mismatched = _check_files(base, specs, verify=verify)
            corrupt = False
            if verify and not missing:
                try:
                    _check_structure(name, base, specs)
                except DatasetCorruptError:
                    corrupt = True
            if missing:
                state = "missing"
            elif corrupt:
                state = "corrupt"
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
