"""Export for the city's GIS staff: road geometries with every stored figure per period and the change,
as GeoPackage (.gpkg, via pyogrio) or GeoParquet (.parquet, via geopandas), readable by QGIS.

The figures are road_period_stats as stored (full precision, nothing recomputed), suppressed as on
the map: a road and period with fewer than the publication threshold of distinct vehicles has no
figure and no count (its `<period>_public` says 'suppressed'); a change needs both periods public.
Layer names and columns are documented in docs/export.md, generated from this module
(`python -m maps.export`).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from analysis.results import load_road_period_stats
from config.districts import District
from config.settings import METRIC_CRS, PUBLIC_MIN_VEHICLES
from maps.public import STATS_FIGURES, public_stats

FORMATS = {".gpkg": "GeoPackage", ".parquet": "GeoParquet"}
DOC_PATH = Path("docs") / "export.md"

ROAD_COLUMNS: dict[str, str] = {
    "road_id": "the road network feature's id as text",
    "name": "street name (Japanese) from the network file",
    "name_en": "English street name from the network file ('' when absent)",
    "role": "treated (対策道路) | comparison (比較道路) | arterial | residential | other",
    "limit_kmh": "speed limit, km/h",
}
PERIOD_COLUMNS: dict[str, str] = {
    "period_start": "first day of the period, inclusive (JST calendar day of GPS時刻), YYYY-MM-DD",
    "period_end": "last day of the period, inclusive",
    "public": "'ok' (figures published), 'suppressed' (fewer than k distinct vehicles: no figure, no count) "
    "or 'nodata' (no vehicle)",
    "n_points": "matched ETC2.0 records on the road",
    "n_vehicles": "distinct pseudonymised vehicles (運行ID)",
    "mean_kmh": "mean of the records' instantaneous speeds, km/h",
    "p85_kmh": "85th percentile of the records' speeds, km/h",
    "share_at_or_over_limit": "fraction (0–1) of records at or over the limit",
    "share_at_or_over_limit_plus_10": "fraction (0–1) of records at or over the limit + 10 km/h",
    "n_passages": "passages with a speed: one vehicle's traversal of the road (consecutive records of one trip)",
    "passage_mean_kmh": "mean of the passages' speeds (a passage's speed: its section travel speed, the road's "
    "distance over the time taken), km/h",
    "passage_p85_kmh": "85th percentile of the passages' speeds, km/h",
    "passage_share_at_or_over_limit": 'fraction (0–1) of passages at or over the limit: the "share of vehicles"',
    "passage_spot_mean_kmh": "sensitivity: mean over the same passages of the mean of their records' "
    "instantaneous speeds, km/h",
}
CHANGE_FIGURES = (
    "mean_kmh",
    "p85_kmh",
    "share_at_or_over_limit",
    "share_at_or_over_limit_plus_10",
    "passage_mean_kmh",
    "passage_p85_kmh",
    "passage_share_at_or_over_limit",
    "passage_spot_mean_kmh",
)
LAYERS = {
    "roads": "one row per road: every stored figure of every period as <period>_<column>, and change_<column> = "
    "after − before of the unrounded stored figures (GeoPackage and GeoParquet)",
    "road_periods": "one row per road and period (long form: the period in column `period`), same figures "
    "(GeoPackage only)",
    "devices": "traffic-calming devices of the district file: kind, installed, illustrative (GeoPackage only, "
    "when the district has devices)",
}


@dataclass
class ExportResult:
    path: Path
    format: str  # 'GeoPackage' | 'GeoParquet'
    layers: dict[str, int]  # layer → rows
    periods: list[str]
    change: tuple[str, str] | None  # (before, after) of the change columns, when both were stored


def column_prefix(period: str) -> str:
    """A period label as a column prefix: lower case letters, digits and underscores."""
    text = re.sub(r"[^0-9a-z_]+", "_", period.lower()).strip("_") or "period"
    return f"p_{text}" if text[0].isdigit() else text


def _frames(roads: gpd.GeoDataFrame, stats: pd.DataFrame, before: str, after: str, k: int):
    pub = public_stats(stats, k)
    for col in ("n_points", "n_vehicles", "n_passages"):  # counts stay integers, empty when suppressed
        if col in pub.columns:
            pub[col] = pub[col].round().astype("Int64")
    pub["period_start"] = pd.to_datetime(pub["period_start"]).dt.strftime("%Y-%m-%d")
    pub["period_end"] = pd.to_datetime(pub["period_end"]).dt.strftime("%Y-%m-%d")
    pub["road_id"] = pub["road_id"].astype(str)
    base = roads.copy()
    base["road_id"] = base["road_id"].astype(str)
    for col in ("name_en", "role"):
        if col not in base.columns:
            base[col] = ""
    base = base[[*ROAD_COLUMNS, "geometry"]]
    periods = list(dict.fromkeys(pub.sort_values(["period_start", "period_end"])["period"]))
    figure_cols = ["period_start", "period_end", "public", *[c for c in STATS_FIGURES if c in pub.columns]]
    wide = base.copy()
    for period in periods:
        rows = pub[pub["period"] == period].set_index("road_id")[figure_cols]
        rows.columns = [f"{column_prefix(period)}_{c}" for c in rows.columns]
        wide = wide.merge(rows, left_on="road_id", right_index=True, how="left")
        wide[f"{column_prefix(period)}_public"] = wide[f"{column_prefix(period)}_public"].fillna("nodata")
    change = None
    if before in periods and after in periods and before != after:
        change = (before, after)
        b, a = column_prefix(before), column_prefix(after)
        for col in CHANGE_FIGURES:
            if f"{a}_{col}" in wide.columns:
                wide[f"change_{col}"] = wide[f"{a}_{col}"] - wide[f"{b}_{col}"]  # NaN unless both periods are public
    long = base.merge(pub[["road_id", "period", *figure_cols]], on="road_id", how="inner")
    return (
        gpd.GeoDataFrame(wide, geometry="geometry", crs=roads.crs),
        gpd.GeoDataFrame(long, geometry="geometry", crs=roads.crs),
        periods,
        change,
    )


def export_figures(
    roads: gpd.GeoDataFrame,
    stats: pd.DataFrame,
    out: str | Path,
    *,
    before: str = "before",
    after: str = "after",
    devices: tuple = (),
    public_min_vehicles: int = PUBLIC_MIN_VEHICLES,
) -> ExportResult:
    """Write road geometries with their stored figures (suppressed) to `out` (.gpkg or .parquet)."""
    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"{out}: give a .gpkg (GeoPackage) or .parquet (GeoParquet) file name")
    if out.is_dir():
        raise ValueError(f"{out} is a folder: give a file name (e.g. {out / 'roads.gpkg'})")
    if stats.empty:
        raise ValueError("no stored figures for these roads: run 'etc2calm analyze' first")
    roads = roads.to_crs(METRIC_CRS)
    wide, long, periods, change = _frames(roads, stats, before, after, public_min_vehicles)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    os.unlink(tmp)
    layers = {}
    try:
        if fmt == "GeoParquet":
            wide.to_parquet(tmp, index=False, compression="zstd", geometry_encoding="WKB", schema_version="1.0.0")
            layers["roads"] = len(wide)
        else:
            wide.to_file(
                tmp, layer="roads", driver="GPKG", engine="pyogrio", layer_options={"DESCRIPTION": LAYERS["roads"]}
            )
            long.to_file(
                tmp,
                layer="road_periods",
                driver="GPKG",
                engine="pyogrio",
                mode="a",
                layer_options={"DESCRIPTION": LAYERS["road_periods"]},
            )
            layers["roads"], layers["road_periods"] = len(wide), len(long)
            if devices:
                dev = gpd.GeoDataFrame(
                    {
                        "kind": [d.kind for d in devices],
                        "installed": [d.installed.isoformat() for d in devices],
                        "illustrative": [bool(d.illustrative) for d in devices],
                    },
                    geometry=gpd.points_from_xy([d.lon for d in devices], [d.lat for d in devices]),
                    crs="EPSG:4326",
                ).to_crs(METRIC_CRS)
                dev.to_file(
                    tmp,
                    layer="devices",
                    driver="GPKG",
                    engine="pyogrio",
                    mode="a",
                    layer_options={"DESCRIPTION": LAYERS["devices"]},
                )
                layers["devices"] = len(dev)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ExportResult(out, fmt, layers, periods, change)


def export_district(
    warehouse: str | Path, district: District, out: str | Path, *, public_min_vehicles: int = PUBLIC_MIN_VEHICLES
) -> ExportResult:
    """Every stored period of a district's roads (change: its default before → after) with its devices."""
    from analysis.network import assign_roles
    from geo.network import load_roads, with_road_names

    roads = assign_roles(
        load_roads(district.network_path, exclude_highway=district.exclude_highway),
        district.treated_roads,
        district.comparison_roads,
    )
    roads = with_road_names(roads, district.road_names)
    stats = load_road_period_stats(warehouse, district.key)
    if stats.empty:
        raise ValueError(
            f"no stored figures for district {district.key!r}: run 'etc2calm analyze --district {district.key}' first"
        )
    return export_figures(
        roads,
        stats,
        out,
        before=district.default_before,
        after=district.default_after,
        devices=district.devices,
        public_min_vehicles=max(public_min_vehicles, district.public_min_vehicles),
    )


def export_network(
    warehouse: str | Path,
    roads_path: str | Path,
    out: str | Path,
    *,
    before: str = "before",
    after: str = "after",
    exclude_highway: tuple[str, ...] | None = None,
    public_min_vehicles: int = PUBLIC_MIN_VEHICLES,
) -> ExportResult:
    """Every stored period of an ad-hoc network (`etc2calm analyze --roads FILE`), roles as analysed."""
    from config.settings import EXCLUDED_HIGHWAY_CLASSES
    from geo.network import load_roads

    key = f"roads:{Path(roads_path).stem}"
    roads = load_roads(
        roads_path, exclude_highway=EXCLUDED_HIGHWAY_CLASSES if exclude_highway is None else exclude_highway
    )
    stats = load_road_period_stats(warehouse, key)
    if stats.empty:
        raise ValueError(f"no stored figures for {roads_path}: run 'etc2calm analyze --roads {roads_path}' first")
    roles = stats.drop_duplicates("road_id").set_index(stats.drop_duplicates("road_id")["road_id"].astype(str))["role"]
    roads["role"] = roads["road_id"].map(roles).fillna(roads["role"]).replace("", "other")
    return export_figures(roads, stats, out, before=before, after=after, public_min_vehicles=public_min_vehicles)


def docs_markdown() -> str:
    """docs/export.md: the layers and columns of `etc2calm export`."""
    lines = [
        "# Export for GIS: layers and columns",
        "",
        "<!-- Generated by `python -m maps.export` from maps/export.py; a test fails when it is stale. -->",
        "",
        "`etc2calm export (--district NAME | --roads FILE) --out FILE.gpkg|FILE.parquet` writes the road",
        "geometries with every stored figure per period (`road_period_stats`, full precision) and the change",
        "after − before. Coordinates: EPSG:6677 (JGD2011 / Japan Plane Rectangular CS IX, metres). Both formats",
        "open in QGIS (Layer ▸ Add Layer ▸ Add Vector Layer): GeoPackage through GDAL's GPKG driver,",
        "GeoParquet (version 1.0.0 metadata, WKB geometry) through GDAL's Parquet driver (QGIS 3.30 or later).",
        "",
        f"Suppression as on the map: a road and period with fewer than {PUBLIC_MIN_VEHICLES} distinct vehicles",
        "(`config.settings.PUBLIC_MIN_VEHICLES`) has no figure and no count, and `<period>_public` says",
        "`suppressed`; a change is empty unless both periods are public.",
        "",
        "## Layers",
        "",
        "| layer | contents |",
        "|---|---|",
        *[f"| `{name}` | {doc} |" for name, doc in LAYERS.items()],
        "",
        "## Columns",
        "",
        "Road columns (every layer but `devices`):",
        "",
        "| column | meaning |",
        "|---|---|",
        *[f"| `{c}` | {d} |" for c, d in ROAD_COLUMNS.items()],
        "",
        "Per period: in `roads` as `<period>_<column>` for every stored period label (`before_mean_kmh`,",
        "`trial_mean_kmh`, `after_mean_kmh` …; labels lower-cased, other characters replaced by `_`); in",
        "`road_periods` as `<column>` next to `period`:",
        "",
        "| column | meaning |",
        "|---|---|",
        *[f"| `{c}` | {d} |" for c, d in PERIOD_COLUMNS.items()],
        "",
        "Change (`roads` only), for the district's default periods (`--district`) or the periods labelled",
        "`before` and `after` (`--roads`):",
        "",
        "| column | meaning |",
        "|---|---|",
        *[f"| `change_{c}` | after − before of `{c}` (km/h, or fraction 0–1 for shares) |" for c in CHANGE_FIGURES],
        "",
        "`devices` columns: `kind` (hump | narrowing), `installed` (YYYY-MM-DD), `illustrative` (true when the",
        "position is not surveyed).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    out = Path(argv[0]) if argv else DOC_PATH
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(docs_markdown(), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
