"""District definitions: declarative TOML files under data/districts/, nothing district-specific in code."""

from __future__ import annotations

import datetime as dt
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
    districts_dir,
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
    """One analysed district, as read from its TOML file."""

    key: str
    name_ja: str
    name_en: str
    ward_ja: str
    ward_code: str
    center_lat: float
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
    synthetic: dict = field(default_factory=dict)  # generator parameters ([synthetic] table)
    raw: dict = field(default_factory=dict)
    ward_en: str = ""
    devices: tuple[Device, ...] = ()  # [[devices]]: humps, narrowings (shown on map and sheet)
    publication: Publication = field(default_factory=Publication)  # [publication]: publisher, source line, date

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


def _publication(raw: dict, where: str) -> Publication:
    known = {"publisher_ja", "publisher_en", "source_ja", "source_en", "date", "headline_indicator"}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    values = {k: str(v) for k, v in raw.items() if k != "date"}
    if "date" in raw:
        values["date"] = _as_date(raw["date"], f"{where} date")
    try:
        return Publication(**values)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def load_district_file(path: str | Path) -> District:
    """Parse one district TOML file; raises ValueError naming the file on a bad definition."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    try:
        periods = {}
        for p in raw["periods"]:
            name = p["name"]
            periods[name] = Period(
                name=name,
                start=_as_date(p["start"], f"{path} period {name} start"),
                end=_as_date(p["end"], f"{path} period {name} end"),
                label_ja=p.get("label_ja", ""),
                label_en=p.get("label_en", ""),
            )
        analysis = raw.get("analysis", {})
        district = District(
            key=raw["key"],
            name_ja=raw["name_ja"],
            name_en=raw["name_en"],
            ward_ja=raw.get("ward_ja", ""),
            ward_code=str(raw.get("ward_code", "")),
            center_lat=float(raw["center"]["lat"]),
            center_lon=float(raw["center"]["lon"]),
            network_path=(path.parent / raw["network"]).resolve(),
            synthetic_network=bool(raw.get("synthetic_network", False)),
            periods=periods,
            default_before=analysis.get("before", "before"),
            default_after=analysis.get("after", "after"),
            treated_roads=tuple(str(r) for r in raw["roads"]["treated"]),
            comparison_roads=tuple(str(r) for r in raw["roads"].get("comparison", [])),
            source_path=path,
            area_path=(path.parent / raw["area"]).resolve() if raw.get("area") else None,
            exclude_highway=tuple(str(h) for h in raw.get("exclude_highway", EXCLUDED_HIGHWAY_CLASSES)),
            published=tuple(
                Published(
                    str(x["period"]),
                    str(x["indicator"]),
                    str(x.get("kind", "level")),
                    float(x["low"]),
                    float(x["high"]),
                    str(x.get("text", "")),
                    str(x.get("reference", "")),
                )
                for x in raw.get("published", [])
            ),
            gates=tuple(_gate(g, str(path)) for g in raw.get("gates", [])),
            synthetic=raw.get("synthetic", {}),
            raw=raw,
            ward_en=raw.get("ward_en", ""),
            devices=tuple(_device(d, f"{path} [[devices]] #{i + 1}") for i, d in enumerate(raw.get("devices", []))),
            publication=_publication(raw.get("publication", {}), f"{path} [publication]"),
        )
    except KeyError as exc:
        raise ValueError(f"{path}: missing required key {exc.args[0]!r}") from None
    for name in (district.default_before, district.default_after):
        district.period(name)  # validates
    ids = [g.id for g in district.gates]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: [[gates]] ids must be unique")
    if district.gates and district.area_path is None:
        raise ValueError(f"{path}: [[gates]] need the district outline (area = ...) to tell inside from outside")
    for pub in district.published:
        if pub.kind not in ("level", "change", "ratio") or (pub.kind != "level" and not pub.reference):
            raise ValueError(
                f"{path}: [[published]] {pub.indicator} {pub.period}: kind must be level, or change / ratio with a "
                "reference"
            )
        for name in (pub.period, pub.reference or pub.period):
            district.period(name)
    return district


def list_districts() -> list[District]:
    return [load_district_file(p) for p in sorted(districts_dir().glob("*.toml"))]


def load_district(key: str) -> District:
    """The district whose key (file stem) or Japanese/English name is `key`."""
    candidates = sorted(districts_dir().glob("*.toml"))
    for p in candidates:
        if p.stem == key:
            return load_district_file(p)
    for d in (load_district_file(p) for p in candidates):
        if key in (d.key, d.name_ja, d.name_en):
            return d
    known = ", ".join(p.stem for p in candidates) or "none"
    raise ValueError(f"unknown district {key!r} (known: {known})")
