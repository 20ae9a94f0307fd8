"""The ingest's compiled kernels equal what they replace: pyproj's EPSG:6677, and the calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from config.settings import LONLAT_CRS, METRIC_CRS
from etl._kernels import digits_to_seconds, to_epsg6677
from etl.spec import STYLE_1_2
from etl.validate import _parse_number, _parse_time


def test_projection_equals_pyproj_over_japan():
    rng = np.random.default_rng(3)
    lon = np.r_[120 + rng.random(200_000) * 30, 139.627, 122.93, 153.98]
    lat = np.r_[20 + rng.random(200_000) * 30, 35.521, 24.45, 45.52]
    want_x, want_y = Transformer.from_crs(LONLAT_CRS, METRIC_CRS, always_xy=True).transform(lon, lat)
    x, y = to_epsg6677(lon, lat)
    assert np.abs(x - want_x).max() < 1e-6 and np.abs(y - want_y).max() < 1e-6  # metres


def _reference(v: int, date_only: bool):
    s = str(v)
    try:
        if date_only:
            if not 10**7 <= v < 10**9:
                return None
            d = dt.datetime.strptime(s, "%Y%m%d")
        elif 10**11 <= v < 10**12:
            d = dt.datetime.strptime(s, "%Y%m%d%H%M")
        elif 10**13 <= v < 10**15:
            d = dt.datetime.strptime(s, "%Y%m%d%H%M%S")
        else:
            return None
    except ValueError:
        return None
    if not 1900 <= d.year <= 2200 or len(s) not in (8, 12, 14):
        return None
    return int((d - dt.datetime(1970, 1, 1)).total_seconds())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(19000101, 22001231),
            st.integers(190001010000, 220012312359),
            st.integers(19000101000000, 22001231235959),
            st.integers(-(10**15), 10**16),
            st.sampled_from(
                [20000229, 19000229, 20170931, 201702290000, 20171305080000, 20170905240000, 20170905086000]
            ),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_calendar_kernel_equals_the_reference(values):
    v = np.array(values, np.int64)
    for date_only in (True, False):
        secs, valid = digits_to_seconds(v, np.ones(len(v), np.bool_), date_only)
        for x, s, ok in zip(values, secs, valid, strict=True):
            ref = _reference(x, date_only)
            assert (ref is not None) == bool(ok), (x, date_only)
            if ok:
                assert s == ref


# Tokens of every kind a delivered field may hold; a value's verdict must not depend on its neighbours.
TOKEN = st.text(alphabet="0123456789+-.eExXnaifNIF \t", min_size=0, max_size=16)


@settings(max_examples=400, deadline=None)
@given(TOKEN)
def test_number_verdict_does_not_depend_on_the_column(token):
    for col in (STYLE_1_2.by_name("speed_kmh"), STYLE_1_2.by_name("vehicle_type"), STYLE_1_2.by_name("tag_no")):
        alone, bad_alone = _parse_number(pa.array([token, "1", "2"]), col)
        mixed, bad_mixed = _parse_number(pa.array([token, "1", "zz"]), col)
        assert alone[0].as_py() == mixed[0].as_py() or (alone[0].as_py() != alone[0].as_py()), (token, col.name)
        assert bad_alone[0].as_py() == bad_mixed[0].as_py(), (token, col.name)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        TOKEN, st.integers(0, 10**16).map(str), st.integers(19000101000000, 22001231235959).map(lambda v: f" {v}")
    )
)
def test_time_verdict_does_not_depend_on_the_column(token):
    for col in (STYLE_1_2.by_name("gps_time"), STYLE_1_2.by_name("operation_date")):
        alone, bad_alone = _parse_time(pa.array([token, "20170905080000"]), col)
        mixed, bad_mixed = _parse_time(pa.array([token, "zz"]), col)
        assert alone[0].as_py() == mixed[0].as_py(), (token, col.name)
        assert bad_alone[0].as_py() == bad_mixed[0].as_py(), (token, col.name)


def test_repeated_keys_equals_pandas_duplicated_first():
    """The commit's duplicate check: True where a key occurred before, exactly as pandas'
    duplicated(keep="first"), for random keys with repeats, keys alike in their low bits, extremes."""
    import pandas as pd

    from etl._kernels import repeated_keys

    rng = np.random.default_rng(5)
    cases = [
        np.zeros(0, np.int64),
        np.array([7], np.int64),
        np.array([0, -1, 0, 2**62, -(2**63), -(2**63), 2**63 - 1, 0, 2**63 - 1]),
    ]
    k = rng.integers(-(2**63), 2**63 - 1, 50_000, dtype=np.int64)
    k[rng.integers(0, 50_000, 5_000)] = k[rng.integers(0, 50_000, 5_000)]
    cases.append(k)
    low = np.arange(0, 40_000 * 2**20, 2**20, dtype=np.int64)  # every key ends in 20 zero bits
    cases.append(np.r_[low, low[::-3], -low[:100]])
    for keys in cases:
        keys = np.asarray(keys, dtype=np.int64)
        assert (repeated_keys(keys) == pd.Series(keys).duplicated(keep="first").to_numpy()).all()
