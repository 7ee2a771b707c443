"""Seeded, cached training of the ANNs."""
from __future__ import annotations

import atexit
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from t2fsnn import cache, data, models
from t2fsnn.checks import check_finite_weights

__all__ = ["TrainedModel", "train_or_load", "evaluate", "resolve_device", "RECIPE_VERSION", "PRECISIONS",
           "RECORDED_ROOT", "RecordedModelError", "recorded_model", "recorded_models", "native_bf16"]

# the recorded runs of the book: each keeps the ANNs it used beside its run.json (``models``: file name -> sha256)
RECORDED_ROOT = cache.REPO_ROOT / "book" / "recorded"


@dataclass
class TrainedModel:
    model: nn.Sequential
    key: str
    spec: dict
    history: pd.DataFrame
    test_accuracy: float
    from_cache: bool
    origin: str = "trained"  # "trained", "cache" or the recorded file it came from (relative to the repository)


class RecordedModelError(ValueError):
    """A recorded ANN file, or the run.json that vouches for it, cannot be trusted."""


def _run_models(run_file: Path) -> dict:
    try:
        models = json.loads(run_file.read_text()).get("models", {})
    except (OSError, ValueError) as error:
        raise RecordedModelError(f"{run_file}: not a readable run record ({error}); restore it from git") from None
    if not isinstance(models, dict):
        raise RecordedModelError(f"{run_file}: 'models' must map file names to sha256, found {type(models).__name__}")
    return models


def recorded_model(name: str, root: os.PathLike = RECORDED_ROOT) -> Optional[Path]:
    """The recorded ANN file ``name`` (``<model>-<dataset>-<key>.pt``) of a run under ``root``, checked.

    The file must sit beside a ``run.json`` whose ``models`` gives its sha256, and the file's
    sha256 must equal it; anything else raises :class:`RecordedModelError` naming the file and
    both hashes. ``None`` when no recorded run holds such a file.
    """
    for path in sorted(Path(root).glob(f"*/{name}")):
        run_file = path.parent / "run.json"
        if not run_file.exists():
            raise RecordedModelError(f"{path}: no run.json beside it vouches for its sha256; remove the file "
                                     "or record the run again")
        expected = _run_models(run_file).get(name)
        if expected is None:
            raise RecordedModelError(f"{path}: {run_file} does not list it under 'models', so nothing vouches "
                                     "for its sha256; remove the file or record the run again")
        actual = data.file_digest(path, "sha256")
        if expected != actual:
            raise RecordedModelError(f"{path}: sha256 {actual} differs from {expected} recorded in {run_file}; "
                                     "the file is damaged or was replaced (restore it with git checkout)")
        return path
    return None


def recorded_models(root: os.PathLike = RECORDED_ROOT) -> pd.DataFrame:
    """Every recorded ANN: run, file, model, dataset, epochs, test accuracy, size and whether its sha256 holds."""
    rows = []
    for run_file in sorted(Path(root).glob("*/run.json")):
        for name, expected in _run_models(run_file).items():
            path = run_file.parent / name
            row = {"run": run_file.parent.name, "file": name, "model": None, "dataset": None, "epochs": None,
                   "test accuracy (%)": None, "MB": None, "sha256": "file not committed"}
            if path.exists():
                stored = cache.safe_load(path, ("state_dict", "history"))
                spec = stored.get("spec", {})
                row.update(model=spec.get("model"), dataset=spec.get("dataset"), epochs=spec.get("epochs"),
                           MB=round(path.stat().st_size / 2**20, 1),
                           sha256="verified" if data.file_digest(path, "sha256") == expected else "DIFFERS from run.json")
                row["test accuracy (%)"] = stored["history"]["test_accuracy"][-1]
            rows.append(row)
    return pd.DataFrame(rows, columns=["run", "file", "model", "dataset", "epochs", "test accuracy (%)", "MB", "sha256"])


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present; asking for CUDA without it is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} is not allowed: choose 'auto', 'cpu' or 'cuda'")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but no CUDA device is available; use 'cpu' or 'auto'")
    return torch.device(device)


# Part of every cache key: raise it whenever the training recipe below changes its result.
RECIPE_VERSION = 1
PRECISIONS = ("fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 in hardware (AVX-512 or AMX on a CPU, a bf16-capable GPU)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def check_precision_fits(precision: str, device: torch.device) -> None:
    """Refuse bfloat16 training where it would be emulated: measured 14x slower than float32 on VGG-16."""
    if precision == "bf16" and not native_bf16(device):
        capability = torch.backends.cpu.get_cpu_capability() if device.type == "cpu" else torch.cuda.get_device_name(device)
        raise ValueError(
            f"precision='bf16' is not allowed on this {device.type} ({capability}): it has no bfloat16 units, so "
            "autocast emulates them (VGG-16 trained at 3.3 images/s instead of 46 in float32 on a 2-core AVX2 CPU); "
            "use precision='fp32' (-p precision fp32), or a CPU with AVX-512/AMX or a GPU")


def _augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 4-pixel-padded crops and horizontal flips (used for colour datasets)."""
    b, _, h, w = images.shape
    padded = nn.functional.pad(images, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (b,), generator=generator)
    dy = torch.randint(0, 9, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None]).clamp(max=h + 7)
    cols = (dx[:, None] + torch.arange(w)[None])
    out = padded[torch.arange(b)[:, None, None], :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    flip = torch.rand(b, generator=generator) < 0.5
    out[flip] = out[flip].flip(-1)
    return out.contiguous()


def jpeg_round_trip(images: torch.Tensor, quality: int) -> torch.Tensor:
    """``images`` (floats in [0, 1]) encoded as JPEG at ``quality`` and decoded again."""
    import warnings

    with warnings.catch_warnings():  # torchvision announces a move of its codecs to another package
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import decode_jpeg, encode_jpeg
    as_bytes = images.mul(255).round_().clamp_(0, 255).to(torch.uint8)
    decoded = decode_jpeg(encode_jpeg(list(as_bytes), quality=quality))
    return torch.stack(decoded).float().div_(255.0)


def _ranks(device: torch.device) -> tuple[int, int, torch.device]:
    """This process's rank, the number of processes and its device.

    Under torchrun (``WORLD_SIZE`` > 1) the process group is started here unless the caller
    started one: gloo on a CPU, NCCL on GPUs with one GPU per process (``LOCAL_RANK``).
    """
    dist = torch.distributed
    started = dist.is_available() and dist.is_initialized()
    world = dist.get_world_size() if started else int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
        torch.cuda.set_device(device)  # NCCL and the object broadcasts use the current GPU
    if not started:
        if not dist.is_available():
            raise RuntimeError(f"WORLD_SIZE={world} asks for {world} processes, but this torch build has no "
                               "torch.distributed")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return dist.get_rank(), dist.get_world_size(), device


def _from_rank0(function, rank: int, world: int):
    """``function()`` run by rank 0 alone, its result (or its exception) given to every rank.

    Rank 0 alone reads and writes the cache: the ranks need not share a disk and agree on what it held.
    """
    if world == 1:
        return function()
    box = [None]
    if rank == 0:
        try:
            box[0] = (function(), None)
        except Exception as error:  # the other ranks raise it too instead of waiting for rank 0 forever
            box[0] = (None, error)
    torch.distributed.broadcast_object_list(box, src=0)
    result, error = box[0]
    if error is not None:
        raise error
    return result


def _sum_over_ranks(values: list, world: int, device: torch.device) -> list:
    if world == 1:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(total)
    return total.tolist()


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500, device="cpu") -> float:
    """Top-1 accuracy in percent."""
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == labels[start:start + batch_size]).sum().item()
    return 100.0 * correct / max(len(images), 1)


def train_or_load(
    dataset: str = "mnist_subset",
    model: str = "mnist_cnn",
    epochs: int = 3,
    lr: float = 0.05,
    batch_size: int = 64,
    seed: int = 0,
    train_limit: Optional[int] = None,
    weight_decay: float = 5e-4,
    root=None,
    cache_root=None,
    device="auto",
    progress: bool = True,
    precision: str = "fp32",
    jpeg_quality: Optional[int] = None,
    label_smoothing: float = 0.0,
    recorded_root: Optional[os.PathLike] = RECORDED_ROOT,
) -> TrainedModel:
    """Train ``model`` on ``dataset`` (SGD, momentum 0.9, cosine schedule), or load the cached result.

    The cache key covers the data, the model's architecture, every training parameter and
    ``RECIPE_VERSION``, so a changed model or recipe retrains. ``precision="bf16"`` runs the
    forward and backward passes under bfloat16 autocast (weights stay float32), about twice as
    fast on CPUs and GPUs with bfloat16 units; it is part of the key. ``jpeg_quality`` trains
    half of every batch (drawn at random) on a JPEG round trip of the images at that quality,
    for test sets that were themselves recovered from JPEG copies; ``None`` trains on the
    images as they are. ``label_smoothing`` (in [0, 1)) softens the cross-entropy targets; it
    enters the key only when it is not 0, so the keys of earlier trainings stay valid.

    Before training, the cache is searched, then the recorded runs under ``recorded_root``
    (see :func:`recorded_model`; ``None`` skips them): an ANN recorded with the book under the
    same key is loaded, after its sha256 is checked, instead of trained again.

    Under ``torchrun --nproc_per_node N`` (``WORLD_SIZE`` > 1; every process calls this with
    the same arguments) the network is trained with ``DistributedDataParallel``, the process
    group started here if needed (gloo on a CPU, NCCL with one GPU per ``LOCAL_RANK``). Every
    process draws the same seeded order, JPEG choice and augmentation for each batch of
    ``batch_size`` and trains on its share ``[rank::N]`` of it, each share's loss weighted by
    its size so that the averaged gradient is that of the whole batch; the schedule is that of
    one process. BatchNorm uses each process's own batch statistics (plain DDP, no
    SyncBatchNorm), and a batch must give every process at least one image. Rank 0 alone reads
    the cache, writes the entry and the resume checkpoint, evaluates and shows progress; every
    process returns rank 0's network. The key does not depend on ``N``: the result is the same
    network trained on the same batches, up to the per-process BatchNorm statistics and rounding.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not allowed: choose one of {', '.join(map(repr, PRECISIONS))}")
    if model not in models.MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}: choose one of {', '.join(models.MODEL_NAMES)}")
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("seed", seed, 0)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r} is not allowed: it must be an integer >= {low}")
    if jpeg_quality is not None and (isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, int)
                                     or not 1 <= jpeg_quality <= 100):
        raise ValueError(f"jpeg_quality={jpeg_quality!r} is not allowed: it must be None or an integer from 1 to 100")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
            or not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing={label_smoothing!r} is not allowed: it must be a number in [0, 1)")
    if not lr > 0:
        raise ValueError(f"lr={lr!r} is not allowed: it must be > 0")
    if train_limit is not None and (not isinstance(train_limit, int) or train_limit < 1):
        raise ValueError(f"train_limit={train_limit!r} is not allowed: it must be None or an integer >= 1")
    info = data.info(dataset)
    if info.shape[0] != models.default_in_channels(model):
        raise ValueError(
            f"model {model!r} expects {models.default_in_channels(model)}-channel images but dataset "
            f"{dataset!r} has {info.shape[0]} channels"
        )
    train_set = data.load(dataset, "train", root=root)
    test_set = data.load(dataset, "test", root=root)
    x_train, y_train = data.to_tensors(train_set, train_limit)
    x_test, y_test = data.to_tensors(test_set)

    spec = {
        "dataset": dataset, "train_images": len(x_train), "train_fingerprint": _fingerprint(x_train, y_train),
        "model": model, "num_classes": info.num_classes, "epochs": epochs, "lr": lr,
        "batch_size": batch_size, "seed": seed, "weight_decay": weight_decay, "recipe": RECIPE_VERSION,
        "precision": precision, **({"jpeg_quality": jpeg_quality} if jpeg_quality is not None else {}),
        **({"label_smoothing": float(label_smoothing)} if label_smoothing else {}),
        "architecture": repr(models.build(model, info.num_classes)),
    }
    key = cache.cache_key(spec)
    path = Path(cache_root or cache.cache_dir()) / "models" / f"{model}-{dataset}-{key}.pt"
    rank, world, dev = _ranks(resolve_device(device))
    smallest = min(batch_size, len(x_train) % batch_size or batch_size)
    if smallest < world:
        raise ValueError(
            f"batch_size={batch_size} on {len(x_train)} training images gives a batch of {smallest} image(s), fewer "
            f"than the {world} processes (WORLD_SIZE={world}): every process needs a share of every batch; choose "
            f"batch_size or train_limit so that every batch holds at least {world} images")
    progress = progress and rank == 0

    def lookup():
        stored = cache.load_entry(path, ("state_dict", "history"))  # a damaged entry is retrained
        if stored is not None or recorded_root is None:
            return stored, "cache", path
        recorded = recorded_model(path.name, recorded_root)
        if recorded is None:
            return None, "cache", path
        origin = str(recorded.relative_to(cache.REPO_ROOT)) if recorded.is_relative_to(cache.REPO_ROOT) \
            else str(recorded)
        # its sha256 held: damage here is an error
        return cache.safe_load(recorded, ("state_dict", "history")), origin, recorded

    stored, origin, source = _from_rank0(lookup, rank, world)
    net = models.build(model, info.num_classes)
    if stored is not None:
        net.load_state_dict(stored["state_dict"])
        check_finite_weights(net, f"the ANN {source}")
        history = pd.DataFrame(stored["history"])
        accuracy = _from_rank0(lambda: evaluate(net.to(dev), x_test, y_test, device=dev), rank, world)
        return TrainedModel(net.cpu().eval(), key, spec, history, accuracy, from_cache=True, origin=origin)

    # an interrupted training resumes from its last completed epoch
    partial = path.with_name(path.stem + ".partial.pt")

    def prepare():
        cache.ensure_writable(path.parent)  # refuse before training, not after it
        return cache.load_entry(partial, ("state_dict", "optimizer", "schedule", "generator", "torch_rng", "rows"))

    state = _from_rank0(prepare, rank, world)
    check_precision_fits(precision, dev)
    torch.manual_seed(seed)
    net = models.build(model, info.num_classes).to(dev)
    # channels-last lets the bfloat16 convolutions use the fast kernels
    layout = torch.channels_last if precision == "bf16" else torch.contiguous_format
    net = net.to(memory_format=layout)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    steps_per_epoch = (len(x_train) + batch_size - 1) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    colour = info.shape[0] == 3
    x_jpeg = jpeg_round_trip(x_train, jpeg_quality) if jpeg_quality is not None else None
    rows: list[dict] = []
    if state is not None:
        net.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])  # dropout draws from the global generator
        rows = state["rows"]
        if progress:
            tqdm.write(f"resuming training after epoch {len(rows)}")
    # the ranks start from the same weights: DDP broadcasts rank 0's and averages the gradients
    train_net = nn.parallel.DistributedDataParallel(net, device_ids=[dev] if dev.type == "cuda" else None) \
        if world > 1 else net
    for epoch in range(len(rows) + 1, epochs + 1):
        train_net.train()
        order = torch.randperm(len(x_train), generator=generator)
        total_loss, correct = 0.0, 0
        bar = tqdm(total=len(x_train), desc=f"epoch {epoch}/{epochs}", unit="img", unit_scale=True,
                   disable=not progress, leave=False)
        for step in range(steps_per_epoch):
            index = order[step * batch_size:(step + 1) * batch_size]
            images, labels = x_train[index], y_train[index]
            if x_jpeg is not None:
                use_jpeg = torch.rand(len(index), generator=generator) < 0.5
                images = torch.where(use_jpeg[:, None, None, None], x_jpeg[index], images)
            if colour:
                images = _augment(images, generator)
            # every rank drew for the whole batch, so the generators stay in step; each trains on its share
            images, labels = images[rank::world], labels[rank::world]
            images, labels = images.to(dev, memory_format=layout), labels.to(dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                logits = train_net(images)
                loss = nn.functional.cross_entropy(logits.float(), labels, label_smoothing=float(label_smoothing))
            optimizer.zero_grad(set_to_none=True)
            # DDP averages over the ranks: weighting a share by its size makes that the batch mean (1.0 in one process)
            (loss * (len(labels) * world / len(index))).backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            bar.update(len(index))
        bar.close()
        total_loss, correct = _sum_over_ranks([total_loss, correct], world, dev)
        row = {"epoch": epoch, "train_loss": total_loss / len(x_train),
               "train_accuracy": 100.0 * correct / len(x_train)}

        def end_epoch():
            accuracy = evaluate(net, x_test, y_test, device=dev)
            # rank 0's state is every rank's: DDP hands its BatchNorm buffers to all at each step
            if epoch < epochs:
                cache.atomic_save({"state_dict": net.state_dict(), "optimizer": optimizer.state_dict(),
                                   "schedule": schedule.state_dict(), "generator": generator.get_state(),
                                   "torch_rng": torch.get_rng_state(),
                                   "rows": rows + [{**row, "test_accuracy": accuracy}]}, partial)
            return accuracy

        rows.append({**row, "test_accuracy": _from_rank0(end_epoch, rank, world)})
        if progress:
            tqdm.write(f"epoch {epoch}: loss {rows[-1]['train_loss']:.4f}, "
                       f"test accuracy {rows[-1]['test_accuracy']:.2f}%")
    net = net.cpu().to(memory_format=torch.contiguous_format).eval()

    def keep():
        check_finite_weights(net, f"the ANN trained for {path.name} (diverged: try a smaller lr)")
        cache.atomic_save({"state_dict": net.state_dict(), "history": pd.DataFrame(rows).to_dict(orient="list"),
                           "spec": spec}, path)
        partial.unlink(missing_ok=True)
        return net.state_dict(), rows

    state, rows = _from_rank0(keep, rank, world)
    if rank != 0:  # each rank's BatchNorm buffers saw its own last share: all return rank 0's network
        net.load_state_dict(state)
    return TrainedModel(net, key, spec, pd.DataFrame(rows), rows[-1]["test_accuracy"], from_cache=False)


def _fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    digest = hashlib.sha256()
    digest.update(labels.numpy().tobytes())
    digest.update(images[:: max(1, len(images) // 64)].numpy().tobytes())
    return digest.hexdigest()[:12]
