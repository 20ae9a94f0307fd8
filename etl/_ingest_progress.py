"""Ingest progress on a terminal: files, rows, rows/s and an ETA by bytes, with rich's progress bar as it is.

Serves etl.ingest only. Nothing is drawn when stderr is not a terminal (scheduled runs, logs).
"""

from __future__ import annotations

import sys
import time


class Progress:
    """Progress on stderr (files, rows, rows/s, ETA by bytes) with rich, only when stderr is a terminal."""

    def __init__(self, n_files: int, n_bytes: int, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.n, self.done, self.rows = n_files, 0, 0
        self.t0 = time.perf_counter()
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("ingest"),
            BarColumn(),
            TextColumn("{task.fields[files]}"),
            TextColumn("{task.fields[rows]}"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr, force_terminal=True),
            transient=False,
        )
        self.task = self.progress.add_task("ingest", total=max(n_bytes, 1), files=self._files(), rows="rows 0")
        self.progress.start()

    def _files(self) -> str:
        return f"files {self.done}/{self.n}"

    def update(self, results: list[dict]) -> None:
        self.done += len(results)
        self.rows += sum(r["rows_read"] for r in results)
        if self.enabled:
            rate = self.rows / max(time.perf_counter() - self.t0, 1e-9)
            self.progress.update(
                self.task,
                advance=sum(r["size_bytes"] for r in results),
                files=self._files(),
                rows=f"rows {self.rows:,} ({rate:,.0f}/s)",
            )

    def close(self) -> None:
        if self.enabled:
            self.progress.refresh()
            self.progress.stop()
