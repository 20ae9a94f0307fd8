"""Ingest benchmark: the product's ingest against a bare floor measured in the same run, on the same files.

    .venv/bin/python bench/ingest.py [--rows N] [--rows-per-file N] [--workers N] [--repeat K] [--keep DIR]

1. Generates `--rows` rows (default 5 million) of synthetic 様式1-2 as OUT1-2 ZIPs of 50,000 rows
   (September 2017), and as many again for October 2017 (the second month).
2. **Floor**: the fastest bare reader built from the pinned dependencies, run over the same ZIPs
   with the same number of worker processes: unzip → parse all 33 columns → Parquet (the ingest's codec), one
   file per ZIP, with no validation, no pseudonymisation, no projection, no duplicate check, no
   sort, no manifest. Candidates: pyarrow.csv with the spec's column types (and with type
   inference), each in one CSV block per file and in the ingest's 2 MB blocks, DuckDB read_csv
   (explicit columns, one thread per worker) + COPY; the fastest is the floor.
3. **Ingest**: `etl.ingest.ingest_paths` of the first month into an empty warehouse: everything
   it guarantees (validation with quarantine, rows conserved, exact duplicates once across files,
   HMAC pseudonyms, EPSG:6677, key fingerprint, journaled atomic commit, views, snapshot).
   Floor and ingest alternate `--repeat` times (the machine is shared): medians are reported.
4. **Second month**: the October files ingested on top of (a copy of) the September warehouse, and
   into an empty warehouse, alternating `--repeat` times: the two times differ only by what the
   stored days cost (none are touched) and the per-commit listing of the store's files.

Peak RSS is sampled (psutil, every 50 ms) over the ingest process and its workers together, and
the largest single process is reported too. CPU seconds (user + system, this process and its reaped
workers) of each floor and ingest run are printed with their ratio: what the work costs whatever
else runs on the shared machine, next to the wall-clock ratio. The last line is

    ingest: X rows/s, floor Y rows/s, ratio R, peak RSS M MB, …
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from etl.ingest import ingest_paths  # noqa: E402
from etl.spec import STYLE_1_2  # noqa: E402
from etl.stage import DELTA_COLUMNS, DICT_COLUMNS, POINT_FILE_OPTIONS  # noqa: E402
from etl.synthetic import generate_bench_delivery  # noqa: E402
from etl.validate import TYPED_BLOCK_BYTES  # noqa: E402
from etl.warehouse import sql_literal  # noqa: E402

NAMES = [c.name for c in STYLE_1_2.columns]
_TYPES = {
    "str": pa.string(),
    "id": pa.string(),
    "int8": pa.int8(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float": pa.float64(),
    "date": pa.int64(),
    "timestamp": pa.int64(),
}
_SQL = {
    "str": "VARCHAR",
    "id": "VARCHAR",
    "int8": "TINYINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float": "DOUBLE",
    "date": "BIGINT",
    "timestamp": "BIGINT",
}


# --- the floor candidates (one ZIP → one Parquet file) ------------------------------------------


def _pyarrow_file(args) -> int:
    src, out, (typed, block) = args
    with zipfile.ZipFile(src) as zf:
        data = b"".join(zf.read(i) for i in zf.infolist() if not i.is_dir())
    convert = pacsv.ConvertOptions(column_types={c.name: _TYPES[c.type] for c in STYLE_1_2.columns}) if typed else None
    t = pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(column_names=NAMES, use_threads=False, block_size=block),
        convert_options=convert,
    )
    # The ingest's own Parquet settings where they apply (dictionary only for repeating columns, delta for
    # times): the floor gets every writer advantage the ingest has.
    delta = {c: e for c, e in DELTA_COLUMNS.items() if c in NAMES and pa.types.is_integer(t.schema.field(c).type)}
    pq.write_table(
        t,
        out,
        compression=POINT_FILE_OPTIONS["compression"],
        store_schema=False,
        use_dictionary=[c for c in DICT_COLUMNS if c in NAMES],
        column_encoding=delta,
    )
    return t.num_rows


def _duckdb_file(args) -> int:
    src, out, _ = args
    con = duckdb.connect(config={"threads": 1})
    tmp = Path(out).with_suffix(".csv")
    with zipfile.ZipFile(src) as zf:
        tmp.write_bytes(b"".join(zf.read(i) for i in zf.infolist() if not i.is_dir()))
    cols = "{" + ", ".join(f"'{c.name}': '{_SQL[c.type]}'" for c in STYLE_1_2.columns) + "}"
    con.execute(
        f"COPY (SELECT * FROM read_csv(?, header = false, delim = ',', quote = '', columns = {cols})) TO "
        f"{sql_literal(out)} "
        f"(FORMAT parquet, COMPRESSION {POINT_FILE_OPTIONS['compression']})",
        [str(tmp)],
    )
    n = con.execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchone()[0]
    tmp.unlink()
    con.close()
    return n


FLOORS = {
    # Arrow CSV blocks: one block per payload, and the ingest's own small blocks (faster: they stay in cache).
    "pyarrow.csv typed": (_pyarrow_file, (True, 1 << 26)),
    "pyarrow.csv inferred": (_pyarrow_file, (False, 1 << 26)),
    "pyarrow.csv typed (2 MB blocks)": (_pyarrow_file, (True, TYPED_BLOCK_BYTES)),
    "pyarrow.csv inferred (2 MB blocks)": (_pyarrow_file, (False, TYPED_BLOCK_BYTES)),
    "duckdb read_csv": (_duckdb_file, None),
}


def run_floor(name: str, files: list[Path], scratch: Path, workers: int) -> tuple[float, int]:
    fn, typed = FLOORS[name]
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    jobs = [(str(f), str(scratch / f"{i}.parquet"), typed) for i, f in enumerate(files)]
    t0 = time.perf_counter()
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = sum(pool.map(fn, jobs))
    else:
        rows = sum(map(fn, jobs))
    secs = time.perf_counter() - t0
    shutil.rmtree(scratch, ignore_errors=True)
    return secs, rows


# --- memory -----------------------------------------------------------------------------------


class TreeRSS:
    """Peak resident memory of this process and its children, summed and largest, sampled every 50 ms."""

    def __init__(self):
        self.sum_mb = self.max_mb = 0.0
        self._stop = threading.Event()
        try:
            import psutil

            self._me = psutil.Process()
        except ImportError:  # the kernel's high-water marks then
            self._me = None

    def __enter__(self):
        if self._me is not None:
            self._t = threading.Thread(target=self._run, daemon=True)
            self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                procs = [self._me] + self._me.children(recursive=True)
                rss = [p.memory_info().rss / 2**20 for p in procs]
            except Exception:  # noqa: BLE001 - a worker ended between listing and reading
                continue
            self.sum_mb = max(self.sum_mb, sum(rss))
            self.max_mb = max(self.max_mb, max(rss))
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        if self._me is None:
            kb = max(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            )
            self.sum_mb = self.max_mb = kb / 1024
        else:
            self._t.join()


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children (the worker pools, once shut down)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def load() -> str:
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000, help="rows per month (two months are generated)")
    ap.add_argument("--rows-per-file", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=1, help="alternate floor and ingest this many times (medians)")
    ap.add_argument("--floors", default=",".join(FLOORS), help="floor candidates to try (comma-separated)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    os.environ.setdefault("ETC2CALM_ID_KEY", "benchmark-key-not-secret")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="etc2calm-bench-"))
    months = [work / "delivery", work / "delivery-2"]
    try:
        for i, d in enumerate(months):
            if not (d / "README.txt").exists():
                t0 = time.perf_counter()
                gen = generate_bench_delivery(
                    d, args.rows, args.rows_per_file, seed=1 + i, start=dt.date(2017, 9 + i, 1)
                )
                print(
                    f"generated {gen['files']} ZIPs, {gen['rows']:,} rows in {time.perf_counter() - t0:.0f} s "
                    f"({d.name})",
                    flush=True,
                )
        files = sorted(months[0].rglob("*.zip"))
        csv_bytes = sum(i.file_size for f in files for i in zipfile.ZipFile(f).infolist())
        zip_bytes = sum(f.stat().st_size for f in files)
        print(
            f"month 1: {len(files)} ZIPs, {zip_bytes / 1e6:,.0f} MB zipped, {csv_bytes / 1e6:,.0f} MB CSV; "
            f"{args.workers} worker processes; {load()}",
            flush=True,
        )
        candidates = [c.strip() for c in args.floors.split(",") if c.strip()]
        # Which candidate is the floor: each on the same first quarter of the files (twice, best), fastest wins.
        sample = files[: max(args.workers * 2, len(files) // 4)]
        trial = {}
        for name in candidates * 2:
            secs, rows = run_floor(name, sample, work / "floor", args.workers)
            trial[name] = max(trial.get(name, 0), rows / secs)
            print(
                f"floor candidate {name}: {rows / secs:,.0f} rows/s on {len(sample)} ZIPs ({secs:.1f} s, {load()})",
                flush=True,
            )
        floor_name = max(trial, key=trial.get)
        floor_rates, ingest_rates, peaks, cpu_pairs = [], [], [], []
        report = None
        for _ in range(args.repeat):
            c0 = cpu_seconds()
            secs, rows = run_floor(floor_name, files, work / "floor", args.workers)
            floor_cpu = cpu_seconds() - c0
            floor_rates.append(rows / secs)
            print(
                f"floor ({floor_name}): {rows / secs:,.0f} rows/s ({secs:.1f} s, {floor_cpu:.1f} CPU-s, {load()})",
                flush=True,
            )
            shutil.rmtree(work / "warehouse", ignore_errors=True)
            with TreeRSS() as mem:
                t0, c0 = time.perf_counter(), cpu_seconds()
                report = ingest_paths([months[0]], work / "warehouse", workers=args.workers, progress=False)
                secs, ingest_cpu = time.perf_counter() - t0, cpu_seconds() - c0
            rows = report.total("rows_read")
            ingest_rates.append(rows / secs)
            peaks.append(mem)
            cpu_pairs.append(floor_cpu / ingest_cpu)
            print(
                f"ingest: {rows / secs:,.0f} rows/s ({secs:.1f} s: stage {report.stage_seconds:.1f} s, commit "
                f"{report.commit_seconds:.1f} s; {ingest_cpu:.1f} CPU-s; peak RSS {mem.sum_mb:,.0f} MB all processes, "
                f"largest {mem.max_mb:,.0f} MB; "
                f"{load()})",
                flush=True,
            )
        print(report.summary())
        # The second month on top of the first (a copy of the warehouse just built), and alone, alternating.
        on_top, alone = [], []
        base = work / "warehouse"
        for k in range(args.repeat):
            for kind in ("alone", "on top") if k % 2 == 0 else ("on top", "alone"):
                target = work / "warehouse-2"
                shutil.rmtree(target, ignore_errors=True)
                if kind == "on top":
                    shutil.copytree(base, target)
                t0 = time.perf_counter()
                r2 = ingest_paths([months[1]], target, workers=args.workers, progress=False)
                secs = time.perf_counter() - t0
                (on_top if kind == "on top" else alone).append(secs)
                print(f"second month ({r2.total('rows_read'):,} rows) {kind}: {secs:.1f} s ({load()})", flush=True)
        on_top, alone = statistics.median(on_top), statistics.median(alone)
        shutil.rmtree(work / "warehouse-2", ignore_errors=True)
        floor = statistics.median(floor_rates)
        rate = statistics.median(ingest_rates)
        pairs = [i / f for i, f in zip(ingest_rates, floor_rates, strict=True)]
        print(
            "ratio of each floor/ingest pair: "
            + ", ".join(f"{r:.2f}" for r in pairs)
            + f" (median {statistics.median(pairs):.2f})"
        )
        # CPU seconds (this process and its workers): what the work costs, whatever else runs on the machine.
        print(
            "CPU ratio (floor CPU-s / ingest CPU-s) of each pair: "
            + ", ".join(f"{r:.2f}" for r in cpu_pairs)
            + f" (median {statistics.median(cpu_pairs):.2f})"
        )
        peak = max(p.sum_mb for p in peaks)
        print(
            f"ingest: {rate:,.0f} rows/s, floor {floor:,.0f} rows/s, ratio {rate / floor:.2f}, peak RSS {peak:,.0f} MB "
            f"(all {args.workers + 1} processes; largest {max(p.max_mb for p in peaks):,.0f} MB), second month "
            f"{on_top:.1f} s on top vs {alone:.1f} s alone; {args.rows:,} rows, {args.workers} workers, "
            f"floor = {floor_name} (unzip, parse 33 columns, Parquet in the ingest's codec); "
            "ingest = validate + quarantine, "
            f"HMAC IDs, EPSG:6677, exact duplicates, journaled commit; medians of {args.repeat}; {load()}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
