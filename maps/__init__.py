"""Maps, reports, sheets and exports for residents and engineers, read from the stored results.

Floor 3 of the stairs: imports config, etl, geo and analysis (never flows or the CLI); it never
recomputes a figure. The district map and the screening map as folium objects:

    from maps import build_district_map, build_screening_map

(imported on first use, so that modules reading only maps.wording or maps.public do not load folium).
Also: `maps.report.render_report`, `maps.district_sheet.render_district_sheet`,
`maps.export.export_district`, `maps.publish.publish_district` (an edition of every output).
"""

from __future__ import annotations

__all__ = ["build_district_map", "build_screening_map"]


def __getattr__(name: str):
    if name == "build_district_map":
        from maps.district_map import build_district_map

        return build_district_map
    if name == "build_screening_map":
        from maps.screening_map import build_screening_map

        return build_screening_map
    raise AttributeError(f"module 'maps' has no attribute {name!r}")
