"""District outlines made from a road network: the area its outer roads enclose.

The rule (docs/districts.md, `etc2calm district new --outline-from-roads`):

1. the network's roads (metres, EPSG:6677; the classes the district analyses) are noded — split
   wherever two of them meet or cross — and `shapely.polygonize` builds every face they enclose
   (a block);
2. the faces are united; where they form several separate areas, the largest is the district (a
   small loop of a cul-de-sac elsewhere is not), and holes are filled;
3. the area is grown by OUTLINE_FROM_ROADS_MARGIN_M (25 m, more than the matching radius), so the
   outer roads and the points matched to them lie inside the outline, and every way that leaves the
   area — an arterial continuing outwards, a street dangling from the outer roads — crosses the
   outline once, that far from its junction. analysis.gates derives a gate at each such crossing.

Not a hull: a convex (or concave) hull of the network runs through the ends of the dangling ways,
so no trip is ever seen outside it (every trip is "internal") and its gates fall at road ends.
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from config.settings import OUTLINE_FROM_ROADS_MARGIN_M


def enclosed_faces(geometries) -> np.ndarray:
    """The faces (Polygons, metres) enclosed by (Multi)LineStrings: every block of the noded network."""
    lines = shapely.get_parts(np.asarray(geometries, dtype=object))
    if len(lines) == 0:
        return np.array([], dtype=object)
    noded = shapely.union_all(lines)  # split at every meeting and crossing
    return shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))


def outline_from_roads(geometries, margin_m: float = OUTLINE_FROM_ROADS_MARGIN_M) -> BaseGeometry:
    """The district outline of a road network (LineStrings in metres): the largest area enclosed by
    its roads, holes filled, grown by `margin_m` metres (the module's rule). ValueError when the roads
    enclose no area (a tree of streets, or roads that never meet)."""
    if not (np.isfinite(margin_m) and margin_m >= 0):
        raise ValueError(f"outline margin must be a non-negative number of metres, got {margin_m!r}")
    faces = enclosed_faces(geometries)
    if len(faces) == 0:
        raise ValueError(
            "the roads enclose no area (they form no closed block): give the outline as a polygon file (--outline FILE)"
        )
    areas = shapely.get_parts(shapely.union_all(faces))
    largest = areas[int(np.argmax(shapely.area(areas)))]
    filled = shapely.polygons(shapely.get_exterior_ring(largest))
    return shapely.buffer(filled, margin_m, quad_segs=16) if margin_m > 0 else filled
