"""Keyed pseudonymisation of the operation ID (運行ID): HMAC-SHA-256, key kept outside the warehouse.

The key comes from $ETC2CALM_ID_KEY, else from a key file ($ETC2CALM_ID_KEY_FILE, default
`$XDG_CONFIG_HOME/etc2calm/id_key`) created with mode 0600 and 32 random bytes (64 hex characters)
on first use. A key shorter than `MIN_KEY_BYTES` (16) bytes — blank, empty, or a short word — is
refused: with it anyone could recompute the pseudonyms. The warehouse records only the key's
`key_fingerprint` (a SHA-256 of the key under a fixed prefix, never the key), so an ingest with
another key is refused (`KeyMismatch`) instead of storing the same vehicles again under new
pseudonyms; `etc2calm ingest --rekey` rebuilds the warehouse under the new key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from config.settings import ENV_ID_KEY, ENV_ID_KEY_FILE

# 128 bits of the HMAC: collisions are negligible for any realistic number of vehicles.
DIGEST_HEX_CHARS = 32
MIN_KEY_BYTES = 16
_FINGERPRINT_PREFIX = b"etc2calm id key fingerprint v1\x00"


class IdKeyError(ValueError):
    """The pseudonymisation key is missing, too short, or not the warehouse's key."""


class KeyMismatch(IdKeyError):
    """The key's fingerprint differs from the one recorded in the warehouse."""


def default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "etc2calm" / "id_key"


def key_file() -> Path | None:
    """The key file in use, or None when the key comes from $ETC2CALM_ID_KEY."""
    if os.environ.get(ENV_ID_KEY) is not None:
        return None
    return Path(os.environ.get(ENV_ID_KEY_FILE) or default_key_file())


_HOW_TO = "generate one with: python3 -c 'import secrets; print(secrets.token_hex(32))'"


def load_id_key() -> bytes:
    """The pseudonymisation key: $ETC2CALM_ID_KEY, else a key file created with mode 0600 on first use.

    The key never lives in the Parquet store, so publishing the store does not allow
    re-identification by hashing candidate IDs. Raises IdKeyError for a key under 16 bytes
    (after stripping surrounding white space), naming where it came from.
    """
    env = os.environ.get(ENV_ID_KEY)
    if env is not None:
        key = env.strip().encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise IdKeyError(
                f"{ENV_ID_KEY} is {'blank' if not key else f'{len(key)} bytes'}: the ID key must hold at least "
                f"{MIN_KEY_BYTES} bytes ({_HOW_TO}), or unset it to use the key file"
            )
        return key
    path = Path(os.environ.get(ENV_ID_KEY_FILE) or default_key_file())
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    key = path.read_text().strip().encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise IdKeyError(
            f"ID key file {path} holds {'no key' if not key else f'{len(key)} bytes'}: the key must hold at least "
            f"{MIN_KEY_BYTES} bytes ({_HOW_TO} > {path})"
        )
    return key


def key_fingerprint(key: bytes) -> str:
    """A short public identifier of the key (SHA-256 under a fixed prefix): tells keys apart, reveals nothing."""
    return hashlib.sha256(_FINGERPRINT_PREFIX + key).hexdigest()[:16]


def pseudonymise_one(raw_id: str, key: bytes) -> str:
    return hmac.new(key, raw_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()[:DIGEST_HEX_CHARS]


def redact_misaligned_line(text: str, key: bytes) -> str:
    """A line whose fields cannot be aligned with the layout (wrong field count): every non-empty
    field is replaced by its pseudonym, since any of them may be the 運行ID whatever its shape.

    The line's shape (number of fields, which are empty) is kept; a field that is the ID becomes
    exactly the vehicle_key it would have had.
    """
    return ",".join(pseudonymise_one(f, key) if f.strip() else f for f in text.split(","))


def _digests(raw_ids: list, key: bytes) -> tuple[list, pa.Array]:
    """(vehicle_key hex, vehicle_id int64) of each distinct raw ID, one HMAC each; None / NULL for
    NULL or blank. The hex and ints are cut from all digests at once (not per ID in Python)."""
    raws = [(v or "").strip().encode("utf-8") for v in raw_ids]
    digest = hmac.digest
    blank = b"\0" * 32
    blob = b"".join([digest(key, r, "sha256") if r else blank for r in raws])
    hexed = blob.hex()
    hexes = [
        hexed[i : i + DIGEST_HEX_CHARS] if r else None for i, r in zip(range(0, len(hexed), 64), raws, strict=True)
    ]
    ints = np.frombuffer(blob, dtype=">i8")[::4].astype(np.int64)  # the first 8 bytes of each digest, big-endian
    return hexes, pa.array(ints, pa.int64(), mask=np.fromiter((not r for r in raws), bool, len(raws)))


class PseudonymMemo:
    """Pseudonyms of the raw IDs already met in one delivered file: its pieces share vehicles, so a
    large file costs one HMAC per distinct ID, not one per distinct ID per piece. It holds raw IDs:
    keep one only while that file is staged (etl.stage makes one per file)."""

    def __init__(self) -> None:
        self.raw = pa.array([], pa.string())
        self.hexes = pa.array([], pa.string())
        self.ints = pa.array([], pa.int64())

    def lookup(self, values: pa.Array, key: bytes) -> tuple[pa.Array, pa.Array]:
        """(vehicle_key hex, vehicle_id) of each of `values` (a string array of distinct raw IDs)."""
        pos = pc.index_in(values, value_set=self.raw)
        if pos.null_count:
            new = pc.is_null(pos)
            fresh = values.filter(new)
            hexes, ints = _digests(fresh.to_pylist(), key)
            start = len(self.raw)
            self.raw = pa.concat_arrays([self.raw, fresh])
            self.hexes = pa.concat_arrays([self.hexes, pa.array(hexes, pa.string())])
            self.ints = pa.concat_arrays([self.ints, ints])
            pos = pc.replace_with_mask(pos, new, pa.array(np.arange(start, start + len(fresh), dtype=np.int32)))
        return self.hexes.take(pos), self.ints.take(pos)


def pseudonymise_dict(
    ids: pa.Array | pa.ChunkedArray, key: bytes, memo: PseudonymMemo | None = None
) -> tuple[pa.DictionaryArray, pa.Array]:
    """(vehicle_key as a dictionary array, vehicle_id) for every raw ID: one HMAC per distinct ID
    (per file, with a `memo` shared by its pieces), nothing copied per row but the int64 id.
    NULL / blank IDs stay NULL."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    encoded = ids if pa.types.is_dictionary(ids.type) else pc.dictionary_encode(ids)
    dictionary, ints = (memo or PseudonymMemo()).lookup(encoded.dictionary.cast(pa.string()), key)
    indices = encoded.indices
    if dictionary.null_count:  # a NULL dictionary entry is a NULL key
        indices = pc.if_else(pc.is_null(dictionary.take(indices)), pa.scalar(None, indices.type), indices)
    return pa.DictionaryArray.from_arrays(indices, dictionary), ints.take(indices)


def pseudonymise_with_ids(ids: pa.Array | pa.ChunkedArray, key: bytes) -> tuple[pa.Array, pa.Array]:
    """(vehicle_key, vehicle_id) for every raw ID, one HMAC per distinct ID; NULL / blank IDs stay NULL.

    vehicle_key: first 128 bits of HMAC-SHA-256 as 32 hex characters; vehicle_id: the first
    8 bytes of the same digest as a signed big-endian int64 (fast distinct counts and joins).
    """
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    encoded = pc.dictionary_encode(ids)
    hexes, ints = PseudonymMemo().lookup(encoded.dictionary.cast(pa.string()), key)
    return hexes.take(encoded.indices), ints.take(encoded.indices)


__all__ = [
    "IdKeyError",
    "KeyMismatch",
    "PseudonymMemo",
    "MIN_KEY_BYTES",
    "key_file",
    "key_fingerprint",
    "load_id_key",
    "pseudonymise_one",
    "pseudonymise_dict",
    "pseudonymise_with_ids",
    "redact_misaligned_line",
]
