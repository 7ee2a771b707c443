"""Independent tasks on a Dask cluster, or in this process when none is configured.

The scheduler comes from the argument, else ``$T2FSNN_SCHEDULER``:

* nothing (``None`` or ``""``): every task runs here, in order, exactly as without this module;
* ``local:N``: a ``dask.distributed.LocalCluster`` of ``N`` single-threaded worker processes,
  started for the call and closed after it;
* ``tcp://host:port`` (or ``tls://``, ``ws://``, ``inproc://``): an existing scheduler.

Dask (``pip install 't2fsnn[cluster]'``) is imported only when a cluster is asked for. A task
whose worker dies is run again on another worker (``retries``); the results come back in the
order of the items, so a table built from them is the same whichever way it ran. A script
that asks for ``local:N`` must do its work under ``if __name__ == "__main__":``: the workers
are new Python processes, and each imports the script's main module.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence

__all__ = ["SCHEDULER_ENV", "INSTALL", "ClusterUnavailableError", "scheduler_setting", "client", "map_tasks"]

SCHEDULER_ENV = "T2FSNN_SCHEDULER"
INSTALL = "pip install 't2fsnn[cluster]'"
_LOCAL = re.compile(r"^local:(\d+)$")
_ADDRESS = re.compile(r"^(tcp|tls|ws|wss|inproc)://\S+$")


class ClusterUnavailableError(RuntimeError):
    """A cluster was asked for but Dask is not installed, or its scheduler cannot be reached."""


def scheduler_setting(scheduler: Optional[str] = None) -> Optional[str]:
    """The checked scheduler (argument, else ``$T2FSNN_SCHEDULER``); ``None`` runs in this process."""
    value = os.environ.get(SCHEDULER_ENV, "") if scheduler is None else scheduler
    if not isinstance(value, str):
        raise ValueError(f"scheduler={value!r} is not allowed: give a string such as 'local:2' or 'tcp://host:8786'")
    value = value.strip()
    if not value:
        return None
    local = _LOCAL.match(value)
    if local and int(local.group(1)) >= 1:
        return value
    if _ADDRESS.match(value):
        return value
    source = f"${SCHEDULER_ENV}" if scheduler is None else "scheduler"
    raise ValueError(f"{source}={value!r} is not allowed: use 'local:N' (N >= 1 workers), a scheduler address "
                     "such as 'tcp://host:8786', or nothing to run in this process")


def _distributed():
    try:
        import dask.distributed as distributed
    except ImportError as error:
        raise ClusterUnavailableError(f"a Dask cluster was asked for but dask.distributed is not installed: "
                                      f"{INSTALL}") from error
    return distributed


@contextmanager
def client(scheduler: Optional[str] = None) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for the scheduler, or ``None`` when the tasks run in this process."""
    setting = scheduler_setting(scheduler)
    if setting is None:
        yield None
        return
    distributed = _distributed()
    local = _LOCAL.match(setting)
    if local:
        # one thread per worker: each task already uses the cores torch gives it
        with distributed.LocalCluster(n_workers=int(local.group(1)), threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as connected:
            yield connected
        return
    try:
        connected = distributed.Client(setting, timeout="20s")
    except (OSError, TimeoutError) as error:
        raise ClusterUnavailableError(f"the Dask scheduler {setting} cannot be reached: {error}") from error
    with connected:
        yield connected


def map_tasks(function: Callable, items: Sequence, scheduler: Optional[str] = None,
              shared: Optional[Mapping[str, Any]] = None, retries: int = 2) -> List[Any]:
    """``[function(item, **shared) for item in items]``, on the cluster when one is configured.

    ``shared`` holds the large arguments every task needs (a network, images): they are sent to
    the workers once. A task whose worker dies is run again, up to ``retries`` times; a task that
    raises an exception raises it here.
    """
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries={retries!r} is not allowed: it must be an integer >= 0")
    items, shared = list(items), dict(shared or {})
    with client(scheduler) as connected:
        if connected is None:
            return [function(item, **shared) for item in items]
        scattered = {name: connected.scatter(value, broadcast=True) for name, value in shared.items()}
        futures = connected.map(function, items, **scattered, retries=retries, pure=False)
        return connected.gather(futures)
