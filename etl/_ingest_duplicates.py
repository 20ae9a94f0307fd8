"""The duplicate check of a commit: exact repeats of stored points, found by key and confirmed on the fields.

Serves etl.ingest only. Per operation date, the `point_key`s (64-bit hashes, see etl.stage.point_keys)
of the kept points and of the staged files are compared in a compiled hash set; a repeated key is
confirmed on the duplicate-key fields themselves (a hash collision never drops a point). Keys are
read when needed, and a very large day is checked in buckets of key % K (`BUCKET_KEYS` at a time),
so memory does not grow with the size of a day.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from etl._kernels import repeated_keys
from etl.failures import writing
from etl.stage import (
    DUPLICATE_KEY,
    POINT_FILE_OPTIONS,
    POINT_SCHEMA,
    ROW_GROUP_ROWS,
    key_tuples,
    point_keys,
)


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns, use_threads=False)


def _key_columns(path: Path) -> pa.Table:
    """The duplicate-key fields (and point_key, vehicle_id where stored) of a point file."""
    names = set(pq.read_schema(path).names)
    return read_table(path, [c for c in (*DUPLICATE_KEY, "vehicle_id", "point_key") if c in names])


def file_keys(path: Path) -> np.ndarray:
    """point_key of every row of a stored point file (computed for files written before the column existed)."""
    if "point_key" in pq.read_schema(path).names:
        return (
            read_table(path, ["point_key"])
            .column("point_key")
            .to_numpy(zero_copy_only=False)
            .astype(np.int64, copy=False)
        )
    return point_keys(_key_columns(path))


def _tuples_with_keys(path: Path, keys: np.ndarray) -> list[tuple]:
    """The duplicate-key fields of the rows of `path` whose point_key is in `keys`."""
    t = _key_columns(path)
    k = t.column("point_key").to_numpy(zero_copy_only=False) if "point_key" in t.column_names else point_keys(t)
    mask = np.isin(k, keys)
    if not mask.any():
        return []
    return key_tuples(t.filter(pa.array(mask)))


def _repeats(keys: np.ndarray) -> np.ndarray:
    """True where a key occurred earlier in the array (a compiled hash set: linear time)."""
    return repeated_keys(np.ascontiguousarray(keys, dtype=np.int64))


BUCKET_KEYS = 20_000_000  # keys held at once by the duplicate check of one operation date (~0.8 GB with its hash set)


class DayGroup:
    """The kept points of one operation date during a commit: where their keys and fields are.

    Keys are read when needed (and a very large day is checked in buckets of key % K), so memory
    does not grow with the size of a day."""

    def __init__(self):
        # (file, table, keys held or None, raw keys file or None, rows)
        self.sources: list[tuple[Path | None, pa.Table | None, np.ndarray | None, Path | None, int]] = []

    def add(
        self,
        n: int,
        path: Path | None = None,
        table: pa.Table | None = None,
        keys: np.ndarray | None = None,
        keys_file: Path | None = None,
    ) -> None:
        if n:
            self.sources.append((path, table, keys, keys_file, n))

    @staticmethod
    def load(source) -> np.ndarray:
        path, _, keys, keys_file, _ = source
        if keys is not None:
            return keys
        if keys_file is not None:
            return np.fromfile(keys_file, dtype=np.int64)
        return file_keys(path)

    def tuples(self, keys: np.ndarray) -> set[tuple]:
        out: set[tuple] = set()
        for src in self.sources:
            path, table, _, _, _ = src
            mask = np.isin(self.load(src), keys)
            if not mask.any():
                continue
            if table is not None:
                out.update(key_tuples(table.filter(pa.array(mask))))
            else:
                out.update(_tuples_with_keys(path, keys))
        return out


def repeat_masks(loaders: list, sizes: list[int]) -> list[np.ndarray]:
    """Per source (in order), True where its key occurred earlier in this or an earlier source."""
    total = sum(sizes)
    k = max(1, -(-total // BUCKET_KEYS))
    if k == 1:
        rep = _repeats(np.concatenate([load() for load in loaders]) if loaders else np.zeros(0, np.int64))
        return np.split(rep, np.cumsum(sizes)[:-1]) if sizes else []
    masks = [np.zeros(n, dtype=bool) for n in sizes]
    for b in range(k):  # equal keys fall in one bucket: each bucket is checked on its own
        parts, picks = [], []
        for load in loaders:
            keys = load()
            pick = np.flatnonzero(keys.view(np.uint64) % np.uint64(k) == np.uint64(b))
            parts.append(keys[pick])
            picks.append(pick)
        rep = _repeats(np.concatenate(parts))
        for m, pick, r in zip(masks, picks, np.split(rep, np.cumsum([len(p) for p in parts])[:-1]), strict=True):
            m[pick] = r
    return masks


def split_duplicates(table: pa.Table, keys: np.ndarray, cand: np.ndarray, group: DayGroup) -> np.ndarray:
    """Mask of the rows of `table` (in order) that exactly repeat a kept point of the group or an earlier
    row; `cand` marks the rows whose key occurred before (only those can)."""
    dup = np.zeros(len(keys), dtype=bool)
    cand_keys = np.unique(keys[cand])
    seen = group.tuples(cand_keys)
    rows = np.flatnonzero(np.isin(keys, cand_keys))
    tuples = key_tuples(table.take(pa.array(rows)))
    for i, t in zip(rows, tuples, strict=True):
        if t in seen:
            dup[i] = True
        else:
            seen.add(t)
    return dup


def write_points(table: pa.Table, path: Path) -> None:
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table.cast(POINT_SCHEMA) if table.schema != POINT_SCHEMA else table,
            path,
            row_group_size=ROW_GROUP_ROWS,
            **POINT_FILE_OPTIONS,
        )
