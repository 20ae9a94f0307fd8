"""Publishing: a district's map, report and A4 sheet from the results stored in the warehouse.

Nothing here computes a figure: every number comes from `analysis.results.load_district_results`
(the same rows the engineers' tables hold), and every public output applies the same publication
threshold (config.settings.PUBLIC_MIN_VEHICLES distinct vehicles).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd

from analysis.results import DistrictResults, load_district_results
from config.districts import District
from config.settings import LONLAT_CRS, METRIC_CRS, PUBLIC_MIN_VEHICLES, RESIDENTIAL_MAX_LIMIT_KMH, wards_path
from maps.district_map import render_district_map
from maps.district_sheet import render_district_sheet
from maps.report import render_report


def evidence_layers(results: DistrictResults, period: str = "after", min_vehicles: int = PUBLIC_MIN_VEHICLES):
    """(braking hot spots, cut-through streets) of stored results as EPSG:4326 layers for the map.

    Only cells and streets with at least `min_vehicles` distinct vehicles are published.
    """
    braking = None
    hs = results.hotspots
    hs = hs[(hs["period"] == period) & (hs["n_vehicles"] >= min_vehicles)] if len(hs) else hs
    if len(hs):
        braking = gpd.GeoDataFrame(
            {"count": hs["n_events"].to_numpy(), "period": period_label(results, period)},
            geometry=gpd.points_from_xy(hs["lon"], hs["lat"]), crs=LONLAT_CRS,
        )  # fmt: skip
    cut = None
    cs = results.cut_through_streets
    if len(cs):
        residential = results.roads[results.roads["limit_kmh"] <= RESIDENTIAL_MAX_LIMIT_KMH]
        cs = cs[(cs["period"] == period) & (cs["n_vehicles_cut_through"] >= min_vehicles)]
        lines = residential.merge(cs[["road_id", "share_cut_through"]], on="road_id")
        if len(lines):
            cut = gpd.GeoDataFrame(
                {"share": lines["share_cut_through"].to_numpy(), "name": lines["name"].to_numpy()},
                geometry=lines.geometry.to_numpy(), crs=METRIC_CRS,
            ).to_crs(LONLAT_CRS)  # fmt: skip
    return braking, cut


def period_label(results: DistrictResults, period: str) -> str:
    p = results.periods[period]
    return f"{p.start}〜{p.end}"


def _stats_for_district_periods(results: DistrictResults, district: District, frame: pd.DataFrame) -> pd.DataFrame:
    """Stored rows with the period column named as the district's default periods (the renderers take names)."""
    names = {"before": district.default_before, "after": district.default_after}
    return frame.assign(period=frame["period"].map(names))


def write_district_map(warehouse: str | Path, district: District, out: str | Path,
                       results: DistrictResults | None = None) -> Path:  # fmt: skip
    """The before/after/change map of `district` (self-contained HTML) from stored results; returns its path."""
    results = results or load_district_results(warehouse, district)
    braking, cut = evidence_layers(results)
    return render_district_map(
        district, results.roads.to_crs(LONLAT_CRS), _stats_for_district_periods(results, district, results.road_stats),
        Path(out), before=district.default_before, after=district.default_after, wards_path=wards_path(),
        area_path=district.area_path, min_vehicles=PUBLIC_MIN_VEHICLES, synthetic=district.synthetic_network,
        braking_points=braking, cut_through=cut,
    )  # fmt: skip


def write_district_sheet(warehouse: str | Path, district: District, out_pdf: str | Path,
                         results: DistrictResults | None = None) -> dict[str, str]:  # fmt: skip
    """The printable A4 sheet (PDF, and the same page as PNG next to it) from stored results."""
    results = results or load_district_results(warehouse, district)
    sheet = render_district_sheet(
        district, results.roads.to_crs(LONLAT_CRS), _stats_for_district_periods(results, district, results.road_stats),
        Path(out_pdf), before=district.default_before, after=district.default_after,
        headline=_stats_for_district_periods(results, district, results.group_stats), area_path=district.area_path,
        min_vehicles=PUBLIC_MIN_VEHICLES, synthetic=district.synthetic_network,
    )  # fmt: skip
    return {"pdf": str(sheet.pdf), "png": str(sheet.png)}


def write_district_report(warehouse: str | Path, district: District, out: str | Path,
                          results: DistrictResults | None = None, filter_text: str | None = None) -> Path:  # fmt: skip
    """The district report (HTML) from stored results of one filter (default: all points)."""
    results = results or load_district_results(warehouse, district, filter_text)
    return render_report(district, results, out)


def publish_district(warehouse: str | Path, district: District, out_dir: str | Path) -> dict[str, str]:
    """Map, report and sheet of `district` into `out_dir`, all from one read of the stored results."""
    out_dir = Path(out_dir)
    results = load_district_results(warehouse, district)
    map_path = write_district_map(warehouse, district, out_dir / f"{district.key}.html", results)
    report = write_district_report(warehouse, district, out_dir / f"{district.key}_report.html", results)
    sheet = write_district_sheet(warehouse, district, out_dir / f"{district.key}_sheet.pdf", results)
    return {"map": str(map_path), "report": str(report), "sheet": sheet["pdf"], "sheet_png": sheet["png"]}


def update_latest(root: str | Path, edition: str | Path) -> Path:
    """Make ``root/latest`` a copy of the edition folder (e.g. ``root/2019-06``), swapped in by renames so
    readers never see a half-copied folder; earlier editions stay where they are. Returns latest's path."""
    root, edition = Path(root), Path(edition)
    latest, tmp, old = root / "latest", root / f".latest.tmp{os.getpid()}", root / f".latest.old{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(edition, tmp)
    if latest.exists():
        os.replace(latest, old)
    os.replace(tmp, latest)
    shutil.rmtree(old, ignore_errors=True)
    return latest
