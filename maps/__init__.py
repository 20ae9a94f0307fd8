"""etc2calm: maps. The district map and the screening map as folium objects:

    from maps import build_district_map, build_screening_map

(imported on first use, so that modules reading only maps.wording or maps.public do not load folium).
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
