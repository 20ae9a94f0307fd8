"""Finding delivered files (ZIP, CSV, gzip CSV, folders recursively) and reading their bytes safely."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

DELIVERY_SUFFIXES = (".zip", ".csv", ".csv.gz", ".gz")
# A member expanding beyond these limits is refused rather than read (ZIP bomb guard).
MAX_MEMBER_BYTES = 4 * 1024**3
MAX_COMPRESSION_RATIO = 200


class SourceError(Exception):
    """A delivered file that cannot be read at all (reported by name, recorded as failed)."""


@dataclass(frozen=True)
class SourceFile:
    path: Path
    size_bytes: int
    sha256: str

    @property
    def file_id(self) -> str:
        # Content-addressed: the same bytes delivered twice (or under another name) are one file.
        return self.sha256[:20]


def _is_delivery(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in DELIVERY_SUFFIXES)


def scan_delivery_paths(paths: list[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand files and folders (recursively, following links to folders once) into delivery files.

    Returns (files in order, problems): a problem is a folder that cannot be listed or an entry with
    a delivery's name that cannot be read as a file (a broken link), with a one-line message naming
    it, so that nothing under the given paths is skipped silently. Raises FileNotFoundError
    naming the first path that does not exist.
    """
    found: list[Path] = []
    problems: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if not p.exists() and not p.is_symlink():
            raise FileNotFoundError(f"no such file or folder: {p}")
        if p.is_dir():
            found.extend(_walk(p, problems))
        elif p.exists():
            found.append(p)
        else:
            problems.append((p, f"{p}: cannot read (broken link)"))
    # Keep order, drop repeats (a file named twice on the command line, or reached twice by links).
    seen: set[Path] = set()
    unique = []
    for p in found:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            unique.append(p)
    return unique, problems


def _walk(root: Path, problems: list[tuple[Path, str]]) -> list[Path]:
    out: list[Path] = []
    visited: set[tuple[int, int]] = set()

    def onerror(exc: OSError) -> None:
        where = Path(exc.filename) if exc.filename else root
        problems.append(
            (where, f"{where}: cannot read folder ({exc.strerror or type(exc).__name__}); its files are not ingested")
        )

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=True):
        try:
            st = os.stat(dirpath)
            ident = (st.st_dev, st.st_ino)
        except OSError:
            ident = None
        if ident is not None:
            if ident in visited:  # a link back to a folder already listed (a loop): not again
                dirnames[:] = []
                continue
            visited.add(ident)
        dirnames.sort()
        for name in sorted(filenames):
            q = Path(dirpath) / name
            if not _is_delivery(q):
                continue
            if q.is_file():
                out.append(q)
            else:
                problems.append((q, f"{q}: cannot read (broken link or not a regular file)"))
    return out


def describe(path: Path) -> SourceFile:
    """Size and SHA-256 of a delivered file's bytes (hashlib.file_digest: one reused buffer, no copies)."""
    with open(path, "rb") as fh:
        h = hashlib.file_digest(fh, "sha256")
        size = fh.tell()
    return SourceFile(path=path, size_bytes=size, sha256=h.hexdigest())


CHUNK_BYTES = 32 * 1024 * 1024  # payloads are handed on in pieces of about this size, cut at line ends
CRLF, LF = b"\r\n", b"\n"


class Payload(NamedTuple):
    """A piece of a delivered CSV member: whole records, cut after a line ending of the member."""

    member: str  # ZIP member name ('' for a plain or gzip file)
    index: int  # 0 for the member's first piece
    data: bytes
    ending: bytes  # the line ending the member uses: CRLF (deliveries) or LF


def line_ending(head: bytes) -> bytes:
    """The line ending a delivered CSV uses, judged on its first 64 KB: CRLF when most of its line
    ends are CRLF (or it has none yet), else LF. A record ends only there: any other CR or LF in it,
    or a NUL, breaks it (etl.validate.split_records)."""
    sample = head[:65536]
    n_lf = sample.count(LF)
    return CRLF if n_lf == 0 or 2 * sample.count(CRLF) > n_lf else LF


def iter_payloads(path: Path, chunk_bytes: int | None = None, judge=None, skipped: list | None = None):
    """Stream the CSV payloads of a delivered file as `Payload`s (member, chunk index, bytes, line
    ending), cut after the member's line ending.

    Of a ZIP, only the members that look like delivered data are read: by name (`member_skip_reason`;
    `data.csv`, the delivered name, is data whatever its lines hold, so its bad lines are quarantined
    and a wrong layout fails the file), else by their first lines, `judge(head) -> reason or
    None` (etl.stage: the field count or header of a delivered layout). Every other member (a README,
    macOS metadata, an empty member) is appended to `skipped` as (member, reason) and not read; a ZIP
    without any data member fails (SourceError).

    Memory stays bounded by `chunk_bytes` whatever the member size. ZIP members are read as
    streams from the archive (never extracted to a path taken from it); a member whose declared
    size or ratio is absurd is refused before reading, one whose actual output exceeds its
    limits is refused while reading (ZIP bomb guard). Raises SourceError.
    """
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    name = path.name.lower()
    try:
        if path.stat().st_size == 0:
            raise SourceError(f"{path}: empty file (0 bytes)")
        if name.endswith(".zip"):
            yield from _zip_payloads(path, chunk_bytes, judge, skipped)
        elif name.endswith(".gz"):
            limit = min(MAX_MEMBER_BYTES, path.stat().st_size * MAX_COMPRESSION_RATIO)
            with gzip.open(path, "rb") as fh:
                yield from _chunks(fh, str(path), "", limit, chunk_bytes)
        else:
            with open(path, "rb") as fh:
                yield from _chunks(fh, str(path), "", MAX_MEMBER_BYTES * 64, chunk_bytes)
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        gzip.BadGzipFile,
        zlib.error,
        lzma.LZMAError,
    ) as exc:
        raise SourceError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    except RuntimeError as exc:  # zipfile: an encrypted member ("password required")
        raise SourceError(f"{path}: cannot read (encrypted or protected ZIP: {exc})") from None
    except NotImplementedError as exc:  # zipfile: a compression method Python cannot read
        raise SourceError(f"{path}: cannot read (unsupported ZIP compression: {exc})") from None


MEMBER_SUFFIXES = (".csv", ".txt")
DELIVERED_MEMBER = "data.csv"  # the member name of deliveries: data by its name, whatever its first lines hold


def member_skip_reason(name: str) -> str | None:
    """Why a ZIP member is not delivered data by its name alone (None: judge it by its first lines)."""
    parts = name.replace("\\", "/").split("/")
    if "__MACOSX" in parts[:-1]:
        return "macOS metadata (__MACOSX/), not data"
    if parts[-1].startswith("._"):
        return "macOS metadata (._ file), not data"
    if not parts[-1].lower().endswith(MEMBER_SUFFIXES):
        return "not a .csv or .txt member"
    return None


def _zip_payloads(path: Path, chunk_bytes: int, judge, skipped: list | None):
    """The payloads of a ZIP's data members (see iter_payloads); SourceError when it has none."""
    notes: list[tuple[str, str]] = []
    read = 0
    judge = judge or (lambda head: None)
    with zipfile.ZipFile(path) as zf:
        for info in (i for i in zf.infolist() if not i.is_dir()):
            reason = member_skip_reason(info.filename)
            if reason:
                notes.append((info.filename, reason))
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > MAX_MEMBER_BYTES or ratio > MAX_COMPRESSION_RATIO:
                raise SourceError(
                    f"{path}: member {info.filename!r} declares {info.file_size} bytes "
                    f"(ratio {ratio:.0f}x), refused as a likely ZIP bomb"
                )
            limit = min(MAX_MEMBER_BYTES, max(info.compress_size, 1) * MAX_COMPRESSION_RATIO)
            verdict: list[str] = []
            by_name = info.filename.replace("\\", "/").rsplit("/", 1)[-1].lower() == DELIVERED_MEMBER
            with zf.open(info) as fh:
                where = f"{path}: member {info.filename!r}"
                member_judge = _never if by_name else judge  # data.csv is read even when its first lines are bad
                for payload in _chunks(fh, where, info.filename, limit, chunk_bytes, member_judge, verdict):
                    read += 1
                    yield payload
            notes += [(info.filename, r) for r in verdict]
    if skipped is not None:
        skipped.extend(notes)
    if not read:
        what = "; ".join(f"{m!r}: {r}" for m, r in notes) or "no members"
        raise SourceError(f"{path}: ZIP holds no data member ({what})")


def _chunks(fh, where: str, member: str, limit: int, chunk_bytes: int, judge=None, verdict: list | None = None):
    """Pieces of a member, cut after its line ending; with `judge`, a member that is empty or whose
    first lines are judged not data yields nothing and its reason is appended to `verdict`."""
    carry = b""
    total = 0
    index = 0
    ending = None
    while True:
        block = fh.read(chunk_bytes)
        if index == 0 and not carry and judge is not None:
            reason = _first_block_reason(block, chunk_bytes, judge)
            if reason:
                verdict.append(reason)
                return
            judge = None
        if not block:
            break
        total += len(block)
        if total > limit:
            raise SourceError(f"{where} expands beyond {limit} bytes, refused as a likely ZIP bomb")
        data = carry + block
        if ending is None:
            ending = line_ending(data)
        cut = data.rfind(ending)
        if cut < 0:
            carry = data
            continue
        cut += len(ending)
        carry = data[cut:]
        yield Payload(member, index, data[:cut], ending)
        index += 1
    if carry or index == 0:
        yield Payload(member, index, carry, ending or line_ending(carry))


def _never(head: bytes) -> None:
    return None


def _first_block_reason(block: bytes, chunk_bytes: int, judge) -> str | None:
    """Why a member whose first block this is is not data: empty (no rows), or `judge`'s reason."""
    if len(block) < min(chunk_bytes, 65536) and not block.strip(b" \t\r\n\0"):  # a whole, blank member
        return "empty (no rows)"
    return judge(block[:65536])
