"""Pack CIFAR-10 into one small file that travels to a lent GPU machine, and unpack it there.

The standard ``cifar-10-batches-py`` folder is 178 MB; the GPU machine takes at most
64 MiB of files with a command. The pack keeps:

* the first ``--lossless`` test images (default 1,000: the exact originals of the shared
  copy) as raw uint8, byte for byte;
* the other test images (1,000-9,999, themselves recovered from JPEG quality-75 copies) as
  baseline JPEGs at ``--quality`` (default 75, 4:2:0 chroma: re-encoding them so gives back
  60 % of them exactly; mean absolute error 0.16 of 255 over all of them);
* the training images as baseline JPEGs at ``--train-quality`` (default: ``--quality``),
  4:2:0 chroma. All the JPEGs of one quality share one header (quantisation and Huffman
  tables, size), stored once: each image costs only its entropy-coded data (about 300
  bytes at quality 75, for a mean absolute error of 5.8 of 255 on the training images);
* the labels, each batch's ``batch_label`` and ``batches.meta`` (its bytes, unchanged);
* a manifest with the sha256 of every array, checked before anything is unpacked.

Unpacking rebuilds ``<root>/cifar-10-batches-py/`` in the standard pickle format, so
``T2FSNN_DATA=<root>`` loads it unchanged. The rebuilt batches are not the original
files: ``t2fsnn.data`` warns that their checksums differ from the registered ones and
loads them (as it does the shared copy, whose checksums differ too).

Usage::

    python -m t2fsnn.data_pack pack [SOURCE] [--out data/packed/cifar10-q75.npz]
    python -m t2fsnn.data_pack unpack [PACK] --root DIR [--force]

``SOURCE`` is a ``cifar-10-batches-py`` folder or the folder holding one (default:
``$T2FSNN_DATA``). Only numpy and Pillow are needed. Every file is written under a
temporary name and renamed when complete.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from t2fsnn.cache import atomic_write

FOLDER = "cifar-10-batches-py"
TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
TEST = "test_batch"
META = "batches.meta"
FORMAT = "t2fsnn-cifar10-pack/1"
DEFAULT_PACK = Path(__file__).resolve().parents[1] / "data" / "packed" / "cifar10-q75.npz"
GROUPS = ("train", "test")  # the JPEG images of the training batches, and of the test batch
ARRAYS = ("labels", "lossless", "meta") + tuple(f"{g}_{part}" for g in GROUPS for part in ("header", "bodies", "offsets"))


class PackError(Exception):
    """Bad input: a missing or malformed source, a damaged pack, an unwritable output."""


# ---------------------------------------------------------------------------
# images: CIFAR rows (3072 bytes, R G B planes of 32x32) <-> JPEG
# ---------------------------------------------------------------------------


def _sos_end(jpeg: bytes) -> int:
    """Offset just past the start-of-scan header: what precedes it is the same for every image."""
    pos = 2
    while pos + 4 <= len(jpeg):
        if jpeg[pos] != 0xFF:
            break
        marker, length = jpeg[pos + 1], int.from_bytes(jpeg[pos + 2:pos + 4], "big")
        pos += 2 + length
        if marker == 0xDA:
            return pos
    raise PackError("the JPEG encoder wrote no start-of-scan marker")


def encode_jpegs(rows: np.ndarray, quality: int):
    """``(header, bodies, offsets)``: the shared JPEG header, the concatenated rest of each image, and offsets."""
    from PIL import Image

    header, bodies, offsets = None, [], [0]
    for i, row in enumerate(rows):
        buffer = io.BytesIO()
        Image.fromarray(row.reshape(3, 32, 32).transpose(1, 2, 0)).save(
            buffer, format="JPEG", quality=quality, subsampling=2, optimize=False)
        jpeg = buffer.getvalue()
        end = _sos_end(jpeg)
        if header is None:
            header = jpeg[:end]
        elif jpeg[:end] != header:
            raise PackError(f"the JPEG header of image {i} differs from the first image's; "
                            "this encoder cannot be packed with one shared header")
        bodies.append(jpeg[end:])
        offsets.append(offsets[-1] + len(jpeg) - end)
    return header or b"", b"".join(bodies), np.asarray(offsets, dtype=np.int64)


def decode_jpegs(header: bytes, bodies: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """CIFAR rows ``(N, 3072)`` uint8 from the shared header and each image's body."""
    from PIL import Image

    blob = bodies.tobytes()
    rows = np.empty((len(offsets) - 1, 3072), dtype=np.uint8)
    for i in range(len(rows)):
        with Image.open(io.BytesIO(header + blob[offsets[i]:offsets[i + 1]])) as image:
            pixels = np.asarray(image.convert("RGB"))
        if pixels.shape != (32, 32, 3):
            raise PackError(f"JPEG image {i} decodes to shape {pixels.shape}, not (32, 32, 3)")
        rows[i] = pixels.transpose(2, 0, 1).reshape(-1)
    return rows


# ---------------------------------------------------------------------------
# the source folder
# ---------------------------------------------------------------------------


def _source_folder(source) -> Path:
    if source is None:
        env = os.environ.get("T2FSNN_DATA")
        if not env:
            raise PackError("no source given and T2FSNN_DATA is not set: name the cifar-10-batches-py folder")
        source = env
    path = Path(source).expanduser()
    if path.name != FOLDER and (path / FOLDER).is_dir():
        path = path / FOLDER
    if not path.is_dir():
        raise PackError(f"source {path} is not a folder: expected a {FOLDER} folder or the folder holding one")
    missing = [name for name in TRAIN + [TEST, META] if not (path / name).is_file()]
    if missing:
        raise PackError(f"source {path} lacks {', '.join(missing)} (expected the standard {FOLDER} files)")
    return path


def _read_batch(path: Path):
    """``(rows, labels, batch_label)`` of one CIFAR-10 batch pickle, checked."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except Exception as error:
        raise PackError(f"{path} is not a readable CIFAR pickle ({type(error).__name__}: {error})") from None
    rows = entry.get("data") if isinstance(entry, dict) else None
    labels = np.asarray(entry.get("labels", []) if isinstance(entry, dict) else [])
    if not isinstance(rows, np.ndarray) or rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != 3072:
        raise PackError(f"{path}: expected 'data', a uint8 array of shape (N, 3072)")
    if labels.shape != (len(rows),) or labels.dtype.kind not in "iu" or (labels.size and not 0 <= labels.min() <= labels.max() <= 9):
        raise PackError(f"{path}: expected 'labels', {len(rows)} integers in 0..9")
    batch_label = entry.get("batch_label", "")
    if isinstance(batch_label, bytes):
        batch_label = batch_label.decode("latin1")
    return rows, labels.astype(np.uint8), str(batch_label)


# ---------------------------------------------------------------------------
# pack
# ---------------------------------------------------------------------------


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def pack(source, out: Path, quality: int = 75, lossless: int = 1000, train_quality=None) -> dict:
    """Pack the CIFAR-10 folder ``source`` into ``out``; return the manifest."""
    folder = _source_folder(source)
    qualities = {"test": quality, "train": quality if train_quality is None else train_quality}
    for group, value in qualities.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
            raise PackError(f"JPEG quality {value!r} of the {group} images: must be an integer from 1 to 100")
    if lossless < 0:
        raise PackError(f"--lossless {lossless}: must be >= 0")
    batches, all_labels, kept, jpeg_rows = [], [], [], {g: [] for g in GROUPS}
    for name in TRAIN + [TEST]:
        rows, labels, batch_label = _read_batch(folder / name)
        exact = min(lossless, len(rows)) if name == TEST else 0
        kept.append(rows[:exact])
        jpeg_rows["test" if name == TEST else "train"].append(rows[exact:])
        all_labels.append(labels)
        batches.append({"name": name, "count": len(rows), "lossless": exact, "batch_label": batch_label})
    arrays = {"labels": np.concatenate(all_labels), "lossless": np.concatenate(kept),
              "meta": np.frombuffer((folder / META).read_bytes(), dtype=np.uint8)}
    for group in GROUPS:
        header, bodies, offsets = encode_jpegs(np.concatenate(jpeg_rows[group]), qualities[group])
        arrays[f"{group}_header"] = np.frombuffer(header, dtype=np.uint8)
        arrays[f"{group}_bodies"] = np.frombuffer(bodies, dtype=np.uint8)
        arrays[f"{group}_offsets"] = offsets
    manifest = {"format": FORMAT, "quality": qualities, "subsampling": "4:2:0", "batches": batches,
                "sha256": {name: _sha256(value) for name, value in arrays.items()}}
    arrays["manifest"] = np.array(json.dumps(manifest))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    os.chmod(atomic_write(Path(out), lambda f: np.savez_compressed(f, **arrays)), 0o644)
    return manifest


# ---------------------------------------------------------------------------
# unpack
# ---------------------------------------------------------------------------


def read_pack(path: Path):
    """``(manifest, arrays)`` of a pack, every array checked against the manifest's sha256."""
    path = Path(path)
    if not path.is_file():
        raise PackError(f"pack {path} not found (make it with `python -m t2fsnn.data_pack pack`)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            manifest = json.loads(str(npz["manifest"]))
            arrays = {name: npz[name] for name in ARRAYS}
    except Exception as error:  # truncated zip, bad CRC, missing member, bad JSON, ...
        raise PackError(f"pack {path} is damaged ({type(error).__name__}: {error}); make it again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise PackError(f"pack {path} is not a {FORMAT} file")
    for name, value in arrays.items():
        if _sha256(value) != manifest["sha256"].get(name):
            raise PackError(f"pack {path} is damaged: array {name!r} does not match its sha256; make it again")
    batches = manifest["batches"]
    counts = {"labels": sum(b["count"] for b in batches), "lossless": sum(b["lossless"] for b in batches),
              "train_offsets": sum(b["count"] - b["lossless"] for b in batches if b["name"] != TEST) + 1,
              "test_offsets": sum(b["count"] - b["lossless"] for b in batches if b["name"] == TEST) + 1}
    wrong = [f"{name}: {len(arrays[name])} for {count}" for name, count in counts.items() if len(arrays[name]) != count]
    if wrong or [b["name"] for b in batches] != TRAIN + [TEST]:
        raise PackError(f"pack {path} is damaged: its arrays do not fit its batches ({'; '.join(wrong) or 'batch names'})")
    return manifest, arrays


def unpack(pack_path: Path, root: Path, force: bool = False) -> Path:
    """Rebuild ``root/cifar-10-batches-py`` from a pack; return that folder."""
    manifest, arrays = read_pack(pack_path)
    root = Path(root).expanduser()
    target = root / FOLDER
    if target.exists() and not force:
        raise PackError(f"{target} exists: remove it, or pass --force to replace it")
    root.mkdir(parents=True, exist_ok=True)
    decoded = {g: decode_jpegs(arrays[f"{g}_header"].tobytes(), arrays[f"{g}_bodies"], arrays[f"{g}_offsets"])
               for g in GROUPS}
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{FOLDER}."))
    try:
        start, exact, jpeg = 0, 0, {g: 0 for g in GROUPS}
        for batch in manifest["batches"]:
            n, k, group = batch["count"], batch["lossless"], "test" if batch["name"] == TEST else "train"
            rows = np.concatenate([arrays["lossless"][exact:exact + k], decoded[group][jpeg[group]:jpeg[group] + n - k]])
            labels = [int(v) for v in arrays["labels"][start:start + n]]
            with open(staging / batch["name"], "wb") as f:  # protocol 4: the array's bytes as they are
                pickle.dump({"data": rows, "labels": labels, "batch_label": batch["batch_label"]}, f, protocol=4)
            start, exact, jpeg[group] = start + n, exact + k, jpeg[group] + n - k
        (staging / META).write_bytes(arrays["meta"].tobytes())
        os.chmod(staging, 0o755)
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=root, prefix=f".{FOLDER}.old."))
            os.replace(target, old / FOLDER)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m t2fsnn.data_pack", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="pack a cifar-10-batches-py folder into one file")
    p.add_argument("source", nargs="?", default=None,
                   help="cifar-10-batches-py folder or the folder holding one (default: $T2FSNN_DATA)")
    p.add_argument("--out", type=Path, default=DEFAULT_PACK, help=f"the pack (default: {DEFAULT_PACK})")
    p.add_argument("--quality", type=int, default=75, help="JPEG quality of the lossy test images (default 75)")
    p.add_argument("--train-quality", type=int, default=None,
                   help="JPEG quality of the training images (default: --quality)")
    p.add_argument("--lossless", type=int, default=1000,
                   help="how many test images, from the first, are kept byte for byte (default 1000)")
    p = sub.add_parser("unpack", help="rebuild cifar-10-batches-py under a data root from a pack")
    p.add_argument("pack", nargs="?", type=Path, default=DEFAULT_PACK, help=f"the pack (default: {DEFAULT_PACK})")
    p.add_argument("--root", type=Path, required=True, help="data root: the folder gets ROOT/cifar-10-batches-py")
    p.add_argument("--force", action="store_true", help="replace an existing ROOT/cifar-10-batches-py")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    try:
        if args.command == "pack":
            manifest = pack(args.source, args.out, args.quality, args.lossless, args.train_quality)
            exact = sum(b["lossless"] for b in manifest["batches"])
            total = sum(b["count"] for b in manifest["batches"])
            q = manifest["quality"]
            print(f"packed {total} images ({exact} test images lossless, the other test images as JPEG q{q['test']}, "
                  f"the training images as JPEG q{q['train']}) into {args.out}: "
                  f"{args.out.stat().st_size / 2**20:.1f} MiB in {time.perf_counter() - start:.1f} s")
        else:
            folder = unpack(args.pack, args.root, args.force)
            print(f"unpacked {args.pack} into {folder} in {time.perf_counter() - start:.1f} s")
    except PackError as error:
        print(f"t2fsnn.data_pack: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # unwritable root or output, full disk
        print(f"t2fsnn.data_pack: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
