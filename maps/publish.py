"""Publishing: district maps from warehouse figures, respecting the minimum number of distinct vehicles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.figures import AnalysisResult, analyze_district, assign_roles
from config.districts import District, Period
from config.settings import wards_path
from etl.warehouse import connect
from geo.network import load_roads

# Figures from fewer distinct vehicles never appear on public maps (drawn grey, 「データ不足」).
MIN_PUBLIC_VEHICLES = 10


def area_path(district: District) -> Path | None:
    area = district.raw.get("area")
    return (district.source_path.parent / area).resolve() if area else None


def evidence_layers(evidence, period: str = "after", min_vehicles: int = MIN_PUBLIC_VEHICLES):
    """(braking hot spots, cut-through streets) of a DistrictEvidence as EPSG:4326 layers for the map.

    Only cells and streets with at least `min_vehicles` distinct vehicles are published.
    """
    import geopandas as gpd

    braking = None
    hs = evidence.hotspots
    hs = hs[(hs["period"] == period) & (hs["n_vehicles"] >= min_vehicles)] if len(hs) else hs
    if len(hs):
        braking = gpd.GeoDataFrame(
            {"count": hs["n_events"].to_numpy(), "period": district_period_label(evidence, period)},
            geometry=gpd.points_from_xy(hs["x_m"], hs["y_m"]), crs="EPSG:6677",
        ).to_crs("EPSG:4326")  # fmt: skip
    cut = None
    cs = evidence.cut_through_streets
    if len(cs):
        residential = evidence.roads[evidence.roads["limit_kmh"] <= 30]
        cs = cs[(cs["period"] == period) & (cs["n_vehicles_cut_through"] >= min_vehicles)]
        lines = residential.merge(cs[["road_id", "share_cut_through"]], on="road_id")
        if len(lines):
            cut = gpd.GeoDataFrame(
                {"share": lines["share_cut_through"].to_numpy(), "name": lines["name"].to_numpy()},
                geometry=lines.geometry.to_numpy(), crs=evidence.roads.crs,
            ).to_crs("EPSG:4326")  # fmt: skip
    return braking, cut


def district_period_label(evidence, period: str) -> str:
    p = evidence.periods[period]
    return f"{p.start}〜{p.end}"


def write_district_map(
    warehouse: str | Path, district: District, out: str | Path, result: AnalysisResult | None = None,
    evidence=None,
) -> Path:  # fmt: skip
    """Render the before/after/change map of `district` to `out` (self-contained HTML); returns its path.

    Uses `result` when given (it must hold the district's default before/after periods by
    name), else analyses the warehouse for those periods first. With `evidence` (a
    DistrictEvidence) the map also gets the 急ブレーキ hot-spot and 抜け道 layers of the after period.
    """
    from maps.district_map import render_district_map

    before, after = district.default_before, district.default_after
    periods = {before: district.period(before), after: district.period(after)}
    if result is not None and {before, after} <= set(result.periods):
        roads, stats = result.roads, result.road_stats
    else:
        stats = stored_road_stats(warehouse, district.key, periods)
        if stats is None:
            result = analyze_district(warehouse, district, periods)
            roads, stats = result.roads, result.road_stats
        else:
            roads = assign_roles(load_roads(district.network_path), district.treated_roads, district.comparison_roads)
    stats = stats[stats["period"].isin([before, after])]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return render_district_map(
        district,
        roads.to_crs("EPSG:4326"),
        stats,
        out,
        before=before,
        after=after,
        wards_path=wards_path(),
        area_path=area_path(district),
        min_vehicles=MIN_PUBLIC_VEHICLES,
        synthetic=district.synthetic_network,
        **_layers(evidence),
    )


def _layers(evidence) -> dict:
    if evidence is None:
        return {}
    braking, cut = evidence_layers(evidence)
    return {"braking_points": braking, "cut_through": cut}


def stored_road_stats(warehouse: str | Path, district_key: str, periods: dict[str, Period]) -> pd.DataFrame | None:
    """Figures already in the warehouse for exactly these period labels and dates, else None."""
    con = connect(warehouse, create=False)
    try:
        has_table = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'road_period_stats'"
        ).fetchall()[0][0]
        if not has_table:
            return None
        df = con.execute("SELECT * FROM road_period_stats WHERE district = ?", [district_key]).df()
    finally:
        con.close()
    for label, p in periods.items():
        rows = df[df["period"] == label]
        if rows.empty or not ((rows["period_start"].dt.date == p.start) & (rows["period_end"].dt.date == p.end)).all():
            return None
    return df[df["period"].isin(list(periods))].reset_index(drop=True)


def write_district_sheet(
    warehouse: str | Path, district: District, out_pdf: str | Path, result: AnalysisResult | None = None
) -> dict[str, str]:
    """Render the printable A4 sheet of `district` (PDF, and the same page as PNG next to it).

    Same figures as write_district_map (the district's default before/after periods, from `result`
    when it holds them, else from the warehouse, analysing first when nothing is stored); the headline
    table pools the treated and the comparison roads (group_period_stats). Returns {"pdf", "png"} paths.
    """
    from maps.district_sheet import render_district_sheet

    before, after = district.default_before, district.default_after
    periods = {before: district.period(before), after: district.period(after)}
    if result is None or not {before, after} <= set(result.periods):
        stats = stored_road_stats(warehouse, district.key, periods)
        result = analyze_district(warehouse, district, periods) if stats is None else None
    if result is not None:
        roads, stats, groups = result.roads, result.road_stats, result.group_stats
    else:
        roads = assign_roles(load_roads(district.network_path), district.treated_roads, district.comparison_roads)
        groups = _stored_group_stats(warehouse, district.key)
    stats = stats[stats["period"].isin([before, after])]
    if groups is not None:
        groups = groups[groups["period"].isin([before, after])]
    sheet = render_district_sheet(
        district, roads.to_crs("EPSG:4326"), stats, Path(out_pdf), before=before, after=after,
        headline=groups, area_path=area_path(district), min_vehicles=MIN_PUBLIC_VEHICLES,
        synthetic=district.synthetic_network,
    )  # fmt: skip
    return {"pdf": str(sheet.pdf), "png": str(sheet.png)}


def _stored_group_stats(warehouse: str | Path, district_key: str) -> pd.DataFrame | None:
    con = connect(warehouse, create=False)
    try:
        return con.execute("SELECT * FROM group_period_stats WHERE district = ?", [district_key]).df()
    except Exception:  # no such table in an older warehouse: the sheet lists roads one by one
        return None
    finally:
        con.close()
