"""A corpus of failures: each is refused with one clear message, or survived without losing anything.

* user errors in the command line: exit code 2, one ``t2fsnn: error:`` line of text, no
  traceback, and no notebook kernel started;
* damaged dataset files, whatever their checksums: the error names the file, what was
  expected and what was found;
* damaged cache entries (models, training checkpoints, kernel-optimization results,
  coding runs): removed with a warning that names them, recomputed, never loaded;
* a notebook that fails halfway: the command line names the cell and the partial notebook;
* ``kill -9`` at a seeded random point of a training, of ``t2fsnn run`` and of the book
  build: the rerun completes and no partial file is taken for a finished one;
* two runs of a smoke-profile notebook with the same parameters give the same glued values.
"""
import json
import os
import pickle
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from t2fsnn import TTFSConfig, cache, data
from t2fsnn.book import cli, preflight, runner
from t2fsnn.book.record import glued_outputs
from t2fsnn.training import train_or_load

from model_fixtures import trained_model, trained_mnist  # noqa: F401
from notebook_outputs import assert_no_error_output

REPO = Path(__file__).resolve().parents[1]
NB = "01_train_and_convert"
SEED = 13  # the random kill points are drawn from random.Random(SEED + case)
SMALL = dict(dataset="mnist_subset", model="mnist_cnn", epochs=1, lr=0.05, batch_size=64, seed=0,
             train_limit=256, device="cpu", progress=False)


# --------------------------------------------------------------------------- helpers

@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if a notebook kernel would start."""
    import papermill

    def refuse(*args, **kwargs):
        raise AssertionError("a notebook started although the run should have been refused")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)


def cli_refusal(capsys, argv, *words):
    """Run the CLI in-process; it must exit with 2 and one clear message holding ``words``."""
    rc = cli.main(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert rc == 2, (rc, captured)
    assert "Traceback" not in err + captured.out
    assert err.startswith("t2fsnn: error: ") and err.count("t2fsnn: error:") == 1, err
    for word in words:
        assert word in err, (word, err)
    return err


def write_idx_images(path, n, rows=28, cols=28, magic=2051, cut=None):
    blob = struct.pack(">IIII", magic, n, rows, cols) + bytes(range(256)) * (n * rows * cols // 256) \
        + bytes(n * rows * cols % 256)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob if cut is None else blob[:cut])


def write_idx_labels(path, labels, magic=2049, count=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack(">II", magic, len(labels) if count is None else count) + bytes(labels))


def mnist_root(tmp_path, n=20):
    """A small well-formed MNIST in torchvision's layout (other checksums than the registered ones)."""
    raw = tmp_path / "MNIST" / "raw"
    for prefix in ("train", "t10k"):
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", n)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", [i % 10 for i in range(n)])
    return raw


def cifar_entry(n=8, classes=10, label_key="labels"):
    rng = np.random.default_rng(0)
    return {"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            label_key: [int(v) for v in rng.integers(0, classes, size=n)]}


def cifar10_root(tmp_path, n=8):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump(cifar_entry(n), f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return folder


def corrupt_error(name, split, root, *words):
    """``data.check`` must raise DatasetCorruptError naming the file, what was expected and found."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic copies have other checksums
        with pytest.raises(data.DatasetCorruptError) as err:
            data.check(name, (split,), root=root)
    text = str(err.value)
    assert "expected:" in text and "found:" in text and "remedy:" in text, text
    for word in words:
        assert word in text, (word, text)
    return text


def descendants(pid):
    """Process ids of every descendant of ``pid`` (read from /proc)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_9(proc):
    """SIGKILL a process this test started, its process group and its descendants (a kernel has its own session)."""
    pids = descendants(proc.pid)
    for kill in [lambda: os.killpg(proc.pid, signal.SIGKILL)] + [lambda p=p: os.kill(p, signal.SIGKILL) for p in pids]:
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait(timeout=30)


def start(argv, log, env=None):
    return subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, cwd=REPO,
                            start_new_session=True)


def kill_at_random_point(proc, rng, low, high):
    """Sleep a seeded random time in [low, high] s, then kill -9 unless it finished; return the delay."""
    delay = rng.uniform(low, high)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is None:
        kill_9(proc)
    return delay


def glued_data(path):
    """``{key: JSON of every MIME bundle}`` of a notebook's glued outputs; the run time masked in the run record."""
    assert_no_error_output(path)
    values = {key: json.dumps(bundle, sort_keys=True) for key, bundle in glued_outputs(path).items()}
    if "run_record" in values:  # provenance: its text without the minute it ran and the source revision
        text = json.loads(values["run_record"]).get("text/plain", "")
        text = "".join(text) if isinstance(text, list) else text
        values["run_record"] = "\n".join(line for line in text.splitlines()
                                         if "executed (UTC)" not in line and "source revision" not in line)
    return values


def child_env(cache_dir):
    env = dict(os.environ, T2FSNN_CACHE=str(cache_dir), T2FSNN_NO_DOWNLOAD="1", PYTHONUNBUFFERED="1")
    env.pop("T2FSNN_DATA", None)
    return env


# --------------------------------------------------------------------------- 1. CLI user errors: exit 2, one message

@pytest.mark.parametrize(
    "argv, words",
    [
        (["run", NB, "--profile", "smoke", "-p", "epoch", "3"], ["unknown parameter 'epoch'", "allowed parameters"]),
        (["run", NB, "--profile", "smoke", "-p", "epochs", "0"], ["epochs=0 is not allowed", ">= 1"]),
        (["run", NB, "--profile", "smoke", "-p", "lr", "fast"], ["lr='fast' is not allowed"]),
        (["run", NB, "--profile", "smoke", "-p", "epochs", "1", "-p", "epochs", "2"], ["'epochs' given twice"]),
        (["run", NB, "--profile", "smoke", "-p", "tau", "5"], ["does not take parameter 'tau'"]),
        (["run", NB, "--profile", "smoke", "-p", "dataset", "svhn"], ["'mnist_subset', 'mnist', 'cifar10', 'cifar100'"]),
        (["run", "no_such_notebook"], ["notebook no_such_notebook not found", "01_train_and_convert"]),
        (["book", "--no-run", "-p", "epochs", "1"], ["--no-run takes no parameters"]),
    ],
    ids=["unknown-parameter", "out-of-range", "not-a-number", "given-twice", "not-taken-by-notebook",
         "unknown-dataset", "unknown-notebook", "no-run-with-parameters"],
)
def test_cli_bad_parameters(no_kernel, capsys, argv, words):
    cli_refusal(capsys, argv, *words)


def test_cli_unknown_profile(no_kernel, capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse: usage line and one error line
        cli.main(["run", NB, "--profile", "huge"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'huge'" in err and "'smoke'" in err and "Traceback" not in err
    with pytest.raises(runner.ParameterError, match="unknown profile 'huge'; allowed profiles: smoke, quick"):
        runner.resolve_parameters(NB, "huge")


def test_cli_missing_dataset_refused_before_any_kernel(no_kernel, capsys, monkeypatch, tmp_path):
    """The issue's case: ``T2FSNN_DATA=/empty t2fsnn run 01_train_and_convert -p dataset cifar10 -p model vgg_small``."""
    monkeypatch.setenv("T2FSNN_DATA", str(tmp_path / "empty"))
    out = tmp_path / "out"
    err = cli_refusal(capsys, ["run", NB, "-p", "dataset", "cifar10", "-p", "model", "vgg_small", "--output-dir", str(out)],
                      "dataset 'cifar10' not found", "MISSING", "data_batch_1", "downloads disabled by T2FSNN_NO_DOWNLOAD",
                      "T2FSNN_DATA")
    assert "281 if missing" not in err
    assert not list(out.iterdir())  # no notebook was even begun


def test_cli_offline_download_fails_fast_with_remedy(no_kernel, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("T2FSNN_NO_DOWNLOAD", raising=False)
    monkeypatch.setenv("T2FSNN_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(data, "_download_hosts", lambda name: [("127.0.0.1", 9)])  # nothing listens there
    started = time.monotonic()
    cli_refusal(capsys, ["run", NB, "--profile", "smoke", "-p", "dataset", "mnist", "--output-dir", str(tmp_path / "o")],
                "no network access", "could not reach the download server", "Remedies", "T2FSNN_DATA")
    assert time.monotonic() - started < data.PROBE_TIMEOUT + 5


def never_answers(*args, **kwargs):
    time.sleep(3)
    raise TimeoutError("timed out")


def test_offline_probe_gives_up_after_its_timeout(monkeypatch, tmp_path):
    monkeypatch.delenv("T2FSNN_NO_DOWNLOAD", raising=False)
    monkeypatch.setattr(data, "PROBE_TIMEOUT", 0.5)
    monkeypatch.setattr(data, "_download_hosts", lambda name: [("download.invalid", 443)])
    monkeypatch.setattr(data.socket, "create_connection", never_answers)
    started = time.monotonic()
    with pytest.raises(data.DatasetNotFoundError, match="no network access"):
        data.check("cifar100", ("test",), root=tmp_path)
    assert time.monotonic() - started < 3
    assert not (tmp_path / "cifar-100-python").exists()


def test_cli_truncated_mnist_refused_before_any_kernel(no_kernel, capsys, monkeypatch, tmp_path):
    """The issue's case: idx files cut to 1,000 bytes (torchvision said ``shape '[60000, 28, 28]' is invalid``)."""
    raw = mnist_root(tmp_path)
    write_idx_images(raw / "train-images-idx3-ubyte", 60000, cut=1000)
    monkeypatch.setenv("T2FSNN_DATA", str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cli_refusal(capsys, ["run", NB, "--profile", "smoke", "-p", "dataset", "mnist", "--output-dir", str(tmp_path / "o")],
                    "train-images-idx3-ubyte is damaged", "expected: an idx3 image file",
                    "found:    1000 bytes for a count of 60000", "remedy:")


def test_cli_unwritable_cache(no_kernel, capsys, monkeypatch, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("T2FSNN_CACHE", str(tmp_path / "file" / "cache"))
    cli_refusal(capsys, ["run", NB, "--profile", "smoke", "--output-dir", str(tmp_path / "o")],
                "the cache folder", "cannot be written", "Set T2FSNN_CACHE to a writable folder")


def test_cli_unwritable_output(no_kernel, capsys, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    cli_refusal(capsys, ["run", NB, "--profile", "smoke", "--output-dir", str(tmp_path / "file" / "out")],
                "the output folder", "cannot be written", "--output-dir")


def test_book_checks_every_dataset_before_the_first_notebook(no_kernel, monkeypatch, tmp_path):
    monkeypatch.setenv("T2FSNN_DATA", str(tmp_path / "empty"))
    with pytest.raises(data.DatasetNotFoundError, match="dataset 'mnist' not found"):
        runner.run_book_notebooks("smoke", {"dataset": "mnist"}, output_dir=tmp_path / "o")
    assert not list((tmp_path / "o").iterdir())


def test_cli_book_no_run_without_executed_notebooks(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "GENERATED_DIR", tmp_path / "generated")

    def no_build(*args, **kwargs):
        raise AssertionError("jupyter-book started although the executed notebooks are missing")

    monkeypatch.setattr(runner, "build_book", no_build)
    cli_refusal(capsys, ["book", "--no-run"], "no executed notebook", "01_train_and_convert.ipynb",
                "Run `t2fsnn book`")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_cache_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(cache.CacheNotWritableError, match="cannot be written"):
            cache.ensure_writable(folder)
    finally:
        folder.chmod(0o755)


def test_cli_user_error_in_a_real_process(tmp_path):
    """The installed entry point: exit code 2, the message, no traceback, in seconds."""
    env = child_env(tmp_path / "cache")
    env["T2FSNN_DATA"] = str(tmp_path / "empty")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "t2fsnn.book.cli", "run", NB, "-p", "dataset", "cifar100", "-p", "model",
                           "vgg_small", "--output-dir", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("t2fsnn: error: dataset 'cifar100' not found")
    assert time.monotonic() - started < 90
    assert not list((tmp_path / "o").iterdir())


# --------------------------------------------------------------------------- 2. structure of dataset files

def test_wellformed_copies_with_other_checksums_load_with_a_warning(tmp_path):
    mnist_root(tmp_path)
    cifar10_root(tmp_path)
    with pytest.warns(UserWarning, match="checksums differ"):
        data.check("mnist", root=tmp_path)
    with pytest.warns(UserWarning, match="checksums differ"):
        data.check("cifar10", root=tmp_path)
    assert len(data.load("mnist", "test", root=tmp_path)) == 20


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda raw: write_idx_images(raw / "train-images-idx3-ubyte", 20, cut=10),
         ["train-images-idx3-ubyte", "10 bytes, shorter than the 16-byte header"]),
        (lambda raw: write_idx_images(raw / "train-images-idx3-ubyte", 20, magic=2049),
         ["train-images-idx3-ubyte", "magic 2051", "found:    magic 2049 (0x00000801)"]),
        (lambda raw: write_idx_images(raw / "train-images-idx3-ubyte", 20, rows=32, cols=32),
         ["images of 32 rows x 32 columns"]),
        (lambda raw: write_idx_images(raw / "train-images-idx3-ubyte", 20, cut=16 + 19 * 784),
         ["14912 bytes for a count of 20 (should be 15696 bytes; truncated or padded)"]),
        (lambda raw: write_idx_labels(raw / "train-labels-idx1-ubyte", [1] * 20, count=25),
         ["train-labels-idx1-ubyte", "28 bytes for a count of 25"]),
        (lambda raw: write_idx_labels(raw / "train-labels-idx1-ubyte", [1] * 19 + [12]),
         ["train-labels-idx1-ubyte", "label bytes in 0..9", "label 12 at index 19"]),
        (lambda raw: write_idx_labels(raw / "train-labels-idx1-ubyte", [1] * 19),
         ["train-labels-idx1-ubyte", "as many labels as images", "(20)", "found:    19 labels"]),
    ],
    ids=["shorter-than-header", "wrong-magic", "wrong-image-size", "truncated-images", "truncated-labels",
         "label-out-of-range", "label-count-differs"],
)
def test_damaged_mnist_file(tmp_path, damage, words):
    damage(mnist_root(tmp_path))
    corrupt_error("mnist", "train", tmp_path, *words)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(data.DatasetCorruptError):  # load refuses it too, before torchvision reads it
            data.load("mnist", "train", root=tmp_path)


def _pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


class _Payload:
    """A pickle that would create a folder when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda f: (f / "data_batch_2").write_bytes((f / "data_batch_2").read_bytes()[:5000]),
         ["data_batch_2 is damaged", "truncated pickle ("]),
        (lambda f: (f / "data_batch_3").write_bytes(b"\x00garbage" * 100), ["data_batch_3", "unreadable pickle"]),
        (lambda f: _pickle(f / "data_batch_1", {"data": cifar_entry()["data"]}),
         ["data_batch_1", "missing 'labels'"]),
        (lambda f: _pickle(f / "data_batch_1", {**cifar_entry(), "data": cifar_entry()["data"].astype(np.float32)}),
         ["'data' float32 array of shape (8, 3072)"]),
        (lambda f: _pickle(f / "data_batch_4", {**cifar_entry(), "data": cifar_entry()["data"][:, :1024]}),
         ["data_batch_4", "uint8 array of shape (N, 3072)", "'data' uint8 array of shape (8, 1024)"]),
        (lambda f: _pickle(f / "data_batch_5", {**cifar_entry(), "labels": [3] * 7 + [10]}),
         ["data_batch_5", "integers in 0..9", "labels from 3 to 10"]),
        (lambda f: _pickle(f / "data_batch_5", {**cifar_entry(), "labels": [3] * 7}), ["8 images but 7 labels"]),
        (lambda f: _pickle(f / "batches.meta", {"label_names": ["a"] * 9}),
         ["batches.meta", "a list of 10 class names", "'label_names' with 9 entries"]),
        (lambda f: _pickle(f / "batches.meta", [1, 2]), ["batches.meta", "a pickled list"]),
    ],
    ids=["truncated-pickle", "garbage", "missing-key", "wrong-dtype", "wrong-shape", "label-out-of-range",
         "label-count-differs", "meta-class-count", "not-a-dict"],
)
def test_damaged_cifar10_file(tmp_path, damage, words):
    damage(cifar10_root(tmp_path))
    corrupt_error("cifar10", "train", tmp_path, *words)


def test_damaged_cifar100_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _pickle(folder / "train", {**cifar_entry(classes=100, label_key="fine_labels"), "fine_labels": [5] * 7 + [100]})
    _pickle(folder / "test", cifar_entry(classes=100, label_key="fine_labels"))
    _pickle(folder / "meta", {"fine_label_names": [str(i) for i in range(100)]})
    corrupt_error("cifar100", "train", tmp_path, "cifar-100-python/train", "'fine_labels': N integers in 0..99",
                  "labels from 5 to 100")
    with pytest.warns(UserWarning, match="checksums differ"):  # the other split is sound
        data.check("cifar100", ("test",), root=tmp_path)


def test_pickle_with_code_is_refused_unexecuted(tmp_path):
    folder = cifar10_root(tmp_path)
    marker = tmp_path / "executed"
    _pickle(folder / "test_batch", _Payload(marker))
    corrupt_error("cifar10", "test", tmp_path, "test_batch", "unexpected object", "mkdir")
    assert not marker.exists()


@pytest.mark.parametrize("cut", [300, None], ids=["truncated-gzip", "other-content"])
def test_damaged_embedded_subset(tmp_path, monkeypatch, cut):
    shutil.copytree(data.SUBSET_DIR, tmp_path / "subset")
    gz = tmp_path / "subset" / "t10k-labels-idx1-ubyte.gz"
    import gzip

    gz.write_bytes(gz.read_bytes()[:cut] if cut else gzip.compress(b"\x00" * 100))
    monkeypatch.setattr(data, "SUBSET_DIR", tmp_path / "subset")
    monkeypatch.setattr(data, "cache_dir", lambda: tmp_path / "cache")
    text = corrupt_error("mnist_subset", "test", None, "t10k-labels-idx1-ubyte.gz", "decompresses to the registered",
                         "damaged gzip file" if cut else "content with sha256", "restore data/mnist-subset from git")
    assert "T2FSNN_NO_DOWNLOAD" not in text
    assert {r["dataset"]: r["state"] for r in data.status(tmp_path)}["mnist_subset"] == "corrupt"


def test_data_status_shows_corrupt(tmp_path, capsys):
    raw = mnist_root(tmp_path)
    write_idx_labels(raw / "t10k-labels-idx1-ubyte", [1] * 3)
    rows = {r["dataset"]: r["state"] for r in data.status(tmp_path)}
    assert rows["mnist"] == "corrupt"
    assert cli.main(["data", "--root", str(tmp_path)]) == 0
    assert re.search(r"mnist\s+corrupt", capsys.readouterr().out)


# --------------------------------------------------------------------------- 3. the cache

def _only_model(root):
    (path,) = [p for p in (root / "models").glob("*.pt") if not p.name.endswith(".partial.pt")]
    return path


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("small-model")
    return root, train_or_load(**SMALL, cache_root=root)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "unreadable"),
        (lambda p: p.write_bytes(b"\x00" * 100), "unreadable"),
        (lambda p: p.write_bytes(bytes(b ^ 1 if i == p.stat().st_size // 3 else b
                                       for i, b in enumerate(p.read_bytes()))), "checksum mismatch"),
        (lambda p: torch.save({"state_dict": {}}, p), "missing history"),
    ],
    ids=["truncated", "garbage", "one-bit-flipped", "missing-keys"],
)
def test_damaged_cached_model_is_removed_and_retrained(small_model, tmp_path, damage, reason):
    root, first = small_model
    shutil.copytree(root, tmp_path / "c")
    path = _only_model(tmp_path / "c")
    damage(path)
    with pytest.warns(cache.CacheWarning) as record:
        again = train_or_load(**SMALL, cache_root=tmp_path / "c")
    message = str(record[0].message)
    assert str(path) in message and "removed damaged cache entry" in message and reason in message, message
    assert not again.from_cache
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    assert cache.safe_load(path, ("state_dict", "history"))  # rewritten, with its checksum


def test_legacy_cache_file_without_checksum_still_loads(small_model, tmp_path):
    """Files written before checksums existed (plain torch.save of the dict) load as before."""
    root, first = small_model
    shutil.copytree(root, tmp_path / "c")
    path = _only_model(tmp_path / "c")
    stored = cache.safe_load(path)
    torch.save(stored, path)
    assert cache.CHECKSUM_KEY not in torch.load(path, weights_only=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", cache.CacheWarning)
        again = train_or_load(**SMALL, cache_root=tmp_path / "c")
    assert again.from_cache and torch.equal(again.model.state_dict()["0.weight"], first.model.state_dict()["0.weight"])
    # and a cached file stays a plain torch.load-able dict
    assert set(torch.load(_only_model(root), weights_only=True)) >= {"state_dict", "history", "spec"}


def test_damaged_partial_checkpoint_restarts_training(tmp_path):
    options = {**SMALL, "epochs": 2}
    straight = train_or_load(**options, cache_root=tmp_path / "straight")
    # a killed first attempt leaves a checkpoint; damage it
    import t2fsnn.training as training

    calls = {"n": 0}
    real = training.evaluate

    def stop_after_first_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    training.evaluate = stop_after_first_epoch
    try:
        with pytest.raises(KeyboardInterrupt):
            train_or_load(**options, cache_root=tmp_path / "c")
    finally:
        training.evaluate = real
    (partial,) = (tmp_path / "c" / "models").glob("*.partial.pt")
    partial.write_bytes(partial.read_bytes()[:1000])
    with pytest.warns(cache.CacheWarning, match=re.escape(partial.name)):
        resumed = train_or_load(**options, cache_root=tmp_path / "c")
    assert len(resumed.history) == 2 and not partial.exists()
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_unwritable_cache_refused_before_training(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")

    def no_training(*args, **kwargs):
        raise AssertionError("training started although the cache cannot be written")

    monkeypatch.setattr(torch.optim, "SGD", no_training)
    with pytest.raises(cache.CacheNotWritableError, match=r"cache folder .*file/models cannot be written"):
        train_or_load(**SMALL, cache_root=tmp_path / "file")


def test_damaged_kernel_optimization_result_is_recomputed(trained_mnist, tmp_path):
    from t2fsnn.snn import optimization as go

    net, images, _ = trained_mnist
    options = dict(steps=2, batch_size=8, cache_root=tmp_path)
    cfg = TTFSConfig(T=20, tau=5.0)
    first, history = go.optimize_kernels(net, images, cfg, **options)
    (path,) = (tmp_path / "kernels").glob("go-*.pt")
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.warns(cache.CacheWarning, match=re.escape(str(path))):
        again, again_history = go.optimize_kernels(net, images, cfg, **options)
    assert (again.tau, again.td) == (first.tau, first.td)
    assert again_history.equals(history)
    assert cache.safe_load(path, ("tau", "td"))


def test_damaged_coding_run_is_recomputed(trained_mnist, tmp_path):
    from t2fsnn.experiments import comparison

    net, images, labels = trained_mnist
    cfg = TTFSConfig(T=20, tau=5.0)
    options = dict(progress=False, use_cache=True, cache_root=tmp_path)
    first = comparison.run_coding(net, images[:8], labels[:8], cfg, **options)
    (path,) = (tmp_path / "codings").glob("*.pt")
    stored = cache.safe_load(path)
    stored["accuracy"] = stored["accuracy"] + 1  # a wrong value under a valid-looking file
    payload = {**stored, cache.CHECKSUM_KEY: "0" * 64}
    torch.save(payload, path)
    with pytest.warns(cache.CacheWarning, match="checksum mismatch"):
        again = comparison.run_coding(net, images[:8], labels[:8], cfg, **options)
    assert not again.extra["from_cache"]
    assert np.array_equal(again.accuracy_over_time, first.accuracy_over_time)
    assert comparison.run_coding(net, images[:8], labels[:8], cfg, **options).extra["from_cache"]


def test_atomic_save_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "entry.pt"
    cache.atomic_save({"value": torch.ones(3)}, path)
    with pytest.raises(Exception):
        cache.atomic_save({"value": lambda: 0}, path)  # cannot be pickled
    assert torch.equal(cache.safe_load(path, ("value",))["value"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["entry.pt"]


def test_stale_temporaries_of_killed_writers_are_removed(tmp_path):
    path = tmp_path / "entry.pt"
    stale, fresh = tmp_path / "entry.pt.abc.tmp", tmp_path / "entry.pt.def.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    old = time.time() - cache.STALE_TEMP_SECONDS - 10
    os.utime(stale, (old, old))
    cache.atomic_save({"value": 1}, path)
    assert not stale.exists() and fresh.exists()
    assert cache.safe_load(path) == {"value": 1}


# --------------------------------------------------------------------------- 4. a notebook failing halfway

def test_cli_names_the_failed_cell_and_the_partial_notebook(tmp_path, capsys):
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("epochs = 1\nprofile = 'x'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("# step two\ny = x / 0"),
                nbformat.v4.new_code_cell("z = 2")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "halfway.ipynb")
    rc = cli.main(["run", str(tmp_path / "halfway.ipynb"), "--profile", "smoke", "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    partial = tmp_path / "o" / "halfway.failed.ipynb"
    # its third cell; In [4] after the parameters cell papermill injects
    assert "notebook halfway.ipynb failed in cell 3 of 4 (In [4] in the partial notebook)" in err
    assert "ZeroDivisionError: division by zero" in err and "the cell begins: y = x / 0" in err
    assert f"The partial executed notebook, with the error output in that cell (marked in red), is {partial}" in err
    failed = [c for c in json.loads(partial.read_text())["cells"] if c.get("outputs")]
    assert [o["ename"] for o in failed[0]["outputs"]] == ["ZeroDivisionError"]
    assert not (tmp_path / "o" / "halfway.ipynb").exists()
    with pytest.raises(preflight.NotebookFailedError) as error:
        runner.run_notebook(tmp_path / "halfway.ipynb", "smoke", output_dir=tmp_path / "o")
    assert (error.value.cell, error.value.partial) == (3, partial)


# --------------------------------------------------------------------------- 5. kill -9, then rerun

TRAIN_CHILD = """
import json, sys
from t2fsnn.training import train_or_load
print("ready", flush=True)
train_or_load(**json.loads(sys.argv[1]), cache_root=sys.argv[2])
print("done", flush=True)
"""


def test_kill_9_during_training_then_rerun(tmp_path):
    options = {**SMALL, "epochs": 3, "train_limit": 128}
    started = time.monotonic()
    straight = train_or_load(**options, cache_root=tmp_path / "straight")
    duration = time.monotonic() - started
    rng = random.Random(SEED)
    for attempt in range(1):  # more kill points (each resuming the last) cost a process start each
        log = tmp_path / f"train-{attempt}.log"
        proc = start([sys.executable, "-c", TRAIN_CHILD, json.dumps(options), str(tmp_path / "c")], log)
        deadline = time.monotonic() + 120
        while "ready" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        delay = kill_at_random_point(proc, rng, 0.0, duration)
        models = tmp_path / "c" / "models"
        finals = [p for p in models.glob("*.pt") if not p.name.endswith(".partial.pt")] if models.exists() else []
        if proc.returncode != 0:  # killed: a final file exists only if it was complete before the kill
            for path in finals:
                assert len(cache.safe_load(path, ("state_dict", "history"))["history"]["epoch"]) == 3, delay
        for partial in models.glob("*.partial.pt") if models.exists() else []:
            assert len(cache.safe_load(partial, ("rows",))["rows"]) < 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", cache.CacheWarning)  # nothing damaged: every file was complete
        rerun = train_or_load(**options, cache_root=tmp_path / "c")
    assert len(rerun.history) == 3
    for a, b in zip(straight.model.state_dict().values(), rerun.model.state_dict().values()):
        assert torch.equal(a, b)
    assert not list((tmp_path / "c" / "models").glob("*.partial.pt"))


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """``t2fsnn run 01_train_and_convert --profile smoke`` once, in its own cache: (executed notebook, seconds)."""
    root = tmp_path_factory.mktemp("clean-run")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "t2fsnn.book.cli", "run", NB, "--profile", "smoke", "--output-dir",
                           str(root / "out")], env=child_env(root / "cache"), cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc
    return root / "out" / f"{NB}.ipynb", time.monotonic() - started


@pytest.mark.slow
def test_same_parameters_give_the_same_glued_values(clean_run, tmp_path, monkeypatch):
    first, _ = clean_run
    monkeypatch.setenv("T2FSNN_CACHE", str(tmp_path / "cache"))  # a fresh cache: this run trains too
    second = runner.run_notebook(NB, "smoke", output_dir=tmp_path / "out")
    a, b = glued_data(first), glued_data(second)
    assert set(a) == set(b) and {"ann_accuracy", "history", "scales", "fig_activations"} <= set(a)
    assert a["model_origin"] == b["model_origin"]  # both trained, neither loaded
    for key in a:
        assert a[key] == b[key], key


@pytest.mark.slow
def test_kill_9_during_t2fsnn_run_then_rerun(clean_run, tmp_path):
    reference, duration = clean_run
    out, cache_dir = tmp_path / "out", tmp_path / "cache"
    argv = [sys.executable, "-m", "t2fsnn.book.cli", "run", NB, "--profile", "smoke", "--output-dir", str(out)]
    proc = start(argv, tmp_path / "killed.log", env=child_env(cache_dir))
    delay = kill_at_random_point(proc, random.Random(SEED + 1), 0.2 * duration, 0.9 * duration)
    final = out / f"{NB}.ipynb"
    if proc.returncode != 0:  # killed: at most a hidden temporary copy, never a final-looking file
        left = [p.name for p in out.iterdir() if not p.name.startswith(".")] if out.exists() else []
        assert left == [], f"a killed run (after {delay:.1f} s) left {left}"
    rerun = subprocess.run(argv, env=child_env(cache_dir), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun
    a, b = glued_data(reference), glued_data(final)
    a.pop("model_origin"), b.pop("model_origin")  # the rerun may load the model the killed run had finished
    assert a == b


MINI_TOC = """format: jb-book
root: index
chapters:
  - file: generated/01_train_and_convert
"""


@pytest.mark.slow
def test_kill_9_during_book_build_then_rebuild(clean_run, tmp_path):
    executed, _ = clean_run
    src = tmp_path / "book"
    (src / "generated").mkdir(parents=True)
    shutil.copy(REPO / "_config.yml", src / "_config.yml")
    shutil.copy(REPO / "references.bib", src / "references.bib")  # the configuration names it
    (src / "_toc.yml").write_text(MINI_TOC)
    (src / "index.md").write_text("# Mini book\n\nProfile {glue:text}`generated/01_train_and_convert.ipynb::profile:s`, "
                                  "accuracy {glue:text}`generated/01_train_and_convert.ipynb::ann_accuracy:.2f`.\n")
    shutil.copy(executed, src / "generated" / executed.name)
    build = [sys.executable, "-c", "import sys; from t2fsnn import runner; print(runner.build_book(sys.argv[1]))", str(src)]
    proc = start(build, tmp_path / "killed.log")
    kill_at_random_point(proc, random.Random(SEED + 2), 2.0, 12.0)
    index = runner.build_book(src)  # -W: a warning (e.g. from a half-written page) fails it
    html = (src / "_build" / "html" / "index.html").read_text()
    assert index.is_file() and "pasted-text\">smoke<" in html
    assert (src / "_build" / "html" / "generated" / "01_train_and_convert.html").is_file()


# --------------------------------------------------------------------------- non-finite numbers, files named

@pytest.fixture(scope="module")
def converted_small(small_model):
    from t2fsnn import convert, data

    _, trained = small_model
    x, _ = data.to_tensors(data.load("mnist_subset", "train"), 64)
    return trained.model, convert(trained.model, x), x


@pytest.mark.parametrize("coding", ["ttfs", "rate", "phase", "burst"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_images_are_refused_by_every_coding(converted_small, coding, bad):
    from t2fsnn import BurstConfig, PhaseConfig, RateConfig, TTFSConfig

    _, net, x = converted_small
    images = x[:8].clone()
    images[5, 0, 3, 4] = bad
    cfg = {"ttfs": TTFSConfig(T=20, tau=5.0), "rate": RateConfig(T=20), "phase": PhaseConfig(T=16),
           "burst": BurstConfig(T=20)}[coding]
    with pytest.raises(ValueError, match=rf"images hold {bad} at image 5, element \[0, 3, 4\]: only finite"):
        net.simulate(images, cfg)


def test_non_finite_calibration_images_are_refused_with_their_index(converted_small):
    from t2fsnn import convert

    model, _, x = converted_small
    batches = [x[:32].clone(), x[32:].clone()]
    batches[1][7, 0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"calibration images hold nan at image 39, element \[0, 1, 2\]"):
        convert(model, batches)


def test_non_finite_weights_are_refused_with_the_tensor_named(converted_small):
    import copy

    from t2fsnn import convert

    model, _, x = converted_small
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken[0].weight[2, 0, 1, 1] = float("inf")
    with pytest.raises(ValueError, match=r"the model holds inf in 0.weight at \[2, 0, 1, 1\]: its weights must be finite"):
        convert(broken, x)


def test_cached_model_with_non_finite_weights_is_refused_naming_the_file(small_model, tmp_path):
    import shutil

    from t2fsnn import cache

    root, _ = small_model
    copy = tmp_path / "c"
    shutil.copytree(root, copy)
    path = next((copy / "models").glob("*.pt"))
    stored = cache.safe_load(path)
    stored["state_dict"]["4.bias"][0] = float("nan")
    cache.atomic_save(stored, path)
    with pytest.raises(ValueError, match=rf"the ANN {path} holds nan in 4.bias at \[0\]"):
        train_or_load(**SMALL, cache_root=copy)


def test_non_finite_images_are_refused_by_kernel_optimization_and_the_grid(converted_small):
    from t2fsnn import TTFSConfig
    from t2fsnn.experiments import design_space

    _, net, x = converted_small
    images = x[:16].clone()
    images[3, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"images hold nan at image 3"):
        net.optimize_kernels(images, TTFSConfig(T=20, tau=5.0), steps=1)
    with pytest.raises(ValueError, match=r"images hold nan at image 3"):
        design_space.evaluate_grid(net, images, torch.zeros(16, dtype=torch.long), [20], [5.0], use_cache=False)


def test_cli_names_a_notebook_file_that_is_not_json(no_kernel, capsys, tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{this is not json")
    cli_refusal(capsys, ["run", str(broken)], str(broken), "is not a notebook file")


def test_a_damaged_profile_is_named(monkeypatch, tmp_path):
    (tmp_path / "quick.yml").write_text("defaults: [unclosed\n")
    monkeypatch.setattr(runner, "PROFILE_DIR", tmp_path)
    with pytest.raises(runner.ParameterError, match=rf"profile {tmp_path / 'quick.yml'}: cannot be read"):
        runner.load_profile("quick")


def test_a_damaged_recorded_notebook_is_named(tmp_path):
    from t2fsnn.book import record

    path = tmp_path / "05_ablation.ipynb"
    path.write_text('{"cells": [')
    with pytest.raises(record.RecordError, match=rf"recorded notebook {path} cannot be read"):
        record.glued_values(path)
