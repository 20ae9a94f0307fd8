"""The stage phase of an ingest: files grouped into tasks, staged by a process pool or on a Dask cluster.

Serves etl.ingest only. A task is a list of files for `etl.stage.stage_file`; tasks are formed largest
first, fine-grained enough that no worker idles long at the end of a batch, and batches of about
`etl.ingest.BATCH_BYTES` of deliveries are committed one at a time (ordered by the date in the name).
On a Dask cluster each worker loads its own ID key and checks it against the ingest's fingerprint:
the key is never a task argument.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import re
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from etl.pseudonymise import KeyMismatch, key_fingerprint, load_id_key
from etl.stage import StageContext, stage_file

TASK_BYTES = 32 * 1024**2  # small files are staged several to a task, up to this many bytes
TASKS_PER_WORKER = 32  # fine-grained enough that the end of a batch is balanced (one 50k-row ZIP ≈ 0.12 s)


_W: dict = {}


def init_worker(ctx: StageContext, lock_fd: int = -1) -> None:
    if lock_fd >= 0 and os.getpid() != _W.get("main_pid"):
        # A forked worker: drop the inherited lock descriptor (the lock belongs to the ingest process,
        # and must go when it dies) and die with it rather than linger as an orphan.
        os.close(lock_fd)
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    _W["ctx"] = ctx


def stage_task(task: tuple[str, list[str]]) -> list[dict]:
    staging, paths = task
    return [stage_file(Path(p), Path(staging), _W["ctx"]) for p in paths]


_WORKER_KEY: dict[str, bytes] = {}


def _worker_key(fingerprint: str) -> bytes:
    """The ID key of this (Dask worker) process, from its own environment or key file, checked against
    the ingest's fingerprint: the key itself never travels as a task argument."""
    key = _WORKER_KEY.get(fingerprint)
    if key is None:
        key = load_id_key()
        if key_fingerprint(key) != fingerprint:
            raise KeyMismatch(
                f"the ID key of Dask worker process {os.getpid()} (fingerprint {key_fingerprint(key)}) is not the "
                f"ingest's (fingerprint {fingerprint}): give every worker the same key (ETC2CALM_ID_KEY or the key "
                "file)"
            )
        _WORKER_KEY[fingerprint] = key
    return key


def stage_on_worker(staging: str, paths: list[tuple[str, str]], ctx: StageContext, fingerprint: str) -> list[dict]:
    """A staging task on a Dask worker: `stage_file` of each (path as given, absolute path).

    `ctx` carries no key (its key is empty): the worker loads its own and checks its fingerprint.
    The file is read at its absolute path (the worker's working directory may differ); the result
    names it as given, as the local path does, so manifests and messages are the same.
    """
    ctx = dataclasses.replace(ctx, key=_worker_key(fingerprint))
    out = []
    for given, absolute in paths:
        r = stage_file(Path(absolute), Path(staging), ctx)
        if given != absolute:
            r["path"] = given
            r["message"] = r["message"].replace(absolute, given)
        out.append(r)
    return out


_DATE_IN_NAME = re.compile(r"(\d{8})(?!.*\d{8})")


def commit_batches(files: list[Path], batch_bytes: int) -> list[list[Path]]:
    """Files in commit batches of about `batch_bytes`, ordered by the date in their name."""

    def date_key(f: Path) -> tuple[str, str]:
        m = _DATE_IN_NAME.search(f.name)
        return (m.group(1) if m else "", str(f))

    batches, cur, size = [], [], 0
    for f in sorted(files, key=date_key):
        s = file_size(f)
        if cur and size + s > batch_bytes:
            batches.append(cur)
            cur, size = [], 0
        cur.append(f)
        size += s
    if cur:
        batches.append(cur)
    return batches


def file_size(f: Path) -> int:
    try:
        return f.stat().st_size
    except OSError:
        return 0


def staging_tasks(files: list[Path], n_workers: int) -> list[list[str]]:
    """Group files into staging tasks, largest first: at least TASKS_PER_WORKER tasks per worker
    (small files batched up to total / (workers × TASKS_PER_WORKER), at most TASK_BYTES), so a batch
    ends on small tasks and no worker idles long waiting for another's last one."""
    sized = sorted(((file_size(f), str(f)) for f in files), key=lambda t: -t[0])  # stable: equal sizes keep their order
    total = sum(s for s, _ in sized)
    target = max(1, min(TASK_BYTES, total // max(1, n_workers * TASKS_PER_WORKER)))
    tasks, cur, cur_size = [], [], 0
    for s, f in sized:
        if cur and (cur_size + s > target or len(cur) >= 256):
            tasks.append(cur)
            cur, cur_size = [], 0
        cur.append(f)
        cur_size += s
    if cur:
        tasks.append(cur)
    return tasks


@dataclass
class Stager:
    """Where the staging tasks run: a process pool, a Dask cluster (`client`), or this process."""

    n_workers: int
    pool: ProcessPoolExecutor | None = None
    client: object = None
    remote_ctx: object = None  # the context scattered to the cluster's workers, without the key

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def start_workers(ctx: StageContext, lock_fd: int, files: list[Path], workers: int | None, client) -> Stager:
    """The stager of an ingest: at most one worker per file; the pool's workers fork from this process."""
    _W["main_pid"] = os.getpid()
    if client is not None:
        from etl.cluster import n_threads

        n_workers = max(1, min(n_threads(client), len(files)))
        # Sent once to every worker, without the key: it can be large (every known SHA-256).
        remote_ctx = client.scatter(dataclasses.replace(ctx, key=b""), broadcast=True, hash=False)
        init_worker(ctx, lock_fd)
        return Stager(n_workers, client=client, remote_ctx=remote_ctx)
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
    if files:
        from etl._kernels import warm_up

        warm_up()  # compiled (or loaded from numba's cache) once, before the workers fork
    if n_workers > 1 and len(files) > 1:
        # A worker that dies (killed, out of memory) breaks the pool: the ingest then fails
        # (BrokenProcessPool) before that batch's commit, instead of waiting forever for its task.
        pool = ProcessPoolExecutor(
            n_workers, mp_context=mp.get_context("fork"), initializer=init_worker, initargs=(ctx, lock_fd)
        )
        return Stager(n_workers, pool=pool)
    init_worker(ctx, lock_fd)
    return Stager(n_workers)


def stage_batch(
    stager: Stager, staging: Path, tasks: list[list[str]], name: str, fingerprint: str, on_result
) -> list[dict]:
    """Stage a batch's tasks into `staging`; `on_result(results of a task)` as each task ends (any order).

    name: prefix of the Dask task keys (unique per batch of a run)."""
    results: list[dict] = []

    def take(r: list[dict]) -> None:
        on_result(r)
        results.extend(r)

    if stager.client is not None:
        from distributed import as_completed as dask_completed

        futures = [
            stager.client.submit(
                stage_on_worker,
                str(staging.absolute()),
                [(p, str(Path(p).absolute())) for p in t],
                stager.remote_ctx,
                fingerprint,
                key=f"{name}-{i}",
                pure=False,
                retries=2,
            )
            for i, t in enumerate(tasks)
        ]
        for fut in dask_completed(futures):  # results fetched here, one at a time
            take(fut.result())
        del futures
    elif stager.pool is None:
        for t in tasks:
            take(stage_task((str(staging), t)))
    else:
        for fut in as_completed([stager.pool.submit(stage_task, (str(staging), t)) for t in tasks]):
            take(fut.result())
    return results
