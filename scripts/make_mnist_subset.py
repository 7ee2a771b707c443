#!/usr/bin/env python3
"""Cut the embedded MNIST subset from the official MNIST idx files.

The subset keeps the first ``--train`` training images and the first ``--test``
test images (in the official order), writes them in the same idx format,
gzip-compressed with a fixed header timestamp so that the output is
byte-reproducible, and records provenance and checksums.

Usage::

    python scripts/make_mnist_subset.py SOURCE_RAW_DIR [--out data/mnist-subset]
        [--train 12000] [--test 2000]

``SOURCE_RAW_DIR`` holds the four uncompressed official files
(``train-images-idx3-ubyte`` ...), e.g. the ``MNIST/raw`` folder that
``torchvision.datasets.MNIST(download=True)`` creates.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import struct
from pathlib import Path

# md5 of the official uncompressed files.
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def _digest(data: bytes, algo: str) -> str:
    return hashlib.new(algo, data).hexdigest()


def cut_idx(data: bytes, count: int) -> bytes:
    """Return the idx file ``data`` truncated to its first ``count`` items."""
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = list(struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim]))
    if count > dims[0]:
        raise ValueError(f"asked for {count} items, file has {dims[0]}")
    item = 1
    for d in dims[1:]:
        item *= d
    header = 4 + 4 * ndim
    dims[0] = count
    out = struct.pack(">I", magic) + struct.pack(">" + "I" * ndim, *dims)
    return out + data[header : header + count * item]


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "mnist-subset")
    ap.add_argument("--train", type=int, default=12000)
    ap.add_argument("--test", type=int, default=2000)
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    counts = {"train": args.train, "t10k": args.test}
    source_rows, subset_rows, sums = [], [], []
    for name, md5 in OFFICIAL_MD5.items():
        raw = (args.source / name).read_bytes()
        if _digest(raw, "md5") != md5:
            raise SystemExit(f"{name}: md5 differs from the official file; refusing to cut a subset")
        source_rows.append(f"| `{name}` | {len(raw)} | `{_digest(raw, 'sha256')}` |")
        count = counts[name.split("-")[0]]
        cut = cut_idx(raw, count)
        gz = gzip_bytes(cut)
        (args.out / f"{name}.gz").write_bytes(gz)
        sha_gz = _digest(gz, "sha256")
        sha_raw = _digest(cut, "sha256")
        sums.append(f"{sha_gz}  {name}.gz")
        subset_rows.append(f"| `{name}.gz` | {count} | {len(gz)} | `{sha_gz}` | `{sha_raw}` |")

    (args.out / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    provenance = f"""# Embedded MNIST subset

A small, real subset of MNIST that ships with the repository so that the
default book and the tests run without any download.

## Source

The four official MNIST idx files (LeCun, Cortes and Burges,
<http://yann.lecun.com/exdb/mnist/>), uncompressed, as torchvision stores them
in `MNIST/raw/`. Their md5 sums equal those of the official files.

| file | bytes | sha256 |
|---|---|---|
{chr(10).join(source_rows)}

## Subset

- training set: images and labels with indices 0 to {args.train - 1} (the first {args.train}, official order);
- test set: images and labels with indices 0 to {args.test - 1} (the first {args.test}, official order).

Each file keeps the idx format; only the item count in the header changes.
The files are gzip-compressed (level 9, header timestamp 0), so re-running the
script on the same source gives byte-identical output.

| file | items | bytes | sha256 (gzip) | sha256 (uncompressed) |
|---|---|---|---|---|
{chr(10).join(subset_rows)}

`SHA256SUMS` lists the compressed files (`sha256sum -c SHA256SUMS`).

## How it was made

```
python scripts/make_mnist_subset.py <folder with the official files> --train {args.train} --test {args.test}
```

`t2fsnn.data.load("mnist_subset", split)` decompresses the files once into
`data/.cache/`, checks the sha256 of the uncompressed files against the table
above and reads them with `torchvision.datasets.MNIST`.
"""
    (args.out / "PROVENANCE.md").write_text(provenance)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
