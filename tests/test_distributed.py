"""Partition-parallel aggregation (months, then piece ranges) on a Dask LocalCluster equals the single-process path
and `analyze` bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.distributed import aggregate_months, aggregate_months_serial
from analysis.figures import analyze
from analysis.filters import PointFilter
from analysis.matchstage import match_stage
from analysis.network import district_network
from config.districts import Period, load_district
from etl.ingest import ingest_paths
from etl.synthetic import generate_delivery
from geo.aggregate import figures

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def matched(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale_out")
    district = load_district("okurayama")
    generate_delivery(root / "d", districts=[district], scale=0.2)
    ingest_paths([root / "d"], root / "wh")
    network = district_network(district)
    match_stage(root / "wh", network)
    # A period over three stored months (September to November 2017), cut mid-month; August, the month
    # the generator delivers before the before period, is read too (operation dates of the
    # day before the period's first day).
    return root / "wh", network, Period("span", district.period("before").start, district.period("trial").end)


def _same_cube(a, b):
    for part in ("cells", "hist", "vehicles"):
        pa_, pb = getattr(a, part), getattr(b, part)
        assert set(pa_) == set(pb)
        for k in pa_:  # every array, per-cell distinct vehicles included, with its dtype
            assert pa_[k].dtype == pb[k].dtype, f"{part}.{k}"
            np.testing.assert_array_equal(pa_[k], pb[k], err_msg=f"{part}.{k}")


@pytest.mark.parametrize("n_shards", [None, 1, 7])
def test_dask_local_cluster_equals_single_process_and_analyze(matched, n_shards):
    wh, network, period = matched
    flt = PointFilter(days="weekday")
    serial = aggregate_months_serial(wh, network, period, flt)
    assert len(serial.folders) == 4 and serial.n_points > 1000
    dask = aggregate_months(wh, network, period, flt, n_workers=2, n_shards=n_shards)
    assert dask.n_workers == 2 and dask.folders == serial.folders and dask.n_points == serial.n_points
    _same_cube(dask.cube, serial.cube)
    # Every figure equals the single-process analysis of the same period and filter, bit for bit.
    piece_road, n_roads = network.piece_road, len(network.roads)
    direct = analyze(wh, network, {"span": period}, point_filter=flt, store=False).road_stats
    direct = direct.set_index("road_id").loc[network.road_ids]  # in network order, as the cube's groups
    got = figures(dask.cube, piece_road, n_roads)
    for k in ("n_points", "n_vehicles", "mean_kmh", "p85_kmh", "share_at_or_over_limit"):
        np.testing.assert_array_equal(got[k], direct[k].to_numpy(dtype=float), err_msg=k)
