"""Independent tasks on a Dask cluster: the same results as in this process, and a dead worker loses nothing."""
import os
import sys

import pandas as pd
import pytest

from t2fsnn import TTFSConfig, cluster
from t2fsnn.experiments import design_space

from model_fixtures import trained_model, trained_mnist  # noqa: F401


@pytest.mark.parametrize("value", ["local:0", "local:two", "local", "http://host:8786", "somewhere", 3])
def test_a_scheduler_that_is_neither_local_nor_an_address_is_refused(value):
    with pytest.raises(ValueError, match=r"is not allowed: use 'local:N'|give a string"):
        cluster.scheduler_setting(value)


def test_the_scheduler_comes_from_the_environment_and_nothing_means_this_process(monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    assert cluster.scheduler_setting() is None and cluster.scheduler_setting("  ") is None
    monkeypatch.setenv(cluster.SCHEDULER_ENV, "tcp://10.0.0.1:8786")
    assert cluster.scheduler_setting() == "tcp://10.0.0.1:8786"
    assert cluster.scheduler_setting("local:3") == "local:3"  # the argument wins
    monkeypatch.setenv(cluster.SCHEDULER_ENV, "local:-1")
    with pytest.raises(ValueError, match=r"\$T2FSNN_SCHEDULER='local:-1' is not allowed"):
        cluster.scheduler_setting()


def test_in_this_process_the_tasks_run_in_order(monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    assert cluster.map_tasks(_scaled, [3, 1, 2], shared={"factor": 10}) == [30, 10, 20]
    with pytest.raises(ValueError, match="retries=-1"):
        cluster.map_tasks(_scaled, [1], shared={"factor": 1}, retries=-1)


def test_a_cluster_without_dask_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # the import fails as if dask were absent
    with pytest.raises(cluster.ClusterUnavailableError, match=r"pip install 't2fsnn\[cluster\]'"):
        cluster.map_tasks(_scaled, [1], "local:1", shared={"factor": 1})


def _scaled(item, factor):
    return item * factor


def _dies_once(item, marker_dir):
    """Kills its worker process the first time it sees item 0; run again elsewhere, it returns."""
    marker = os.path.join(marker_dir, f"seen-{item}")
    if item == 0 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return item + 100


@pytest.fixture(scope="module")
def distributed():
    return pytest.importorskip("dask.distributed", reason=f"needs Dask: {cluster.INSTALL}")


def test_a_worker_killed_mid_task_loses_nothing(distributed, tmp_path):
    results = cluster.map_tasks(_dies_once, [0, 1, 2, 3], "local:2", shared={"marker_dir": str(tmp_path)})
    assert results == [100, 101, 102, 103]
    assert (tmp_path / "seen-0").exists()  # the first attempt did die


def test_the_grid_on_two_workers_equals_the_grid_in_this_process(distributed, trained_mnist, tmp_path, monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    net, images, labels = trained_mnist
    grid = ([6, 10], [2.0, 4.0], [None, 3])
    options = dict(reference=TTFSConfig(T=10, tau=4.0), tolerance=0.5)
    here = design_space.evaluate_grid(net, images, labels, *grid, cache_root=tmp_path / "here", **options)
    there = design_space.evaluate_grid(net, images, labels, *grid, cache_root=tmp_path / "there",
                                       scheduler="local:2", **options)
    pd.testing.assert_frame_equal(here, there)
    assert len(list((tmp_path / "there").rglob("*.pt"))) == len(here)  # each result cached by its key
