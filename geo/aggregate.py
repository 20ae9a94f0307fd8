"""Speed-exceedance aggregation of matched points: a mergeable cube of speed histograms.

The cube (per piece × direction × hour of day × day type × vehicle class, for one partition or
period) holds point counts, 1 km/h speed histograms, sums of speeds, counts at or over the limit
and over limit + 10, and distinct vehicles. Histograms, counts and sums add up across any union
of cells, pieces, periods or partitions; mean, 85th percentile and shares are recomputed from
the merged arrays (`figures`). Distinct vehicles do not add: the cube keeps the distinct
(piece, vehicle_id) pairs, so distinct vehicles of any union of pieces and partitions is exact
(`distinct_vehicles`); the per-cell `n_vehicles` is exact within one cube (not after merging cubes).

The 1 km/h speed bin is defined once here (`speed_bin_kmh`), the day type once in geo.calendar
(`day_type_of`, `holiday_table`), and the kernels use the same bin and holiday table, so the match
stage, the filters, the cube and the bootstrap agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa

from config.settings import P85, SPEED_CLASS_OFFSET_KMH, SPEED_CLASS_WIDTH_KMH, SPEED_RECORDING

# day_type_of and hour_of are re-exported for analysis/matchstage.py and analysis/points.py, which
# still import them from here: import them from geo.calendar.
from geo.calendar import day_type_of, holiday_table, hour_of  # noqa: F401
from geo.kernels import (
    N_BIN,
    N_CLASS,
    N_DAYTYPE,
    N_HOUR,
    PARALLEL_KERNEL_LOCK,
    _group_by_piece,
    aggregate_kernel,
    compact_cell_vehicles,
    compact_rows,
    distinct_ids_by_span,
    distinct_pairs_by_group,
    distinct_per_group,
    piece_blocks,
    regroup_parts,
    ro,
)

# Histogram bin: 1 km/h (geo.kernels.N_BIN bins); a point counts in the bin of its speed
# rounded to the nearest km/h (bin value = that whole km/h, clipped to 0..255). ETC2.0 speeds are
# whole km/h, so each bin holds one recorded value, which stands for a 1 km/h class (rounded or
# truncated speeds: config.settings.SPEED_RECORDING); percentiles interpolate within that class
# (`quantile_from_hist`, `grouped_quantile`: the grouped-data percentile of spot-speed studies).


def speed_bin_kmh(speed_kmh) -> np.ndarray:
    """Whole-km/h bin of each speed, as the cube's kernel bins it (nearest km/h, clipped to 0..255)."""
    return np.clip(np.floor(np.asarray(speed_kmh, dtype=np.float64) + 0.5), 0, N_BIN - 1)


def decode_cell(cell: np.ndarray) -> dict[str, np.ndarray]:
    """Cell number (key // N_BIN) → direction (-1/0/+1), hour (0-23), day_type (0 weekday, 1 weekend/holiday),
    vehicle_class."""
    cell = cell.astype(np.int64)
    vc = cell % N_CLASS
    rest = cell // N_CLASS
    dtp = rest % N_DAYTYPE
    rest //= N_DAYTYPE
    hour = rest % N_HOUR
    direction = rest // N_HOUR - 1
    return {
        "direction": direction.astype(np.int8),
        "hour": hour.astype(np.int8),
        "day_type": dtp.astype(np.int8),
        "vehicle_class": vc.astype(np.int8),
    }


@dataclass
class Cube:
    """Aggregates of one partition / period (or a merge of several). All columns numpy arrays.

    cells: piece, cell (encoded direction/hour/day type/class), n_points, sum_speed_kmh,
    n_at_or_over_limit, n_at_or_over_limit_plus_10, n_vehicles.
    hist: piece, cell, speed_kmh (whole km/h bin), n_points.
    vehicles: piece, vehicle_id — distinct pairs.
    cell_vehicles: the distinct vehicle ids of each cell, sorted, cell after cell in the order of
    `cells` (n_vehicles of them per cell), or None (kept on request: cube_of_groups(...,
    cell_vehicles=True)).
    """

    cells: dict[str, np.ndarray]
    hist: dict[str, np.ndarray]
    vehicles: dict[str, np.ndarray]
    cell_vehicles: np.ndarray | None = None

    def cells_table(self, encoded: bool = False) -> pa.Table:
        """One row per cell; `encoded`: keep the int32 `cell` column (see decode_cell) instead of
        direction / hour / day_type / vehicle_class — the compact form written per partition."""
        if encoded:
            return pa.table(
                {
                    k: (
                        v.astype(np.int32)
                        if k in ("n_at_or_over_limit", "n_at_or_over_limit_plus_10") or k in ("n_points", "n_vehicles")
                        else v
                    )
                    for k, v in self.cells.items()
                }
            )
        t = {"piece": self.cells["piece"], **decode_cell(self.cells["cell"])}
        t.update({k: v for k, v in self.cells.items() if k not in ("piece", "cell")})
        return pa.table(t)

    def hist_table(self, encoded: bool = False) -> pa.Table:
        if encoded:
            h = self.hist
            return pa.table(
                {
                    "piece": h["piece"],
                    "cell": h["cell"],
                    "speed_kmh": h["speed_kmh"],
                    "n_points": h["n_points"].astype(np.int32),
                }
            )
        t = {"piece": self.hist["piece"], **decode_cell(self.hist["cell"])}
        t.update({"speed_kmh": self.hist["speed_kmh"], "n_points": self.hist["n_points"]})
        return pa.table(t)

    def vehicles_table(self) -> pa.Table:
        return pa.table(self.vehicles)


@dataclass
class GroupedPoints:
    """Matched points grouped by piece, as the cube's kernel reads them (`group_points`): the rows of
    piece p are offsets[p]..offsets[p + 1] (in input order), each with its key (cell key << 32 |
    position in the piece), speed (km/h) and vehicle id. Pieces are numbered from the first of
    the range they cover (all of the network's, from `group_points`)."""

    offsets: np.ndarray
    key: np.ndarray
    speed_kmh: np.ndarray
    vehicle_id: np.ndarray

    def range_rows(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The rows of pieces lo..hi-1, for `regroup`: rows per piece (int32), cell key (int32,
        without the position), speed, vehicle id."""
        a, b = self.offsets[lo], self.offsets[hi]
        return (
            np.diff(self.offsets[lo : hi + 1]).astype(np.int32),
            (self.key[a:b] >> 32).astype(np.int32),
            self.speed_kmh[a:b],
            self.vehicle_id[a:b],
        )


def group_points(  # noqa: PLR0913 - one array per matched-point column, as the compiled kernel takes them
    seg, pos, direction, index, gps_us, vehicle_type, speed_kmh, vehicle_id, keep=None
) -> GroupedPoints:
    """Matched points (seg/pos/direction from `match_points`; index: the SegmentGridIndex) grouped by
    piece with their cell keys (compiled, one pass and a counting sort); points off the network or
    without a speed are left out, and those whose `keep` (bool per point; None: all) is False: the
    groups of the kept rows, without copying them out first."""
    if keep is not None and len(keep) != len(seg):
        raise ValueError(f"keep has {len(keep)} rows for {len(seg)} points")
    L = index.links
    day0, hol = holiday_table()
    offsets, key, speed, vid = _group_by_piece(
        ro(np.asarray(seg, dtype=np.int32)),
        ro(np.asarray(pos, dtype=np.float64)),
        ro(np.asarray(direction, dtype=np.int8)),
        ro(L.seg_link),
        ro(L.link_length_m),
        ro(L.link_first_piece),
        float(L.pitch_m or 0.0),
        ro(np.asarray(gps_us, dtype=np.int64)),
        ro(np.asarray(vehicle_type, dtype=np.int32)),
        ro(np.asarray(speed_kmh, dtype=np.float64)),
        ro(np.asarray(vehicle_id, dtype=np.int64)),
        int(day0),
        ro(hol),
        int(L.n_pieces),
        ro(np.zeros(0, np.bool_) if keep is None else np.asarray(keep, dtype=np.bool_)),
    )
    return GroupedPoints(offsets, key, speed, vid)


def regroup(parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> GroupedPoints:
    """The points of consecutive parts in one range of pieces (`GroupedPoints.range_rows` of each),
    grouped as `group_points` groups all of them at once: per piece, part after part."""
    if not parts:
        raise ValueError("regroup needs at least one part")
    counts = np.stack([np.asarray(c, dtype=np.int64) for c, _, _, _ in parts])
    cat = lambda i, dtype: ro(np.concatenate([np.asarray(p[i], dtype=dtype) for p in parts]))  # noqa: E731
    return GroupedPoints(*regroup_parts(ro(counts), cat(1, np.int32), cat(2, np.float64), cat(3, np.int64)))


def cube_of_groups(
    groups: GroupedPoints, piece_limit_kmh, first_piece: int = 0, *, cell_vehicles=False, piece_road=None
) -> Cube:
    """Cube of grouped points (`group_points`, `regroup`) whose pieces are first_piece.. (piece_limit_kmh:
    the limit of each of those pieces, km/h).

    Compiled (geo/kernels.py): each piece's rows sorted by cell key and reduced to histogram, cell
    and vehicle rows, joined in order (piece, then cell and speed; vehicle pairs by piece then id).
    cell_vehicles: also keep each cell's distinct vehicles. piece_road (the road of each of those
    pieces, each road's pieces consecutive): the vehicle pairs are those of whole roads, each road
    standing as its first piece — what `vehicles_by_road` makes of the pieces' pairs, without them.
    The groups' keys and vehicle ids are reordered in place (each group is made for one cube)."""
    offsets = groups.offsets
    n_pieces = len(offsets) - 1
    blocks = piece_blocks(offsets, n_pieces, numba.get_num_threads())
    g_vid = groups.vehicle_id  # the kernel writes the pieces' distinct vehicles into it
    with PARALLEL_KERNEL_LOCK:
        counts, block_rows, *rows = aggregate_kernel(
            offsets,
            groups.key,  # sorted in place
            ro(groups.speed_kmh),
            g_vid,
            ro(np.asarray(piece_limit_kmh, dtype=np.float64)),
            n_pieces,
            blocks,
            piece_road is None,
        )
    *rows, t_vid = rows
    hp, hc, hs, hn, cp, cc, cn, cs, cg, cg10, cv, vp, vi = compact_rows(
        offsets, blocks, counts, block_rows, *rows, g_vid
    )
    per_cell = compact_cell_vehicles(offsets, blocks, block_rows, t_vid) if cell_vehicles else None
    if piece_road is not None:  # each road's rows are consecutive: its distinct vehicles at once
        road = np.asarray(piece_road)
        if np.any(road[1:] < road[:-1]):
            raise ValueError("piece_road: each road's pieces must be consecutive")
        first = np.flatnonzero(np.r_[True, road[1:] != road[:-1]])
        span, vi = distinct_ids_by_span(g_vid, ro(offsets[np.r_[first, n_pieces]]))
        vp = first[span].astype(np.int32)
    if first_piece:
        hp, cp, vp = (a + np.int32(first_piece) for a in (hp, cp, vp))
    return Cube(
        cells={
            "piece": cp,
            "cell": cc,
            "n_points": cn,
            "sum_speed_kmh": cs,
            "n_at_or_over_limit": cg,
            "n_at_or_over_limit_plus_10": cg10,
            "n_vehicles": cv,
        },
        hist={"piece": hp, "cell": hc, "speed_kmh": hs, "n_points": hn},
        vehicles={"piece": vp, "vehicle_id": vi},
        cell_vehicles=per_cell,
    )


def aggregate_points(  # noqa: PLR0913 - one array per matched-point column, as the compiled kernel takes them
    seg, pos, direction, index, gps_us, vehicle_type, speed_kmh, vehicle_id, piece_limit_kmh, *, cell_vehicles=False
) -> Cube:
    """Cube of matched points (seg/pos/direction from `match_points`; index: the SegmentGridIndex):
    `group_points`, then `cube_of_groups`. cell_vehicles: also keep each cell's distinct vehicles."""
    groups = group_points(seg, pos, direction, index, gps_us, vehicle_type, speed_kmh, vehicle_id)
    return cube_of_groups(groups, piece_limit_kmh, cell_vehicles=cell_vehicles)


# Per-partition cube files: encoded tables (int32 cell code, int32 counts), already ordered by
# piece then cell (then speed / vehicle id); lz4 without dictionary pages or statistics, the
# cheapest Parquet to write (about 1.7x the size of zstd, 3x faster to encode).
CUBE_FILES = ("cells.parquet", "hist.parquet", "vehicles.parquet")


def write_cube(cube: Cube, folder) -> None:
    """Write a cube as three Parquet files (CUBE_FILES) in `folder` (created); `read_cube` reads them back."""
    from pathlib import Path

    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    opts = {"compression": "lz4", "use_dictionary": False, "write_statistics": False}
    for name, table in zip(
        CUBE_FILES, (cube.cells_table(encoded=True), cube.hist_table(encoded=True), cube.vehicles_table()), strict=True
    ):
        pq.write_table(table, folder / name, **opts)


def read_cube(folder) -> Cube:
    """A cube written by `write_cube` (counts back to int64)."""
    from pathlib import Path

    import pyarrow.parquet as pq

    folder = Path(folder)
    parts = [
        {k: v.to_numpy() for k, v in zip(t.column_names, t.columns, strict=True)}
        for t in (pq.read_table(folder / name) for name in CUBE_FILES)
    ]
    cells, hist, vehicles = parts
    for k in ("n_points", "n_at_or_over_limit", "n_at_or_over_limit_plus_10", "n_vehicles"):
        cells[k] = cells[k].astype(np.int64)
    hist["n_points"] = hist["n_points"].astype(np.int64)
    return Cube(cells, hist, vehicles)


def _group_sum(keys: list[np.ndarray], values: dict[str, np.ndarray]) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    if len(keys[0]) == 0:
        return keys, values
    order = np.lexsort(keys[::-1])
    ks = [k[order] for k in keys]
    new = np.ones(len(order), dtype=bool)
    new[1:] = np.any([k[1:] != k[:-1] for k in ks], axis=0)
    starts = np.flatnonzero(new)
    return [k[starts] for k in ks], {n: np.add.reduceat(v[order], starts) for n, v in values.items()}


def merge_cubes(cubes: list[Cube]) -> Cube:
    """Union of cubes (partitions, periods): counts, sums and histograms added, vehicle pairs united.

    Per-cell n_vehicles of the result is exact only when a single cube went in (it is dropped
    otherwise: use `distinct_vehicles` for any union of pieces).
    """
    cat = lambda part, name: np.concatenate([getattr(c, part)[name] for c in cubes])  # noqa: E731
    sums = ["n_points", "sum_speed_kmh", "n_at_or_over_limit", "n_at_or_over_limit_plus_10"]
    (cp, cc), cv = _group_sum([cat("cells", "piece"), cat("cells", "cell")], {n: cat("cells", n) for n in sums})
    (hp, hc, hs), hv = _group_sum(
        [cat("hist", "piece"), cat("hist", "cell"), cat("hist", "speed_kmh")], {"n_points": cat("hist", "n_points")}
    )
    vp, vi = cat("vehicles", "piece"), cat("vehicles", "vehicle_id")
    pairs = np.unique(np.stack([vp.astype(np.int64), vi]), axis=1) if len(vp) else np.zeros((2, 0), np.int64)
    cells = {"piece": cp, "cell": cc, **cv}
    if len(cubes) == 1:
        cells["n_vehicles"] = cubes[0].cells["n_vehicles"][
            np.lexsort((cubes[0].cells["cell"], cubes[0].cells["piece"]))
        ]
    return Cube(
        cells,
        {"piece": hp, "cell": hc, "speed_kmh": hs, **hv},
        {"piece": pairs[0].astype(np.int32), "vehicle_id": pairs[1]},
    )


def split_by_piece(cube: Cube, edges: np.ndarray) -> list[Cube]:
    """The cube cut into shards of piece ids [edges[s], edges[s+1]), rows kept in their order (each
    cell's distinct vehicles go with their cell)."""
    parts = {name: getattr(cube, name) for name in ("cells", "hist", "vehicles")}
    if all(_ascending(d["piece"]) for d in parts.values()):
        return _split_sorted_by_piece(cube, edges)
    out = []
    shard = {name: np.searchsorted(edges, d["piece"], side="right") - 1 for name, d in parts.items()}
    per_cell = cube.cell_vehicles
    vehicle_shard = np.repeat(shard["cells"], cube.cells["n_vehicles"]) if per_cell is not None else None
    for s in range(len(edges) - 1):
        sel = {name: shard[name] == s for name in parts}
        tables = ({k: v[sel[name]] for k, v in parts[name].items()} for name in ("cells", "hist", "vehicles"))
        out.append(Cube(*tables, cell_vehicles=None if per_cell is None else per_cell[vehicle_shard == s]))
    return out


def _ascending(a: np.ndarray) -> bool:
    return len(a) < 2 or bool(np.all(a[1:] >= a[:-1]))


def _split_sorted_by_piece(cube: Cube, edges: np.ndarray) -> list[Cube]:
    """`split_by_piece` of a cube whose rows are ordered by piece (as `aggregate_points` and the merges
    leave them): each shard a slice of every column, found by binary search (no pass per shard)."""
    edges = np.asarray(edges)
    at = {
        name: np.searchsorted(getattr(cube, name)["piece"], edges, side="left")
        for name in ("cells", "hist", "vehicles")
    }
    per_cell = cube.cell_vehicles
    if per_cell is not None:
        start = np.concatenate([[0], np.cumsum(cube.cells["n_vehicles"], dtype=np.int64)])[at["cells"]]
    out = []
    for s in range(len(edges) - 1):
        tables = (
            {k: v[at[name][s] : at[name][s + 1]] for k, v in getattr(cube, name).items()}
            for name in ("cells", "hist", "vehicles")
        )
        out.append(Cube(*tables, cell_vehicles=None if per_cell is None else per_cell[start[s] : start[s + 1]]))
    return out


def concat_shards(shards: Sequence[Cube]) -> Cube:
    """Merged shards of disjoint, increasing piece ranges → one cube (what merge_cubes of all gives)."""
    cat = lambda part: {k: np.concatenate([getattr(c, part)[k] for c in shards]) for k in getattr(shards[0], part)}  # noqa: E731
    per_cell = [c.cell_vehicles for c in shards]
    both = all(v is not None for v in per_cell)
    return Cube(cat("cells"), cat("hist"), cat("vehicles"), np.concatenate(per_cell) if both else None)


def vehicles_by_road(cube: Cube, piece_road: np.ndarray) -> Cube:
    """The cube with its distinct (piece, vehicle) pairs reduced to distinct (road, vehicle) pairs,
    each road standing as its first piece: what every figure of a road or of a group of roads needs,
    and far fewer rows. Per-piece distinct vehicles are no longer known (per-cell ones still are)."""
    piece_road = np.asarray(piece_road, dtype=np.int64)
    n_roads = int(piece_road.max()) + 1 if len(piece_road) else 0
    first_piece = np.full(n_roads, -1, dtype=np.int64)
    first_piece[piece_road[::-1]] = np.arange(len(piece_road) - 1, -1, -1)
    road = piece_road[cube.vehicles["piece"]] if len(cube.vehicles["piece"]) else np.zeros(0, np.int64)
    g, vid = distinct_pairs_by_group(ro(road), ro(np.asarray(cube.vehicles["vehicle_id"], np.int64)), n_roads)
    pairs = {"piece": first_piece[g].astype(np.int32), "vehicle_id": vid}
    return Cube(cube.cells, cube.hist, pairs, cube.cell_vehicles)


def distinct_vehicles(
    piece: np.ndarray, vehicle_id: np.ndarray, group_of_piece: np.ndarray, n_groups: int
) -> np.ndarray:
    """Exact distinct vehicles per group of pieces (group -1: ignored), from distinct (piece, vehicle) pairs."""
    g = np.asarray(group_of_piece, dtype=np.int64)[piece] if len(piece) else np.zeros(0, np.int64)
    return distinct_per_group(ro(g), ro(np.asarray(vehicle_id, dtype=np.int64)), int(n_groups))


def speed_class_offset_kmh(recording: str = SPEED_RECORDING) -> float:
    """Lower bound of the class a recorded whole km/h stands for, minus that value (km/h): -0.5 when
    the recorder rounds (v stands for [v - 0.5, v + 0.5)), 0 when it truncates ([v, v + 1))."""
    try:
        return SPEED_CLASS_OFFSET_KMH[recording]
    except KeyError:
        raise ValueError(
            f"unknown speed recording {recording!r} (choose one of {', '.join(SPEED_CLASS_OFFSET_KMH)})"
        ) from None


def _within_class(lower, count, below, target):
    """The grouped-data percentile L + (target - F) / f * w of the class holding the target rank."""
    return lower + (target - below) / count * SPEED_CLASS_WIDTH_KMH


def grouped_quantile(
    values: np.ndarray, counts: np.ndarray, q: float = P85, recording: str = SPEED_RECORDING
) -> np.ndarray:
    """Grouped-data q-quantile per row of `counts` (the spot-speed-study percentile, docs/statistics.md).

    values: sorted distinct recorded speeds, whole km/h (k,); counts: (..., k) non-negative
    (possibly weighted) counts. The percentile is L + (q N - F) / f * w in the first class whose
    cumulative count reaches q N (L its lower bound by `recording`, F the count below it, f its
    count, w = 1 km/h). NaN for rows without counts.
    """
    values = np.asarray(values, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape[-1] == 0:
        return np.full(counts.shape[:-1], np.nan)
    cum = np.cumsum(counts, axis=-1)
    n = cum[..., -1]
    target = q * n
    # the first class whose cumulative count reaches the target (a hair of tolerance for float rounding)
    reached = cum >= (target - 1e-9 * np.maximum(n, 1.0))[..., None]
    idx = np.argmax(reached, axis=-1)[..., None]
    f = np.take_along_axis(counts, idx, axis=-1)[..., 0]
    below = np.take_along_axis(cum, idx, axis=-1)[..., 0] - f
    lower = values[idx[..., 0]] + speed_class_offset_kmh(recording)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = _within_class(lower, f, below, target)
    return np.where(n > 0, out, np.nan)


def _sorted_groups(group, value, count, merge: bool = False):
    """Rows with a positive count, sorted by (group, value), and the cumulative count over all of them;
    `merge`: rows of the same group and value added into one (a class of a histogram spread over cells)."""
    keep = count > 0
    group, value, count = group[keep], value[keep].astype(np.float64), count[keep].astype(np.float64)
    order = np.lexsort((value, group))
    group, value, count = group[order], value[order], count[order]
    if merge and len(group):
        new = np.r_[True, (group[1:] != group[:-1]) | (value[1:] != value[:-1])]
        starts = np.flatnonzero(new)
        group, value, count = group[starts], value[starts], np.add.reduceat(count, starts)
    return group, value, count, np.cumsum(count)


def quantile_from_hist(
    group: np.ndarray,
    value: np.ndarray,
    count: np.ndarray,
    n_groups: int,
    q: float = P85,
    recording: str = SPEED_RECORDING,
) -> np.ndarray:
    """Grouped-data q-quantile per group from (group, recorded whole km/h, count) histogram rows: the
    percentile interpolated within the class of the recorded speed (`grouped_quantile`, the same
    formula for sparse rows); NaN for empty groups."""
    out = np.full(n_groups, np.nan)
    group, value, count, cum = _sorted_groups(group, value, count, merge=True)
    if len(group) == 0:
        return out
    n = np.bincount(group, weights=count, minlength=n_groups)
    before = np.concatenate([[0.0], np.cumsum(n)[:-1]])  # counts in earlier groups
    has = np.flatnonzero(n > 0)
    target = before[has] + q * n[has]
    idx = np.searchsorted(cum, target - 1e-9 * np.maximum(n[has], 1.0), side="left")
    lower = value[idx] + speed_class_offset_kmh(recording)
    out[has] = _within_class(lower, count[idx], cum[idx] - count[idx], target)
    return out


def sample_quantile(
    group: np.ndarray, value: np.ndarray, n_groups: int, q: float = P85, count: np.ndarray | None = None
) -> np.ndarray:
    """Plain sample q-quantile per group of continuous values (passage speeds): linear interpolation
    between order statistics, h = (n - 1) q (Hyndman & Fan 1996 type 7; numpy's default, DuckDB's
    quantile_cont); NaN for empty groups. `count`: how many times each value occurs (rows of
    analysis._partitions.passage_counts), the same as the values repeated that many times."""
    out = np.full(n_groups, np.nan)
    count = np.ones(len(group)) if count is None else np.asarray(count)
    group, value, count, cum = _sorted_groups(np.asarray(group), np.asarray(value), count, merge=True)
    if len(group) == 0:
        return out
    n = np.bincount(group, weights=count, minlength=n_groups).astype(np.int64)
    before = np.concatenate([[0], np.cumsum(n)[:-1]])  # values in earlier groups
    has = np.flatnonzero(n > 0)
    h = (n[has] - 1) * q
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, n[has] - 1)
    # the j-th order statistic (0-based, over all groups) is the first row whose cumulative count exceeds j
    v_lo = value[np.searchsorted(cum, before[has] + lo, side="right")]
    v_hi = value[np.searchsorted(cum, before[has] + hi, side="right")]
    out[has] = v_lo + (h - lo) * (v_hi - v_lo)
    return out


@dataclass
class FigureSums:
    """What the figures of groups of pieces need, from one cube or added up over cubes of disjoint
    piece ranges (one period's cube range by range): per group the point count, speed sum, counts
    at or over the limit (and + 10) and 1 km/h bin counts, and its distinct vehicles."""

    n_groups: int
    n: np.ndarray
    sums: np.ndarray
    ge: np.ndarray
    ge10: np.ndarray
    bins: np.ndarray  # (n_groups * N_BIN,) points per group and bin
    pairs: tuple[np.ndarray, np.ndarray]  # distinct (group, vehicle id)

    @classmethod
    def of(cls, cube: Cube, group_of_piece: np.ndarray, n_groups: int) -> FigureSums:
        cg = group_of_piece[cube.cells["piece"]]
        ok = cg >= 0
        w = lambda name: np.bincount(cg[ok], weights=cube.cells[name][ok], minlength=n_groups)  # noqa: E731
        hg = group_of_piece[cube.hist["piece"]]
        hok = hg >= 0
        key = hg[hok].astype(np.int64) * N_BIN + cube.hist["speed_kmh"][hok]
        bins = np.bincount(key, weights=cube.hist["n_points"][hok], minlength=n_groups * N_BIN).astype(np.int64)
        vg = group_of_piece[cube.vehicles["piece"]] if len(cube.vehicles["piece"]) else np.zeros(0, np.int64)
        pairs = distinct_pairs_by_group(ro(np.asarray(vg, np.int64)), ro(cube.vehicles["vehicle_id"]), int(n_groups))
        n = w("n_points").astype(np.int64)
        return cls(
            n_groups, n, w("sum_speed_kmh"), w("n_at_or_over_limit"), w("n_at_or_over_limit_plus_10"), bins, pairs
        )

    def __add__(self, other: FigureSums) -> FigureSums:
        g = np.concatenate([self.pairs[0], other.pairs[0]])
        v = np.concatenate([self.pairs[1], other.pairs[1]])
        return FigureSums(
            self.n_groups,
            self.n + other.n,
            self.sums + other.sums,
            self.ge + other.ge,
            self.ge10 + other.ge10,
            self.bins + other.bins,
            distinct_pairs_by_group(ro(g), ro(v), self.n_groups),
        )

    def figures(self) -> dict[str, np.ndarray]:
        n = self.n
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, self.sums / n, np.nan)
            share = np.where(n > 0, self.ge / n, np.nan)
            share10 = np.where(n > 0, self.ge10 / n, np.nan)
        # The quantile from the points per group and 1 km/h bin (it depends only on those counts).
        at = np.flatnonzero(self.bins)
        p85 = quantile_from_hist(at // N_BIN, at % N_BIN, self.bins[at], self.n_groups)
        return {
            "n_points": n,
            "n_vehicles": np.bincount(self.pairs[0], minlength=self.n_groups).astype(np.int64),
            "mean_kmh": mean,
            "p85_kmh": p85,
            "share_at_or_over_limit": share,
            "share_at_or_over_limit_plus_10": share10,
        }


def figures(cube: Cube, group_of_piece: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """Per group of pieces (group -1 ignored): n_points, n_vehicles (exact), mean_kmh, p85_kmh,
    share_at_or_over_limit, share_at_or_over_limit_plus_10 — all from the merged arrays."""
    return FigureSums.of(cube, np.asarray(group_of_piece, dtype=np.int64), n_groups).figures()


def _empty_cube(cell_vehicles: bool = False) -> Cube:
    i32, i64, f64 = np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.float64)
    return Cube(
        {
            "piece": i32,
            "cell": i32,
            "n_points": i64,
            "sum_speed_kmh": f64,
            "n_at_or_over_limit": i64,
            "n_at_or_over_limit_plus_10": i64,
            "n_vehicles": i64,
        },
        {"piece": i32, "cell": i32, "speed_kmh": np.zeros(0, np.int16), "n_points": i64},
        {"piece": i32, "vehicle_id": i64},
        i64 if cell_vehicles else None,
    )


Cube.empty = staticmethod(_empty_cube)
