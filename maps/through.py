"""Through traffic by gates in the publications: the stored gate classification (analysis.gates) of
the compared periods, shaped for the report's tables and the map's markers and panel.

Everything comes from maps.public.PublicResults.gates (maps.public.public_gates): a cell under the
publication threshold says 「データ不足」, a cell withheld so that no hidden cell can be had by
subtraction says 「—」; totals only where they rest on enough vehicles.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass

import pandas as pd

import maps.wording as w
from config.settings import GATE_CLASSES, GATE_TIME_BANDS, PUBLIC_MIN_VEHICLES
from maps.public import PublicResults

WITHHELD = "—"  # a cell withheld so that a suppressed one cannot be had by subtraction (explained in the note)


def tt(key: str, lang: str = "ja", **kw) -> str:
    """The gates' text `key` (maps.wording's gates.<key>) in `lang`."""
    return w.t(f"gates.{key}", lang, **kw)


def class_label(cls: str, lang: str = "ja") -> str:
    return tt(f"class_{cls}", lang)


def class_meaning(cls: str, lang: str = "ja") -> str:
    return tt(f"meaning_{cls}", lang)


def band_label(band: str, lang: str = "ja") -> str:
    """'7-9' → '7〜9時' / '7:00–9:00'; 'all' → '全日' / 'whole day'."""
    if band == "all":
        return tt("band_all", lang)
    a, b = band.split("-")
    return tt("band_hours", lang, a=a, b=b)


def _day(v) -> dt.date:
    return pd.Timestamp(v).date()


def of_period(frame: pd.DataFrame, period) -> pd.DataFrame:
    """Rows of a gate table (gate rows carry the district's period names) for one compared period."""
    if frame is None or frame.empty:
        return pd.DataFrame(columns=getattr(frame, "columns", []))
    keep = [
        (_day(a), _day(b)) == (period.start, period.end)
        for a, b in zip(frame["period_start"], frame["period_end"], strict=True)
    ]
    return frame[keep]


def gate_names(pub: PublicResults, lang: str = "ja") -> dict[str, str]:
    """gate_id → 'G13 対策道路（合成） 西側' / 'G13 Treated street (synthetic), west side' (derived gates named
    from the road's English name and the side; declared gates keep their name)."""
    gates = pub.gates["gates"] if pub.gates else pd.DataFrame()
    labels = w.road_labels(pub.roads) if len(pub.roads) else {}
    return {str(g.gate_id): f"{g.gate_id} {gate_name(g, labels, lang)}" for g in gates.itertuples()}


def gate_name(gate, labels: dict[str, dict[str, str]], lang: str = "ja") -> str:
    """A gate's name: a declared gate's own; a derived one's from its road as every output names it
    (maps.wording.road_labels: an unnamed way by its class and number) and the side of the district
    ('生活道路 #3（名称なし） 北側' / 'Residential street #3 (unnamed), north side')."""
    name = str(gate.gate_name)
    if gate.source != "derived" or not name.endswith("側") or " " not in name:
        return name
    road, side = name[:-1].rsplit(" ", 1)
    road = labels[str(gate.road_id)][lang] if str(gate.road_id) in labels else road
    if lang == "en":
        side_en = tt(f"side_{side}", "en") if f"gates.side_{side}" in w.TEXT else side
        return f"{road}, {side_en} side"
    return f"{road} {side}側"


def gate_label(gate_id: str, names: dict[str, str], lang: str = "ja") -> str:
    if gate_id in ("?", ""):
        return tt("unknown_gate", lang)
    return names.get(gate_id, gate_id)


@dataclass
class Cell:
    status: str  # ok | suppressed | withheld | nodata
    trips: float = math.nan
    share: float = math.nan


def class_cells(pub: PublicResults, period, band: str = "all") -> tuple[dict[str, Cell], float]:
    """Per class the public cell of one compared period and time band, and the band's trips (NaN when
    not published)."""
    s = of_period(pub.gates["summary"] if pub.gates else None, period)
    s = s[s["time_band"] == band] if len(s) else s
    cells = {c: Cell("nodata") for c in GATE_CLASSES}
    total = math.nan
    for r in s.itertuples():
        cells[r.gate_class] = Cell(r.public, r.n_trips, r.share_trips)
        if not pd.isna(r.group_trips):
            total = float(r.group_trips)
    return cells, total


def through_pairs(pub: PublicResults, periods: dict, top: int = 10) -> list[tuple[str, str, dict[str, Cell]]]:
    """The busiest public through pairs (entry gate, exit gate, {period key: Cell}) over the compared
    periods, whole day; a pair public in one period only shows its status in the other."""
    od = pub.gates["od"] if pub.gates else pd.DataFrame()
    cells: dict[tuple[str, str], dict[str, Cell]] = {}
    for key, period in periods.items():
        o = of_period(od, period)
        if o.empty:
            continue
        o = o[(o["time_band"] == "all") & (o["gate_class"] == "through")]
        for r in o.itertuples():
            cells.setdefault((str(r.entry_gate), str(r.exit_gate)), {})[key] = Cell(r.public, r.n_trips)
    public = [(pair, c) for pair, c in cells.items() if any(x.status == "ok" for x in c.values())]
    public.sort(key=lambda pc: (-max((x.trips for x in pc[1].values() if x.status == "ok"), default=0), pc[0]))
    return [(a, b, c) for (a, b), c in public[:top]]


def cell_text(cell: Cell, what: str, lang: str, k: int = PUBLIC_MIN_VEHICLES) -> str:
    """A cell as printed: trips ('7,224'), share ('36.7%'), 「データ不足」, '—' (withheld) or 「データなし」."""
    if cell.status == "suppressed":
        return w.too_few(k, lang, short=True)
    if cell.status == "withheld":
        return WITHHELD
    if (
        cell.status == "nodata"
        or (what == "trips" and pd.isna(cell.trips))
        or (what == "share" and pd.isna(cell.share))
    ):
        return w.no_data(lang)
    return w.fmt_count(cell.trips) if what == "trips" else w.fmt_value("share", cell.share, lang)


def has_gates(pub: PublicResults) -> bool:
    return (
        bool(pub.gates)
        and not pub.gates["summary"].empty
        and any(len(of_period(pub.gates["summary"], p)) for p in pub.periods.values())
    )


def gate_layer(pub: PublicResults) -> dict | None:
    """FeatureCollection of the district's gates (points with id and name in both languages), or None."""
    if not pub.gates or pub.gates["gates"].empty:
        return None
    names = {lang: gate_names(pub, lang) for lang in w.LANGS}
    feats = []
    for g in pub.gates["gates"].itertuples():
        if pd.isna(g.lon) or pd.isna(g.lat):
            continue
        tip = {
            lang: f"<b>{html.escape(names[lang][str(g.gate_id)])}</b><br>{html.escape(tt('legend_gate', lang))}"
            for lang in w.LANGS
        }
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [float(g.lon), float(g.lat)]},
                "properties": {"id": str(g.gate_id), "tip": tip},
            }
        )
    return {"type": "FeatureCollection", "features": feats} if feats else None


__all__ = [
    "tt",
    "class_label",
    "class_meaning",
    "band_label",
    "of_period",
    "gate_names",
    "gate_name",
    "gate_label",
    "Cell",
    "class_cells",
    "through_pairs",
    "cell_text",
    "has_gates",
    "gate_layer",
    "GATE_TIME_BANDS",
]
