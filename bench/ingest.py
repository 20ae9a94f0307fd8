"""Ingest benchmark: generate a synthetic 様式1-2 delivery, ingest it with the product's own code path.

    .venv/bin/python bench/ingest.py [--rows N] [--rows-per-file N] [--workers N] [--keep DIR]

Generates `--rows` rows (default 20 million) as OUT1-2 ZIPs of 50,000 rows, ingests them with
`etl.ingest.ingest_paths` into a fresh warehouse (ZIP → validated, pseudonymised, projected,
deduplicated Parquet with headings), then reads a sample of the same ZIPs with a plain
single-threaded Python `csv` reader (cp932, rows only, nothing typed or stored) for comparison.
Peak RSS is the largest resident set of the ingest process and its workers (ru_maxrss of self
and children). The last line is

    ingest: <rows/s> rows/s, <MB/s> MB/s, peak RSS <MB> MB, <ratio>x python csv

MB/s is uncompressed CSV bytes per second. On a shared machine the figures are pessimistic.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import resource
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from etl.ingest import ingest_paths  # noqa: E402
from etl.synthetic import generate_bench_delivery  # noqa: E402


def python_csv_rate(files: list[Path], max_rows: int) -> tuple[float, int]:
    """Rows per second of a plain single-threaded csv.reader over the ZIPs (cp932), up to max_rows rows."""
    n = 0
    t0 = time.perf_counter()
    for f in files:
        with zipfile.ZipFile(f) as zf, zf.open("data.csv") as raw:
            for _ in csv.reader(io.TextIOWrapper(raw, encoding="cp932", newline="")):
                n += 1
        if n >= max_rows:
            break
    return n / (time.perf_counter() - t0), n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--rows-per-file", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--csv-sample-rows", type=int, default=2_000_000, help="rows read by the python csv baseline")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    os.environ.setdefault("ETC2CALM_ID_KEY", "benchmark-key-not-secret")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="etc2calm-bench-"))
    delivery, warehouse = work / "delivery", work / "warehouse"
    try:
        shutil.rmtree(warehouse, ignore_errors=True)
        t0 = time.perf_counter()
        if not (delivery / "README.txt").exists():
            gen = generate_bench_delivery(delivery, args.rows, args.rows_per_file)
            print(f"generated {gen['files']} ZIPs, {gen['rows']:,} rows in {time.perf_counter() - t0:.0f} s", flush=True)
        files = sorted(delivery.rglob("*.zip"))
        csv_bytes = 0
        for f in files:
            with zipfile.ZipFile(f) as zf:
                csv_bytes += sum(i.file_size for i in zf.infolist())
        zip_bytes = sum(f.stat().st_size for f in files)
        t0 = time.perf_counter()
        report = ingest_paths([delivery], warehouse, workers=args.workers, progress=False)
        secs = time.perf_counter() - t0
        rows = report.total("rows_read")
        print(report.summary())
        print(f"ingest of {len(files)} ZIPs ({zip_bytes / 1e6:,.0f} MB zipped, {csv_bytes / 1e6:,.0f} MB CSV) in {secs:.1f} s "
              f"(stage {report.stage_seconds:.1f} s, commit {report.commit_seconds:.1f} s)")
        peak_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        py_rate, py_rows = python_csv_rate(files, args.csv_sample_rows)
        print(f"python csv.reader: {py_rate:,.0f} rows/s over {py_rows:,} rows (single thread, untyped, nothing stored)")
        rate = rows / secs
        print(f"ingest: {rate:,.0f} rows/s, {csv_bytes / 1e6 / secs:,.0f} MB/s, peak RSS {peak_kb / 1024:,.0f} MB, {rate / py_rate:.1f}x python csv")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
