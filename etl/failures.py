"""I/O failures (a full disk, a read-only or vanished folder, a quota) named by path and cause in one line.

Python's and Arrow's OSError for a failed write carries no path, DuckDB's names it in its message,
GDAL's (pyogrio) says "disk is full" in words. Writers put their writes inside `writing(path)`,
which turns any of these into `WriteFailed`, an OSError whose filename is the path written; the
command line (etc2calm.cli) prints `io_failure_message` of whatever I/O failure reaches it, with the
command's own write target as the path when nothing named one.
"""

from __future__ import annotations

import errno
import os
import re
from contextlib import contextmanager
from pathlib import Path

# Causes of a failed write by errno; any other errno reads as its strerror.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
_DISK_FULL = re.compile(r"no space left on device|disk is full|database or disk is full", re.IGNORECASE)
_DUCKDB_PATH = re.compile(r'(?:file|directory) "([^"]+)"')


class WriteFailed(OSError):
    """An OSError while writing `filename` (the path being written), whatever library raised it."""


@contextmanager
def writing(path: str | Path):
    """Name `path` in an I/O failure raised inside the block: an OSError (Python, Arrow) without a path
    of its own becomes `WriteFailed(errno, cause, path)`; a library's disk-full error too."""
    try:
        yield
    except WriteFailed:
        raise
    except OSError as exc:
        code = exc.errno or errno.EIO
        raise WriteFailed(code, os.strerror(code), str(exc.filename or path)) from exc
    except Exception as exc:
        cause = _chained_os_error(exc)  # e.g. matplotlib: an AttributeError while closing after ENOSPC
        if cause is not None:
            code = cause.errno or errno.EIO
            raise WriteFailed(code, os.strerror(code), str(cause.filename or path)) from exc
        if _DISK_FULL.search(str(exc)):
            raise WriteFailed(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        raise


def _chained_os_error(exc: BaseException) -> OSError | None:
    """The OSError an exception was raised while handling (or from), if any: a library cleaning up after a
    failed write often fails again in another way."""
    seen = 0
    link = exc.__cause__ or exc.__context__
    while link is not None and seen < 10:
        if isinstance(link, OSError):
            return link
        link, seen = link.__cause__ or link.__context__, seen + 1
    return None


def is_io_failure(exc: BaseException) -> bool:
    """An OSError, or a DuckDB error that is an I/O failure (IOException, or a failed commit's disk error)."""
    if isinstance(exc, OSError):
        return True
    if _DISK_FULL.search(str(exc)):  # any library's words for a full disk (GDAL: "database or disk is full")
        return True
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a dependency
        return False
    if isinstance(exc, duckdb.IOException):
        return True
    return isinstance(exc, duckdb.Error) and bool(_DISK_FULL.search(str(exc)) or "Could not write" in str(exc))


def io_failure_message(exc: BaseException, fallback: str | Path | None) -> str | None:
    """`<cause> while <writing|reading|using> <path>` for an I/O failure (None for anything else); `fallback`
    is the path named when the failure carries none (the command's write target)."""
    if not is_io_failure(exc):
        return None
    if not isinstance(exc, OSError) and _DISK_FULL.search(str(exc)) and "IO Error" not in str(exc):
        exc = WriteFailed(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fallback) if fallback else None)
    if isinstance(exc, OSError):
        cause = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc).splitlines()[0])
        path = exc.filename or fallback
        writes = isinstance(exc, WriteFailed) or exc.errno in _WRITE_ERRNOS
        verb = "writing" if writes else "using"
    else:
        text = str(exc).splitlines()[0]
        m = _DUCKDB_PATH.search(text)
        path = m.group(1) if m else fallback
        cause = text.rsplit(": ", 1)[-1] if ": " in text else text
        low = text.lower().replace("read-only", "")
        verb = (
            "writing"
            if "write" in low or _DISK_FULL.search(text)
            else "opening"
            if "open" in low
            else "reading"
            if "read" in low
            else "using"
        )
    cause = cause[:1].lower() + cause[1:]
    return f"{cause} while {verb} {path}" if path else f"{cause} while {verb} the warehouse"


__all__ = ["WriteFailed", "io_failure_message", "is_io_failure", "writing"]
