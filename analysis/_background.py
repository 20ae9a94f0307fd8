"""Work done in one background thread while the caller goes on.

A pass's write and reduction behind the match of the next (analysis.matchstage), a range's store
in DuckDB behind the merge of the next (analysis.figures); docs/core.md, "Two threads"."""

from __future__ import annotations

import concurrent.futures
from concurrent.futures import ThreadPoolExecutor

import numba


class OneBehind:
    """Runs jobs in order in one background thread, at most one at a time, while the caller goes on:
    the match stage reads and matches a pass while the pass before is written and reduced (Arrow,
    Parquet and the compiled kernels release the GIL). `submit` first waits for the job before
    (raising its error), so no more than two passes (ranges) are in memory. Off (each job run at once, in
    the caller's thread) when `enabled` is false: one thread, as on a Dask worker or in the steady
    benchmark, where the overlap would only add a pass to memory."""

    def __init__(self, enabled: bool):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="etc2calm-behind") if enabled else None
        self.pending = None

    def __enter__(self):
        return self

    def submit(self, fn, *args) -> None:
        self.wait()
        if self.pool is None:
            fn(*args)
        else:
            self.pending = self.pool.submit(fn, *args)

    def wait(self) -> None:
        """Wait for the job in flight (raising its error)."""
        if self.pending is not None:
            try:
                self.pending.result()
            finally:
                self.pending = None

    def __exit__(self, exc_type, *exc) -> None:
        # The job in flight always finishes before the caller goes on (the month writer's clean-up
        # must not remove a folder being written: the shutdown waits for it even when the caller
        # was interrupted while waiting); its own error is raised unless one already is.
        try:
            if exc_type is None:
                self.wait()
            elif self.pending is not None:
                concurrent.futures.wait([self.pending])
                self.pending = None
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)


def overlap_enabled() -> bool:
    """Whether to overlap (`OneBehind`): when the compiled kernels may use more than one thread
    (numba's thread count, which NUMBA_NUM_THREADS sets: 1 on Dask workers and in the steady
    benchmark, where a second thread would only compete for the one core)."""
    return numba.get_num_threads() > 1
