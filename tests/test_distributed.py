"""Partition-parallel aggregation on a Dask LocalCluster equals the single-process path exactly."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import shapely

from geo.aggregate import aggregate_points, figures, merge_cubes
from geo.distributed import aggregate_partitions, aggregate_partitions_serial, list_partitions, warm_up
from geo.matching import build_segment_index, match_points
from geo.pointsource import concat_batches, point_batches

GRID, SPACING = 12, 60.0
ORIGIN = (-62_000.0, -42_000.0)
MONTHS, MESHES, PER_PARTITION = (1, 2), (533900, 533901, 533902), 25_000
START, END = dt.date(2024, 1, 1), dt.date(2024, 2, 29)


def network():
    span = np.arange(GRID) * SPACING
    geoms = []
    for k in range(GRID):
        c = k * SPACING
        geoms.append(shapely.linestrings(np.c_[ORIGIN[0] + span, np.full(GRID, ORIGIN[1] + c)]))
        geoms.append(shapely.linestrings(np.c_[np.full(GRID, ORIGIN[0] + c), ORIGIN[1] + span]))
    oneway = np.zeros(len(geoms), dtype=np.int8)
    oneway[::5] = 1
    return np.array(geoms, dtype=object), oneway


def write_partition(root, month, mesh, rng, n, fractional=False):
    """Points along streets as the warehouse stores them (hive year=/month=/mesh=, stored heading and vehicle_id)."""
    extent = (GRID - 1) * SPACING
    street = rng.integers(0, GRID, n)
    vertical = rng.random(n) < 0.5
    along = rng.uniform(-30, extent + 30, n)  # some points off the grid's ends (unmatched)
    x = ORIGIN[0] + np.where(vertical, street * SPACING, along) + rng.normal(0, 4, n)
    y = ORIGIN[1] + np.where(vertical, along, street * SPACING) + rng.normal(0, 4, n)
    heading = (np.where(vertical, 0.0, 90.0) + rng.choice([0.0, 180.0], n) + rng.normal(0, 10, n)) % 360
    heading[rng.random(n) < 0.1] = np.nan
    t0 = np.datetime64(f"2024-{month:02d}-01T00:00", "us").astype(np.int64)
    gps = t0 + rng.integers(0, 29 * 86_400, n) * 1_000_000  # spills into the next month: the time filter matters
    table = pa.table({
        "vehicle_id": rng.integers(0, 3_000, n).astype(np.int64),  # vehicles recur across partitions
        "vehicle_type": rng.integers(1, 5, n).astype(np.int32),
        "gps_time": pa.array(gps, pa.timestamp("us")),
        "x_m": x, "y_m": y,
        "speed_kmh": np.clip(rng.normal(32, 9, n) if fractional else np.round(rng.normal(32, 9, n)), 0, 120),
        "heading_deg": pa.array(heading, from_pandas=True),
        "dt_prev_s": pa.array(rng.uniform(5, 150, n).astype(np.float32)),
    })  # fmt: skip
    d = root / "year=2024" / f"month={month:02d}" / f"mesh={mesh}"
    d.mkdir(parents=True, exist_ok=True)
    half = n // 2  # two files per partition
    pq.write_table(table.slice(0, half), d / "part-0.parquet", row_group_size=5_000)
    pq.write_table(table.slice(half), d / "part-1.parquet", row_group_size=5_000)
    return table


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale_out") / "probe_points"
    rng = np.random.default_rng(7)
    for month in (*MONTHS, 4):  # April lies outside START..END: pruned
        for mesh in MESHES:
            write_partition(root, month, mesh, rng, PER_PARTITION)
    frac = root.parent / "fractional"
    for mesh in MESHES:
        write_partition(frac, 1, mesh, rng, PER_PARTITION // 5, fractional=True)
    geoms, oneway = network()
    index = build_segment_index(geoms, radius_m=20, oneway=oneway)
    limits = np.where(np.arange(len(geoms)) % 3 == 0, 40.0, 30.0)
    piece_road = index.links.piece_road.astype(np.int64)
    minx, miny = ORIGIN[0] - 5, ORIGIN[1] - 5
    bounds = (minx, miny, minx + (GRID - 1) * SPACING + 10, miny + (GRID - 1) * SPACING + 10)  # cuts a few points
    return root, index, limits[piece_road], piece_road, len(geoms), bounds


def assert_cubes_equal(a, b):
    for part in ("cells", "hist", "vehicles"):
        da, db = getattr(a, part), getattr(b, part)
        keys = sorted(set(da) & set(db))
        assert "n_points" in keys or part == "vehicles"
        for k in keys:
            assert da[k].dtype == db[k].dtype, (part, k)
            np.testing.assert_array_equal(da[k], db[k], err_msg=f"{part}.{k}")


def assert_figures_equal(fa, fb):
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


def test_partitions_listed_and_pruned(store):
    root, *_ = store
    rels = [rel for rel, _ in list_partitions(root, START, END)]
    assert rels == [f"year=2024/month={m:02d}/mesh={k}" for m in MONTHS for k in MESHES]
    assert [r for r, _ in list_partitions(root.as_uri(), START, END)] == rels
    assert len(list_partitions(root)) == 9


def test_dask_local_cluster_equals_single_process(store):
    from distributed import Client, LocalCluster

    root, index, piece_limit, piece_road, n_roads, bounds = store
    serial = aggregate_partitions_serial(root, index, piece_limit, START, END, bounds)
    assert len(serial.partitions) == len(MONTHS) * len(MESHES)
    assert serial.n_matched > 0.8 * serial.n_points > 0

    # The analysis' way: all points of the period in one batch, one aggregate_points call.
    b = concat_batches(list(point_batches(root, START, END, bounds)))
    m = match_points(b.x_m, b.y_m, index, b.heading_deg)
    one = merge_cubes([aggregate_points(m.seg, m.pos, m.direction, index, b.gps_us, b.vehicle_type, b.speed_kmh,
                                        b.vehicle_id, piece_limit)])  # fmt: skip
    assert len(b) == serial.n_points
    assert_cubes_equal(serial.cube, one)
    ref = figures(serial.cube, piece_road, n_roads)
    assert_figures_equal(ref, figures(one, piece_road, n_roads))
    assert ref["n_vehicles"].sum() > 0

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        with Client(cluster) as client:
            assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2
            client.run(warm_up)
            # Merged by ranges of pieces on the workers; the store given as a file:// URL.
            shard = aggregate_partitions(root.as_uri(), index, piece_limit, START, END, bounds, client=client, n_shards=5)
            gathered = aggregate_partitions(root, index, piece_limit, START, END, bounds, client=client, reduce="gather")
            # An existing cluster, reached by its scheduler's address.
            by_address = aggregate_partitions(root, index, piece_limit, START, END, bounds,
                                              scheduler_address=cluster.scheduler_address)  # fmt: skip
            # Fractional speeds: float sums added in the same order, so bit-identical too.
            frac = root.parent / "fractional"
            frac_serial = aggregate_partitions_serial(frac, index, piece_limit)
            assert not np.all(frac_serial.cube.hist["n_points"] == 0)
            for how in ("shard", "gather"):
                r = aggregate_partitions(frac, index, piece_limit, client=client, reduce=how)
                assert_cubes_equal(r.cube, frac_serial.cube)
            # Both workers did partitions.
            done = client.run(lambda dask_worker: len(dask_worker.data) + dask_worker.state.executed_count)
            assert all(v > 0 for v in done.values())
    finally:
        cluster.close(timeout=30)
    assert cluster.status.name == "closed"

    # No client nor address: a LocalCluster of its own, started and closed inside the call.
    own = aggregate_partitions(root.parent / "fractional", index, piece_limit, n_workers=2)
    assert own.n_workers == 2
    assert_cubes_equal(own.cube, frac_serial.cube)

    for res in (shard, gathered, by_address):
        assert res.n_workers == 2
        assert res.partitions == serial.partitions
        assert (res.n_points, res.n_matched) == (serial.n_points, serial.n_matched)
        assert_cubes_equal(res.cube, serial.cube)
        f = figures(res.cube, piece_road, n_roads)
        assert_figures_equal(f, ref)
        groups = (np.arange(n_roads) % 2)[piece_road]  # pooled roads: distinct vehicles do not add up
        assert_figures_equal(figures(res.cube, groups, 2), figures(serial.cube, groups, 2))


def test_fsspec_url_staged_read_equals_local(store):
    """A non-local fsspec store (here memory://) is listed by fsspec and each partition staged locally."""
    import fsspec

    root, index, piece_limit, piece_road, n_roads, bounds = store
    fs = fsspec.filesystem("memory")
    base = "/etc2calm-test/probe_points"
    for f in root.rglob("*.parquet"):
        fs.pipe(f"{base}/{f.relative_to(root).as_posix()}", f.read_bytes())
    try:
        url = f"memory://{base}"
        assert [r for r, _ in list_partitions(url, START, END)] == [r for r, _ in list_partitions(root, START, END)]
        remote = aggregate_partitions_serial(url, index, piece_limit, START, END, bounds)
        local = aggregate_partitions_serial(root, index, piece_limit, START, END, bounds)
        assert remote.n_points == local.n_points
        assert_cubes_equal(remote.cube, local.cube)
    finally:
        fs.rm(base, recursive=True)
