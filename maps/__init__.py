"""Maps, reports, sheets and exports for residents and engineers, read from the stored results.

Floor 3 of the stairs: imports config, etl, geo and analysis (never flows or the CLI); it never
recomputes a figure. The district map and the screening map as folium objects:

    from maps import build_district_map, build_screening_map

(imported on first use, so that modules reading only maps.wording or maps.public do not load folium).

What engineers call besides:

- `maps.district_map.render_district_map`, `maps.screening_map.render_screening_map`: the same
  maps as self-contained HTML;
- `maps.report.render_report`, `maps.district_sheet.render_district_sheet`: report and A4 sheet;
- `maps.export.export_district`, `export_network`: GeoPackage / GeoParquet of the stored figures;
- `maps.publish.publish_district`, `update_latest`: an edition of every output;
- `maps.public.public_results`: the stored results with the publication threshold applied;
- `maps.headline.headline`, `maps.through`: what the headline and the gate tables say;
- `maps.page.Page`, `save_page`: the self-contained page around a map (`NotOffline`);
- `maps.wording`: every text of the outputs, in Japanese and English.

Modules with a leading underscore (`_basemap`, `_district_panel`, `_elements`, `_embed`, `_layers`,
`_palette`, `_trend`: the parts the renderers are built of) serve this package only: they are not
API and may change without notice.
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
