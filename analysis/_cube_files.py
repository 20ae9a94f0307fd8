"""The period cube's rows as Parquet files: what the views link_hour_stats / link_hour_histogram read.

Each analysed (district, period) has one folder `figures/<run>/` in the warehouse holding
`link_hour_stats.parquet` (one row per cell) and `link_hour_histogram.parquet` (one row per cell
and 1 km/h bin), written range by range as the period's cube is merged (`CubeFileWriter`). The
table figure_files lists the folders; it is replaced in the storing transaction of `analyze`, with
the views, so readers see a run's rows whole or not at all. Folders are written before that
transaction commits and removed when it fails; a folder no row names (left by a killed run, or by
the run it replaced) is removed by the next `analyze` that stores (`sweep_unlisted`), which holds
the warehouse for writing.

Why files and not DuckDB tables: storing 12 M cube rows in DuckDB cost about 8 CPU-seconds (its
compression) and 1.3 s of checkpoint at close, four times writing them as Parquet (bench/match.py).
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from etl.schema import FIGURE_FOLDER_COLUMNS, FIGURE_VIEWS
from geo.aggregate import Cube

FIGURES_DIR = "figures"
_ROWS_PER_SLICE = 1 << 20
_ARROW = {
    "INTEGER": pa.int32(),
    "TINYINT": pa.int8(),
    "SMALLINT": pa.int16(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
}


def file_schema(view: str) -> pa.Schema:
    """The Parquet schema of a view's file: its columns but the folder's constants, road_id dictionary-encoded."""
    fields = []
    for name, (sql_type, _) in FIGURE_VIEWS[view].items():
        if name in FIGURE_FOLDER_COLUMNS:
            continue
        typ = pa.dictionary(pa.int32(), pa.string()) if name == "road_id" else _ARROW[sql_type]
        fields.append(pa.field(name, typ, nullable=False))  # no definition levels to write
    return pa.schema(fields)


class CubeFileWriter:
    """One period's cube rows written range by range into a new folder figures/<run>/.

    `add(cube)` appends a range's rows (the cube's pieces with their link and road); `close()`
    finishes both files. The folder is the caller's to list in figure_files (`folder`, relative to
    the warehouse) or to remove (`discard`)."""

    def __init__(self, warehouse: Path, piece_link: np.ndarray, piece_road: np.ndarray, road_ids) -> None:
        self.folder = Path(FIGURES_DIR) / uuid.uuid4().hex
        self.path = Path(warehouse) / self.folder
        self.path.mkdir(parents=True)
        self.piece_link, self.piece_road = piece_link, piece_road
        self.road_names = pa.array([str(r) for r in road_ids], pa.string())
        self.writers: dict[str, pq.ParquetWriter] = {}
        try:
            for view in FIGURE_VIEWS:
                self.writers[view] = pq.ParquetWriter(
                    self.path / f"{view}.parquet",
                    file_schema(view),
                    # small codes in long runs (rows ordered by link): dictionary + RLE pages
                    # for every column, statistics for the link only (what a query filters on)
                    compression="zstd",
                    compression_level=1,
                    write_statistics=["link_id"],
                    store_schema=False,
                )
        except BaseException:  # a full disk while opening the files: no folder left behind
            self.discard()
            raise

    def add(self, cube: Cube) -> None:
        """Append the rows of a range of the period's cube (cells and histogram), a slice at a time."""
        empty = Cube.empty()
        for view, part in (("link_hour_stats", "cells"), ("link_hour_histogram", "hist")):
            d = getattr(cube, part)
            for a in range(0, len(d["piece"]), _ROWS_PER_SLICE):
                piece = {k: v[a : a + _ROWS_PER_SLICE] for k, v in d.items()}
                if part == "cells":
                    t = Cube(piece, empty.hist, empty.vehicles).cells_table()
                else:
                    t = Cube(empty.cells, piece, empty.vehicles).hist_table()
                self.writers[view].write_table(self._rows(t, view), row_group_size=max(1, t.num_rows))

    def _rows(self, t: pa.Table, view: str) -> pa.Table:
        piece = t.column("piece").to_numpy()
        given = {
            "link_id": pa.array(self.piece_link[piece].astype(np.int32)),
            "road_id": pa.DictionaryArray.from_arrays(
                pa.array(self.piece_road[piece].astype(np.int32)), self.road_names
            ),
        }
        schema = self.writers[view].schema
        return pa.Table.from_arrays(
            [given[f.name] if f.name in given else t.column(f.name).cast(f.type) for f in schema], schema=schema
        )

    def close(self) -> None:
        for w in self.writers.values():
            w.close()

    def discard(self) -> None:
        for w in self.writers.values():
            with contextlib.suppress(OSError):  # a full disk: closing flushes the last pages, and fails too
                w.close()
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):  # figures/ itself when this run made it and nothing else is there
            self.path.parent.rmdir()


def sweep_unlisted(con, warehouse: Path) -> list[Path]:
    """Remove the folders under figures/ that figure_files does not list (left by a killed run, or
    replaced); `con` holds the warehouse for writing. Returns what was removed."""
    root = Path(warehouse) / FIGURES_DIR
    if not root.is_dir():
        return []
    listed = {Path(f).name for (f,) in con.execute("SELECT folder FROM figure_files").fetchall()}
    gone = [p for p in root.iterdir() if p.name not in listed]
    for p in gone:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return gone
