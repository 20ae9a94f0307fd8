"""Keyed pseudonymisation of the operation ID (運行ID): HMAC-SHA-256, key kept outside the warehouse."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KEY_ENV = "ETC2CALM_ID_KEY"
KEY_FILE_ENV = "ETC2CALM_ID_KEY_FILE"
# 128 bits of the HMAC: collisions are negligible for any realistic number of vehicles.
DIGEST_HEX_CHARS = 32


def default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "etc2calm" / "id_key"


def load_id_key() -> bytes:
    """The pseudonymisation key: $ETC2CALM_ID_KEY, else a key file created with mode 0600 on first use.

    The key never lives in the Parquet store, so publishing the store does not allow
    re-identification by hashing candidate IDs.
    """
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode("utf-8")
    path = Path(os.environ.get(KEY_FILE_ENV) or default_key_file())
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")


def pseudonymise_one(raw_id: str, key: bytes) -> str:
    return hmac.new(key, raw_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()[:DIGEST_HEX_CHARS]


def pseudonymise_ids(ids: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """HMAC every distinct ID once (a Python call per vehicle, not per row) and map back by index."""
    encoded = pc.dictionary_encode(ids)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    dictionary = encoded.dictionary.to_pylist()
    hashed = pa.array([pseudonymise_one(v, key) for v in dictionary], type=pa.string())
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    return hashed.take(pa.array(np.asarray(indices, dtype=np.int64)))


def pseudonymise_with_ids(ids: pa.Array | pa.ChunkedArray, key: bytes) -> tuple[pa.Array, pa.Array]:
    """(vehicle_key, vehicle_id) for every raw ID, one HMAC per distinct ID; NULL / blank IDs stay NULL.

    vehicle_key: first 128 bits of HMAC-SHA-256 as 32 hex characters; vehicle_id: the first
    8 bytes of the same digest as a signed big-endian int64 (fast distinct counts and joins).
    """
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    encoded = pc.dictionary_encode(ids)
    dictionary = encoded.dictionary.to_pylist()
    hexes, ints = [], []
    for v in dictionary:
        raw = (v or "").strip()
        if not raw:
            hexes.append(None)
            ints.append(None)
            continue
        digest = hmac.new(key, raw.encode("utf-8"), hashlib.sha256).digest()
        hexes.append(digest.hex()[:DIGEST_HEX_CHARS])
        ints.append(int.from_bytes(digest[:8], "big", signed=True))
    indices = encoded.indices
    return pa.array(hexes, pa.string()).take(indices), pa.array(ints, pa.int64()).take(indices)
