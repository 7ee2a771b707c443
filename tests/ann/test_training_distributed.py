"""``train_or_load`` under torchrun: two real processes (gloo on the CPU) against one."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from t2fsnn import models
from t2fsnn.training import train_or_load

REPO = Path(__file__).resolve().parents[2]
SMALL = dict(dataset="mnist_subset", model="mnist_cnn", epochs=2, lr=0.05, batch_size=64, seed=0,
             train_limit=600, device="cpu", progress=False, recorded_root=None)
# no BatchNorm, no dropout, JPEG draws, shares of 32 and 31: two processes must give one process's weights
PLAIN = {**SMALL, "epochs": 1, "batch_size": 63, "jpeg_quality": 90}

# every rank runs the jobs in order and writes, per job, its state_dict and a summary (or the ValueError)
CHILD = '''
import json, os, sys
from pathlib import Path
import torch
from torch import nn
from t2fsnn import models
from t2fsnn.training import train_or_load

real_build = models.build

def plain_build(name, num_classes, in_channels=None):
    net = real_build(name, num_classes, in_channels)
    for i, module in enumerate(net):
        if isinstance(module, (nn.BatchNorm2d, nn.Dropout)):
            net[i] = nn.Identity()
    return net

out, rank = Path(sys.argv[2]), os.environ["RANK"]
for job in json.loads(Path(sys.argv[1]).read_text()):
    models.build = plain_build if job["plain"] else real_build
    try:
        result = train_or_load(**job["kwargs"])
    except ValueError as error:
        summary = {"error": str(error)}
    else:
        torch.save(result.model.state_dict(), out / f"{job['name']}-rank{rank}.pt")
        summary = {"key": result.key, "accuracy": result.test_accuracy, "from_cache": result.from_cache,
                   "history": result.history.to_dict(orient="list")}
    (out / f"{job['name']}-rank{rank}.json").write_text(json.dumps(summary))
'''


def plain_build(name, num_classes, in_channels=None, real_build=models.build):
    net = real_build(name, num_classes, in_channels)
    for i, module in enumerate(net):
        if isinstance(module, (nn.BatchNorm2d, nn.Dropout)):
            net[i] = nn.Identity()
    return net


def torchrun(tmp_path, jobs, processes=2):
    """Run ``jobs`` in ``processes`` ranks: {job name: [rank 0's (summary, state_dict), rank 1's, ...]}."""
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={processes}", str(tmp_path / "child.py"), str(tmp_path / "jobs.json"),
                           str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = {}
    for job in jobs:
        results[job["name"]] = []
        for rank in range(processes):
            summary = json.loads((out / f"{job['name']}-rank{rank}.json").read_text())
            state_file = out / f"{job['name']}-rank{rank}.pt"
            results[job["name"]].append((summary, torch.load(state_file) if state_file.exists() else None))
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One torchrun launch (two processes) for every job, beside the single-process runs to compare with."""
    import t2fsnn.training as training

    tmp = tmp_path_factory.mktemp("ddp")
    single = train_or_load(**SMALL, cache_root=tmp / "single")
    # a training interrupted after its first epoch, in one process: two processes must resume it
    real_evaluate, calls = training.evaluate, []

    def interrupt_after_first_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "evaluate", interrupt_after_first_epoch)
        with pytest.raises(KeyboardInterrupt):
            train_or_load(**SMALL, cache_root=tmp / "resume")
        patch.setattr(models, "build", plain_build)
        plain = train_or_load(**PLAIN, cache_root=tmp / "plain-single")
    assert list((tmp / "resume").rglob("*.partial.pt"))
    jobs = [
        {"name": "small", "plain": False, "kwargs": {**SMALL, "cache_root": str(tmp / "ddp")}},
        {"name": "resume", "plain": False, "kwargs": {**SMALL, "cache_root": str(tmp / "resume")}},
        {"name": "small_again", "plain": False, "kwargs": {**SMALL, "cache_root": str(tmp / "ddp")}},
        {"name": "plain", "plain": True, "kwargs": {**PLAIN, "cache_root": str(tmp / "plain-ddp")}},
        {"name": "last_batch_of_one", "plain": False,
         "kwargs": {**SMALL, "train_limit": 257, "cache_root": str(tmp / "refused")}},
        {"name": "batch_of_one", "plain": False,
         "kwargs": {**SMALL, "batch_size": 1, "cache_root": str(tmp / "refused")}},
    ]
    return tmp, single, plain, torchrun(tmp, jobs)


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def test_two_processes_return_one_network_and_write_one_entry_under_the_single_process_key(runs):
    tmp, single, _, results = runs
    (first, first_state), (second, second_state) = results["small"]
    assert same_weights(first_state, second_state) and first == second
    assert not first["from_cache"] and first["key"] == single.key
    assert [p.name for p in (tmp / "ddp" / "models").iterdir()] == [f"mnist_cnn-mnist_subset-{single.key}.pt"]
    # the same batches, with BatchNorm statistics over half a batch each and another dropout draw
    assert abs(first["accuracy"] - single.test_accuracy) < 5
    assert not same_weights(first_state, single.model.state_dict())
    # the history counts every image once, on every rank
    assert first["history"]["epoch"] == [1, 2] and 0 < first["history"]["train_loss"][-1] < 3
    # a second launch loads the entry on both ranks
    (again, again_state), (again_1, again_state_1) = results["small_again"]
    assert again["from_cache"] and again_1["from_cache"] and again["accuracy"] == first["accuracy"]
    assert same_weights(again_state, first_state) and same_weights(again_state_1, first_state)


def test_two_processes_train_exactly_as_one_without_batchnorm_and_dropout(runs):
    _, _, plain, results = runs
    (first, first_state), (second, second_state) = results["plain"]
    assert same_weights(first_state, second_state) and first["key"] == plain.key
    # each share's loss is weighted by its size (32 and 31 images) and the JPEG draws stay in step
    for name, value in plain.model.state_dict().items():
        torch.testing.assert_close(first_state[name], value, rtol=0, atol=1e-6)
    assert first["history"]["train_loss"] == pytest.approx(plain.history["train_loss"].tolist(), abs=1e-6)


def test_two_processes_resume_a_partial_training(runs):
    tmp, single, _, results = runs
    (first, first_state), (second, second_state) = results["resume"]
    assert same_weights(first_state, second_state) and not first["from_cache"]
    # epoch 1 is the checkpointed one of the single process, not trained again
    assert first["history"]["test_accuracy"][0] == single.history["test_accuracy"].iloc[0]
    assert first["history"]["train_loss"][0] == single.history["train_loss"].iloc[0]
    assert not list((tmp / "resume").rglob("*.partial.pt"))
    assert len(list((tmp / "resume" / "models").glob("*.pt"))) == 1


def test_a_batch_smaller_than_the_number_of_processes_is_refused(runs):
    _, _, _, results = runs
    for name, fragment in (("last_batch_of_one", "batch_size=64 on 257 training images gives a batch of 1 image"),
                           ("batch_of_one", "batch_size=1 on 600 training images gives a batch of 1 image")):
        for summary, state in results[name]:
            assert state is None and fragment in summary["error"] and "WORLD_SIZE=2" in summary["error"]
