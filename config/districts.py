"""District definitions: declarative TOML files (schema: docs/districts.md), nothing district-specific in code.

Where the files are found (the user's folders, then the bundled data/districts/): config.district_files.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import (
    DEFAULT_HEADLINE_SPEED_INDICATOR,
    DEFAULT_PUBLISHER,
    DEFAULT_SOURCE,
    DEVICE_KINDS,
    EXCLUDED_HIGHWAY_CLASSES,
    INDICATORS,
    PUBLIC_MIN_VEHICLES,
    SCREENING_MIN_VEHICLES,
)


def parse_date_range(text: str) -> tuple[dt.date, dt.date]:
    """'YYYY-MM-DD..YYYY-MM-DD' (inclusive) → (start, end); ValueError with a one-line reason."""
    parts = text.split("..")
    if len(parts) != 2:
        raise ValueError(f"bad date range {text!r}: expected YYYY-MM-DD..YYYY-MM-DD")
    try:
        start, end = (dt.date.fromisoformat(p.strip()) for p in parts)
    except ValueError:
        raise ValueError(f"bad date range {text!r}: expected YYYY-MM-DD..YYYY-MM-DD") from None
    if end < start:
        raise ValueError(f"bad date range {text!r}: end is before start")
    return start, end


@dataclass(frozen=True)
class Period:
    """A named, inclusive date range (JST calendar days of GPS時刻)."""

    name: str
    start: dt.date
    end: dt.date
    label_ja: str = ""
    label_en: str = ""

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period {self.name!r}: end {self.end} is before start {self.start}")

    @property
    def label(self) -> str:
        return self.label_ja or self.name


@dataclass(frozen=True)
class Device:
    """A traffic-calming device on a street ([[devices]] of a district file)."""

    kind: str  # one of config.settings.DEVICE_KINDS: 'hump' (ハンプ) | 'narrowing' (狭さく)
    lon: float  # EPSG:4326 degrees
    lat: float
    installed: dt.date  # first day in place (a social experiment counts)
    illustrative: bool = False  # True when the position is not surveyed (maps say "position illustrative")
    note_ja: str = ""
    note_en: str = ""

    def __post_init__(self) -> None:
        if self.kind not in DEVICE_KINDS:
            raise ValueError(f"device kind {self.kind!r} is not one of {', '.join(DEVICE_KINDS)}")
        if not (-180 <= self.lon <= 180 and -90 <= self.lat <= 90):
            raise ValueError(f"device position ({self.lon}, {self.lat}) is not longitude/latitude in degrees")


@dataclass(frozen=True)
class Publication:
    """Credits of a district's public outputs ([publication] of a district file; defaults in config.settings)."""

    publisher_ja: str = DEFAULT_PUBLISHER["ja"]
    publisher_en: str = DEFAULT_PUBLISHER["en"]
    source_ja: str = DEFAULT_SOURCE["ja"]
    source_en: str = DEFAULT_SOURCE["en"]
    date: dt.date | None = None  # fixed creation date printed on the outputs; None: the day they are written
    headline_indicator: str = (
        DEFAULT_HEADLINE_SPEED_INDICATOR  # speed indicator of the headline (mean | p85 | passage_*)
    )

    def __post_init__(self) -> None:
        if self.headline_indicator not in INDICATORS:
            raise ValueError(f"headline_indicator {self.headline_indicator!r} is not one of {', '.join(INDICATORS)}")

    def publisher(self, lang: str) -> str:
        return self.publisher_en if lang == "en" else self.publisher_ja

    def source(self, lang: str) -> str:
        return self.source_en if lang == "en" else self.source_ja


@dataclass(frozen=True)
class Published:
    """A published figure of the district ([[published]] in its file), to be set beside the measured one.

    indicator: the product's indicator of the same statistic (mean, p85, passage_share …); kind:
    'level' (of `period`), 'change' (period − reference) or 'ratio' (period / reference); low..high:
    the published value or range (fractions for shares); text: how it was published.
    """

    period: str
    indicator: str
    kind: str
    low: float
    high: float
    text: str
    reference: str = ""


@dataclass(frozen=True)
class Gate:
    """A gate of the district ([[gates]] in its file): where traffic enters or leaves the area.

    coords: one (lon, lat) for a point on the entering road, or two or more for a short line
    across it (EPSG:4326 degrees); road: the road id it lies on ('' = the nearest road of the network).
    """

    id: str
    name_ja: str
    coords: tuple[tuple[float, float], ...]
    road: str = ""


def _gate(raw: dict, where: str) -> Gate:
    gid = str(raw.get("id", "")).strip()
    if not gid:
        raise ValueError(f"{where}: a [[gates]] entry has no id")
    point, line = raw.get("point"), raw.get("line")
    if (point is None) == (line is None):
        raise ValueError(
            f"{where}: gate {gid!r} needs exactly one of point = {{ lat, lon }} or line = [[lon, lat], ...]"
        )
    try:
        coords = (
            ((float(point["lon"]), float(point["lat"])),)
            if point is not None
            else tuple((float(a), float(b)) for a, b in line)
        )
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{where}: gate {gid!r}: point = {{ lat, lon }} or line = [[lon, lat], [lon, lat]] in degrees"
        ) from None
    if line is not None and len(coords) < 2:
        raise ValueError(f"{where}: gate {gid!r}: a line needs two points or more")
    return Gate(gid, str(raw.get("name_ja", gid)), coords, str(raw.get("road", "")))


@dataclass(frozen=True)
class District:
    """One analysed district, as read from its TOML file (schema: docs/districts.md)."""

    key: str
    name_ja: str
    name_en: str
    ward_ja: str
    ward_code: str
    center_lat: float  # representative point, EPSG:4326 degrees (NaN when the file gives none)
    center_lon: float
    network_path: Path
    synthetic_network: bool
    periods: dict[str, Period]
    default_before: str
    default_after: str
    treated_roads: tuple[str, ...]
    comparison_roads: tuple[str, ...]
    source_path: Path
    area_path: Path | None = None  # district outline (GeoJSON), if the file names one
    exclude_highway: tuple[str, ...] = EXCLUDED_HIGHWAY_CLASSES  # OSM classes left out of the network
    published: tuple[Published, ...] = ()  # published figures ([[published]])
    gates: tuple[Gate, ...] = ()  # declared gates ([[gates]]); none: derived where roads cross the outline
    synthetic: dict = field(default_factory=dict)  # generator parameters ([synthetic] table, or the file it names)
    raw: dict = field(default_factory=dict)
    ward_en: str = ""
    devices: tuple[Device, ...] = ()  # [[devices]]: humps, narrowings (shown on map and sheet)
    publication: Publication = field(default_factory=Publication)  # [publication]: publisher, source line, date
    road_names: dict[str, tuple[str, str]] = field(default_factory=dict)  # [roads.names]: id → (ja, en)
    screening_min_vehicles: int = SCREENING_MIN_VEHICLES  # [screening] min_vehicles
    public_min_vehicles: int = PUBLIC_MIN_VEHICLES  # [publication] min_vehicles (never below the product's)

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" and self.name_en else self.name_ja

    def ward(self, lang: str) -> str:
        return self.ward_en if lang == "en" else self.ward_ja

    def period(self, name: str) -> Period:
        try:
            return self.periods[name]
        except KeyError:
            known = ", ".join(self.periods)
            raise ValueError(f"district {self.key!r} has no period {name!r} (known: {known})") from None


def _as_date(value, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not a date YYYY-MM-DD") from None


def _device(raw: dict, where: str) -> Device:
    try:
        return Device(
            kind=str(raw["kind"]),
            lon=float(raw["lon"]),
            lat=float(raw["lat"]),
            installed=_as_date(raw["installed"], f"{where} installed"),
            illustrative=bool(raw.get("illustrative", False)),
            note_ja=str(raw.get("note_ja", "")),
            note_en=str(raw.get("note_en", "")),
        )
    except KeyError as exc:
        raise ValueError(f"{where}: missing required key {exc.args[0]!r}") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


PUBLICATION_KEYS = ("publisher_ja", "publisher_en", "source_ja", "source_en", "date", "headline_indicator")


def _publication(raw: dict, where: str) -> Publication:
    known = set(PUBLICATION_KEYS) | {"min_vehicles"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    values = {k: str(v) for k, v in raw.items() if k in PUBLICATION_KEYS and k != "date"}
    if "date" in raw:
        values["date"] = _as_date(raw["date"], f"{where} date")
    try:
        return Publication(**values)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


# The keys a district file may hold (docs/districts.md): required ones are marked there and checked here.
TOP_KEYS = (
    "key",
    "name_ja",
    "name_en",
    "ward_ja",
    "ward_en",
    "ward_code",
    "center",
    "network",
    "area",
    "synthetic_network",
    "area_m2",
    "population_2015",
    "exclude_highway",
    "roads",
    "analysis",
    "screening",
    "publication",
    "periods",
    "devices",
    "gates",
    "published",
    "synthetic",
)
SECTION_KEYS = {
    "roads": ("treated", "comparison", "names"),
    "analysis": ("before", "after"),
    "screening": ("min_vehicles",),
    "center": ("lat", "lon"),
}


class _Problems:
    """Every problem of one district file, collected so that all are reported at once."""

    def __init__(self, path: Path):
        self.path, self.items = path, []

    def add(self, text: str) -> None:
        self.items.append(text)

    def run(self, what, default=None):
        """`what()`, or `default` after recording its ValueError / KeyError / TypeError."""
        try:
            return what()
        except KeyError as exc:
            self.add(f"missing required key {exc.args[0]!r}")
        except (ValueError, TypeError) as exc:
            self.add(str(exc).removeprefix(f"{self.path}: ").removeprefix(f"{self.path} "))
        return default


def _text(raw: dict, key: str, problems: _Problems, required: bool = False) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            problems.add(f"missing required key {key!r}")
        return ""
    if not isinstance(value, str):
        problems.add(f"{key} must be text, got {value!r}")
        return ""
    return value


def _unknown_keys(raw: dict, problems: _Problems) -> None:
    for key in sorted(set(raw) - set(TOP_KEYS)):
        problems.add(f"unknown key {key!r} (known: {', '.join(TOP_KEYS)})")
    for section, known in SECTION_KEYS.items():
        table = raw.get(section)
        if table is not None and not isinstance(table, dict):
            problems.add(f"{section} must be a table")
            continue
        for key in sorted(set(table or {}) - set(known)):
            problems.add(f"unknown key {key!r} in [{section}] (known: {', '.join(known)})")


def _periods(raw: dict, problems: _Problems) -> dict[str, Period]:
    items = raw.get("periods")
    if not items:
        problems.add("missing required [[periods]] (at least the before and after periods)")
        return {}
    periods: dict[str, Period] = {}
    for i, p in enumerate(items):
        name = str(p.get("name", "")) if isinstance(p, dict) else ""
        if not name:
            problems.add(f"[[periods]] #{i + 1} has no name")
            continue
        if name in periods:
            problems.add(f"period {name!r} is given twice")
        where = f"period {name}"

        def make(p=p, name=name, where=where):
            return Period(
                name=name,
                start=_as_date(p["start"], f"{where} start"),
                end=_as_date(p["end"], f"{where} end"),
                label_ja=str(p.get("label_ja", "")),
                label_en=str(p.get("label_en", "")),
            )

        period = problems.run(make)
        if period is not None:
            periods[name] = period
    return periods


def _ids(value, what: str, problems: _Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int):
        value = [value]
    if not isinstance(value, list):
        problems.add(f"{what} must be a list of road ids")
        return ()
    return tuple(str(v) for v in value)


def _roads(raw: dict, problems: _Problems) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, tuple[str, str]]]:
    roads = raw.get("roads") if isinstance(raw.get("roads"), dict) else {}
    treated = _ids(roads.get("treated"), "[roads] treated", problems)
    if not treated:
        problems.add("missing required [roads] treated = [road id, …] (the treated street)")
    comparison = _ids(roads.get("comparison"), "[roads] comparison", problems)
    both = sorted(set(treated) & set(comparison))
    if both:
        problems.add(f"road(s) {', '.join(both)} are both treated and comparison")
    names = {}
    for rid, value in (roads.get("names") or {}).items():
        if isinstance(value, str):
            names[str(rid)] = (value, "")
        elif isinstance(value, dict) and set(value) <= {"ja", "en"} and "ja" in value:
            names[str(rid)] = (str(value["ja"]), str(value.get("en", "")))
        else:
            problems.add(f'[roads.names] {rid}: give "名前" or {{ ja = "名前", en = "Name" }}')
    return treated, comparison, names


def _min_vehicles(table, where: str, default: int, floor: int, problems: _Problems) -> int:
    value = (table or {}).get("min_vehicles") if isinstance(table, dict) else None
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < floor:
        problems.add(f"{where} min_vehicles must be a whole number of at least {floor}, got {value!r}")
        return default
    return value


def _synthetic(raw: dict, path: Path, problems: _Problems) -> dict:
    """The generator parameters: the [synthetic] table, or the TOML file `synthetic = "…"` names."""
    value = raw.get("synthetic", {})
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        problems.add('synthetic must be a table [synthetic] or the name of a TOML file (synthetic = "…")')
        return {}
    file = (path.parent / value).resolve()
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.add(f"synthetic file {file} does not exist")
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.add(f"synthetic file {file} is not readable TOML ({exc})")
    return {}


def _center(raw: dict, problems: _Problems) -> tuple[float, float]:
    center = raw.get("center")
    if center is None:
        return math.nan, math.nan
    lat = problems.run(lambda: float(center["lat"]), math.nan)
    lon = problems.run(lambda: float(center["lon"]), math.nan)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        problems.add("center = { lat, lon } must be in degrees (EPSG:4326)")
    return lat, lon


def _file(raw: dict, key: str, path: Path, problems: _Problems, required: bool = False) -> Path | None:
    text = _text(raw, key, problems, required)
    return (path.parent / text).resolve() if text else None


def _published(raw: dict, problems: _Problems) -> tuple[Published, ...]:
    def make(x):
        return Published(
            str(x["period"]),
            str(x["indicator"]),
            str(x.get("kind", "level")),
            float(x["low"]),
            float(x["high"]),
            str(x.get("text", "")),
            str(x.get("reference", "")),
        )

    out = [problems.run(lambda x=x: make(x)) for x in raw.get("published", [])]
    return tuple(p for p in out if p is not None)


def _listed(raw: dict, key: str, make, path: Path, problems: _Problems) -> tuple:
    out = [problems.run(lambda i=i, x=x: make(x, f"[[{key}]] #{i + 1}")) for i, x in enumerate(raw.get(key, []))]
    return tuple(x for x in out if x is not None)


def _district(raw: dict, path: Path, problems: _Problems) -> District:
    """The District of a parsed file; problems of single fields are recorded, not raised."""
    _unknown_keys(raw, problems)
    analysis = raw.get("analysis") if isinstance(raw.get("analysis"), dict) else {}
    treated, comparison, names = _roads(raw, problems)
    lat, lon = _center(raw, problems)
    publication = raw.get("publication") if isinstance(raw.get("publication"), dict) else {}
    return District(
        key=_text(raw, "key", problems) or path.stem,
        name_ja=_text(raw, "name_ja", problems, required=True),
        name_en=_text(raw, "name_en", problems),
        ward_ja=_text(raw, "ward_ja", problems),
        ward_code=str(raw.get("ward_code", "")),
        center_lat=lat,
        center_lon=lon,
        network_path=_file(raw, "network", path, problems, required=True) or path.parent,
        synthetic_network=bool(raw.get("synthetic_network", False)),
        periods=_periods(raw, problems),
        default_before=str(analysis.get("before", "before")),
        default_after=str(analysis.get("after", "after")),
        treated_roads=treated,
        comparison_roads=comparison,
        source_path=path,
        area_path=_file(raw, "area", path, problems),
        exclude_highway=tuple(str(h) for h in raw.get("exclude_highway", EXCLUDED_HIGHWAY_CLASSES)),
        published=_published(raw, problems),
        gates=_listed(raw, "gates", lambda g, where: _gate(g, where), path, problems),
        synthetic=_synthetic(raw, path, problems),
        raw=raw,
        ward_en=_text(raw, "ward_en", problems),
        devices=_listed(raw, "devices", _device, path, problems),
        publication=problems.run(lambda: _publication(publication, "[publication]"), Publication()),
        road_names=names,
        screening_min_vehicles=_min_vehicles(raw.get("screening"), "[screening]", SCREENING_MIN_VEHICLES, 1, problems),
        public_min_vehicles=_min_vehicles(
            publication, "[publication]", PUBLIC_MIN_VEHICLES, PUBLIC_MIN_VEHICLES, problems
        ),
    )


def _consistency(district: District, problems: _Problems) -> None:
    """Problems between fields: the default periods exist, gates are unique and have an outline, the
    published figures name real periods."""
    declared = [str(p.get("name", "")) for p in district.raw.get("periods") or [] if isinstance(p, dict)]
    if declared:  # (no [[periods]] at all is reported once, by _periods)
        for name in (district.default_before, district.default_after):
            if name not in declared:
                problems.add(f"no period {name!r} (known: {', '.join(declared)}); [analysis] names it")
    ids = [g.id for g in district.gates]
    if len(set(ids)) != len(ids):
        problems.add("[[gates]] ids must be unique")
    if district.gates and district.area_path is None:
        problems.add("[[gates]] need the district outline (area = ...) to tell inside from outside")
    for pub in district.published:
        if pub.kind not in ("level", "change", "ratio") or (pub.kind != "level" and not pub.reference):
            problems.add(
                f"[[published]] {pub.indicator} {pub.period}: kind must be level, or change / ratio with a reference"
            )
        for name in (pub.period, pub.reference or pub.period):
            if district.periods and name not in district.periods:
                problems.add(f"[[published]] {pub.indicator}: no period {name!r}")


def read_district_file(path: str | Path) -> tuple[District | None, list[str]]:
    """Parse one district TOML file: (the District, or None when unreadable; every problem found).

    The problems of the file's own fields, all of them: missing required keys, unknown keys, bad
    dates, periods, ids, gates, devices, published figures. Whether the network, outline and road
    ids exist is checked by `etc2calm district check` (etc2calm/_district_cmd.py)."""
    path = Path(path)
    problems = _Problems(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, [f"district file {path} does not exist"]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"cannot read {path}: {exc}"]
    except tomllib.TOMLDecodeError as exc:
        return None, [f"not valid TOML ({exc})"]
    district = _district(raw, path, problems)
    _consistency(district, problems)
    return district, problems.items


def load_district_file(path: str | Path) -> District:
    """Parse one district TOML file; raises ValueError naming the file and every problem of it (one line)."""
    district, problems = read_district_file(path)
    if problems:
        raise ValueError(f"{path}: {'; '.join(problems)}")
    return district


def list_districts() -> list[District]:
    """Every district: those of the user's folders (ETC2CALM_DISTRICTS), then the bundled ones
    (config.district_files; the first folder wins on a duplicate key)."""
    from config.district_files import find_districts

    return [load_district_file(s.path) for s in find_districts().found]


def bundled_districts() -> list[District]:
    """The bundled districts (the demo's), whatever the user's folders."""
    from config.district_files import bundled_districts as files

    return [load_district_file(p) for p in files()]


def load_district(key: str) -> District:
    """The district whose key (the file's `key`, else its stem) or Japanese/English name is `key`, in
    the districts folders (config.district_files); a path to a TOML file is read as it is."""
    from config.district_files import find_district

    return load_district_file(find_district(key))
