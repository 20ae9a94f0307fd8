"""The overlap of work in a background thread (analysis._background.OneBehind): the match stage's
passes and the store of a period's ranges. Order, memory (two jobs at most), errors, and the same
bytes with the overlap as without it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

import analysis.matchstage as ms
from analysis._background import OneBehind
from tests.conftest import network
from tests.test_matchstage_passes import _same, _write_store


def test_jobs_run_in_order_one_at_a_time_and_the_caller_waits_for_the_one_before():
    events, running = [], []

    def job(k):
        running.append(k)
        assert len(running) == 1, f"job {k} started while {running[0]} ran"
        time.sleep(0.01 * (k % 3))  # uneven lengths: a later job would overtake an earlier one
        events.append(("done", k, threading.current_thread().name))
        running.remove(k)

    with OneBehind(True) as behind:
        for k in range(8):
            behind.submit(job, k)
            # submit returns once the job before is done: at most this one is still running (or,
            # being short, already done)
            done = [e[1] for e in events]
            assert done in (list(range(k)), list(range(k + 1))), done
    assert [e[1] for e in events] == list(range(8))
    assert {e[2] for e in events} != {threading.current_thread().name}  # they ran in the background


def test_off_runs_each_job_at_once_in_the_callers_thread():
    seen = []
    with OneBehind(False) as behind:
        behind.submit(lambda: seen.append(threading.current_thread().name))
        assert seen == [threading.current_thread().name]


def test_a_failed_job_is_raised_to_the_caller_at_the_next_submit_or_at_the_end():
    def fail():
        raise OSError(28, "No space left on device")

    later = []
    with pytest.raises(OSError, match="No space left"), OneBehind(True) as behind:
        behind.submit(fail)
        behind.submit(later.append, 1)  # raises the failure of the job before; this one never runs
    assert later == []
    with pytest.raises(OSError, match="No space left"), OneBehind(True) as behind:
        behind.submit(fail)  # the last job: raised when the block ends


def test_the_callers_own_error_wins_but_the_job_in_flight_finishes_first():
    """An interrupt (or any error) in the caller: the job already running is not cut off (the month
    writer's clean-up must not remove a file being written), and the caller's error is raised."""
    done = []

    def slow():
        time.sleep(0.2)
        done.append(True)

    with pytest.raises(KeyboardInterrupt), OneBehind(True) as behind:
        behind.submit(slow)
        raise KeyboardInterrupt
    assert done == [True]


def _month(tmp_path, tiny_network, monkeypatch, overlap: bool, name: str):
    files = _write_store(tmp_path / "store", np.random.default_rng(5))
    monkeypatch.setattr(ms, "BUCKET_ROWS", 100)  # several passes
    monkeypatch.setattr(ms, "overlap_enabled", lambda: overlap)
    seen = []

    def on_points(pts):
        seen.append((pts, threading.current_thread().name))

    folder = tmp_path / "out" / name
    counts = ms._match_month_and_write([str(f) for f in files], network(tiny_network), [], str(folder), on_points)
    return folder, counts, seen


def test_the_overlapped_match_stage_writes_the_same_bytes_and_shows_the_same_passes(
    tmp_path, tiny_network, monkeypatch
):
    a, counts_a, seen_a = _month(tmp_path, tiny_network, monkeypatch, True, "on")
    b, counts_b, seen_b = _month(tmp_path, tiny_network, monkeypatch, False, "off")
    assert len(seen_a) >= 3 and len(seen_a) == len(seen_b)
    assert all(_same(x, y) for (x, _), (y, _) in zip(seen_a, seen_b, strict=True))  # same passes, same order
    assert {t for _, t in seen_a} != {threading.current_thread().name}  # reduced in the background
    assert {t for _, t in seen_b} == {threading.current_thread().name}
    for name in ("points.parquet", "trips.parquet", "events.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert pq.ParquetFile(a / "points.parquet").metadata.num_row_groups == len(seen_a)  # a row group per pass
    drop = ("seconds", "timings")
    assert {k: v for k, v in counts_a.items() if k not in drop} == {k: v for k, v in counts_b.items() if k not in drop}


def test_a_pass_whose_write_fails_in_the_background_leaves_nothing(tmp_path, tiny_network, monkeypatch):
    """The disk fills while the second pass is written behind the match of the third: the error
    reaches the caller, no pass after it is written, and the month leaves no folder."""
    write, calls = ms._MonthWriter.write, []

    def write_then_fill(self, points, trips):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        write(self, points, trips)

    monkeypatch.setattr(ms._MonthWriter, "write", write_then_fill)
    with pytest.raises(OSError, match="No space left"):
        _month(tmp_path, tiny_network, monkeypatch, True, "m")
    assert len(calls) == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


def test_parallel_kernels_called_from_two_threads_give_what_one_thread_gives(tiny_network):
    """match_points (a parallel kernel) from two threads at once, as the overlapped match stage may:
    serialised by geo.kernels.PARALLEL_KERNEL_LOCK, each gets its own answer."""
    from geo.matching import match_points

    net = network(tiny_network)
    rng = np.random.default_rng(0)
    minx, miny, maxx, maxy = net.bounds
    inputs = [(rng.uniform(minx, maxx, 200_000), rng.uniform(miny, maxy, 200_000)) for _ in range(2)]
    alone = [match_points(x, y, net.index).seg for x, y in inputs]
    together = [None, None]

    def run(i):
        for _ in range(3):
            together[i] = match_points(*inputs[i], net.index).seg

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(a, b) for a, b in zip(alone, together, strict=True))
    assert not np.array_equal(alone[0], alone[1])
