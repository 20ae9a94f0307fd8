"""District files: where they are found — the user's folders first, then the bundled ones.

Search order (docs/districts.md):
1. the folders given explicitly (the flows pass the Prefect variable ``etc2calm_districts``), else
   the folders of ``$ETC2CALM_DISTRICTS`` (one or more, separated by ``os.pathsep``);
2. the bundled districts (``data/districts/``, 大倉山三丁目 and 中山町), unless
   ``$ETC2CALM_BUNDLED_DISTRICTS`` is 0 / no / false / off.

Each ``*.toml`` file of a folder is one district; its key is the file's ``key`` field, else its
stem. When two files have the same key, the first in search order wins and the other is reported
as shadowed (`etc2calm district list` warns). A reference that names an existing ``.toml`` file
(a path) is read as it is, whatever the folders.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import bundled_districts_enabled, district_folders_from_env, districts_dir


@dataclass(frozen=True)
class DistrictSource:
    """One district file found in a folder."""

    key: str
    path: Path
    folder: Path
    bundled: bool
    name_ja: str = ""
    name_en: str = ""
    problem: str = ""  # the file is not valid TOML (it is still listed, under its stem)


@dataclass(frozen=True)
class Found:
    """The districts of every folder: `found` in search order (one per key), `shadowed` the files whose
    key an earlier folder already has, `folders` the folders searched ((path, bundled) in order)."""

    found: list[DistrictSource]
    shadowed: list[tuple[DistrictSource, DistrictSource]] = field(default_factory=list)  # (hidden, winner)
    folders: list[tuple[Path, bool]] = field(default_factory=list)


def parse_folders(value: str | Sequence[str | Path] | None) -> list[Path]:
    """Folders from an os.pathsep-separated text (the Prefect variable, the environment) or a list."""
    if value is None:
        return []
    items = value.split(os.pathsep) if isinstance(value, str) else [str(v) for v in value]
    return [Path(p.strip()).expanduser() for p in items if p and p.strip()]


def district_folders(folders: str | Sequence[str | Path] | None = None) -> list[tuple[Path, bool]]:
    """(folder, bundled) in search order: `folders` (else $ETC2CALM_DISTRICTS), then the bundled one."""
    user = parse_folders(folders) if folders else district_folders_from_env()
    out = [(p, False) for p in user]
    if bundled_districts_enabled():
        out.append((districts_dir(), True))
    return out


def _source(path: Path, folder: Path, bundled: bool) -> DistrictSource:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return DistrictSource(path.stem, path, folder, bundled, problem=f"not valid TOML ({exc})")
    key = raw.get("key") if isinstance(raw.get("key"), str) and raw.get("key") else path.stem
    name_ja, name_en = raw.get("name_ja", ""), raw.get("name_en", "")
    return DistrictSource(key, path, folder, bundled, str(name_ja), str(name_en))


def find_districts(folders: str | Sequence[str | Path] | None = None) -> Found:
    """Every district file of the folders (district_folders), the first of each key winning."""
    searched = district_folders(folders)
    found: dict[str, DistrictSource] = {}
    shadowed = []
    for folder, bundled in searched:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            src = _source(path, folder, bundled)
            if src.key in found:
                shadowed.append((src, found[src.key]))
            else:
                found[src.key] = src
    return Found(list(found.values()), shadowed, searched)


def bundled_districts() -> list[Path]:
    """The bundled district files (data/districts/*.toml: 大倉山三丁目, 中山町), whatever the user's folders."""
    return sorted(districts_dir().glob("*.toml"))


def is_path(ref: str) -> bool:
    """Does a --district reference name a file (ends in .toml, or holds a path separator)?"""
    return ref.endswith(".toml") or os.sep in ref or (os.altsep is not None and os.altsep in ref)


def find_district(ref: str, folders: str | Sequence[str | Path] | None = None) -> Path:
    """The file of a district: `ref` itself when it names a .toml file, else the file whose key (then
    Japanese or English name) is `ref` in the folders. ValueError naming the folders searched."""
    if is_path(ref):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise ValueError(f"district file {ref} does not exist")
        return path.resolve()
    result = find_districts(folders)
    for src in result.found:
        if src.key == ref:
            return src.path
    for src in result.found:
        if ref in (src.name_ja, src.name_en):
            return src.path
    known = ", ".join(s.key for s in result.found) or "none"
    where = ", ".join(str(f) for f, _ in result.folders if f.is_dir()) or "no folder"
    raise ValueError(f"unknown district {ref!r} (known: {known}; searched {where})")


def new_district_folder(folders: str | Sequence[str | Path] | None = None) -> Path:
    """Where `etc2calm district new` writes: the first user folder (never the package's)."""
    user = parse_folders(folders) if folders else district_folders_from_env()
    if not user:
        raise ValueError(
            "no districts folder: set ETC2CALM_DISTRICTS to a folder of your own (e.g. export "
            "ETC2CALM_DISTRICTS=$HOME/etc2calm-districts) or give --folder DIR; new districts are never written "
            "into the package"
        )
    return user[0]
