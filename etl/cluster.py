"""Where partition-parallel work runs: in this process (default), or on a Dask cluster.

One switch for every command that has partition-parallel work (ingest staging per delivered
file, the match stage per month, aggregation per month and piece range):

- nothing given: everything runs in this process (no Dask imported);
- `scheduler` (``--scheduler tcp://HOST:8786``, or the environment variable
  ``ETC2CALM_DASK_SCHEDULER``): an existing cluster whose workers have etc2calm and its pinned
  dependencies installed, reach the warehouse and the deliveries at the same paths (shared
  storage) and hold the ID key in their own environment or key file;
- `local_workers` (``--dask-local N``): a LocalCluster of N single-threaded worker processes on
  this machine, started and closed around the command. Its workers inherit this process's
  environment (so the ID key reaches them the way it reaches this process, never as a task
  argument).

The functions take the resulting `distributed.Client` (or None) as their `client` argument and
give bit-identical stored results either way.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from config.settings import ENV_DASK_SCHEDULER


def resolve(scheduler: str | None = None, local_workers: int | None = None) -> tuple[str | None, int | None]:
    """(scheduler address, local workers) after the environment: at most one of them is set."""
    if scheduler and local_workers:
        raise ValueError("give either --scheduler ADDRESS or --dask-local N, not both")
    if local_workers is not None and local_workers < 1:
        raise ValueError(f"--dask-local needs at least 1 worker, got {local_workers}")
    if not scheduler and local_workers is None:
        scheduler = os.environ.get(ENV_DASK_SCHEDULER) or None
    return scheduler, local_workers


@contextmanager
def dask_client(scheduler: str | None = None, local_workers: int | None = None, *, timeout: str = "30s"):
    """Yield a `distributed.Client` for the cluster asked for (see the module docstring), or None."""
    scheduler, local_workers = resolve(scheduler, local_workers)
    if not scheduler and local_workers is None:
        yield None
        return
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout=timeout)
        else:
            # Single-threaded workers; the compiled kernels use one thread each (no oversubscription).
            cluster = LocalCluster(
                n_workers=local_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
                env={"NUMBA_NUM_THREADS": "1"},
            )
            client = Client(cluster)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise ValueError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def n_threads(client) -> int:
    """Worker threads of the cluster (at least 1)."""
    return max(1, sum(client.nthreads().values()))


__all__ = ["dask_client", "n_threads", "resolve"]
