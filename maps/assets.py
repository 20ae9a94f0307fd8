"""Vendored Leaflet, inlined into the map HTML so it opens from file:// without any network."""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "vendor" / "leaflet"
LEAFLET_VERSION = "1.9.3"


@lru_cache(maxsize=1)
def leaflet_js() -> str:
    """Leaflet's minified JS (str), safe to place inside a <script> element."""
    js = (VENDOR_DIR / "leaflet.js").read_text(encoding="utf-8")
    if f"Leaflet {LEAFLET_VERSION}" not in js[:300]:
        raise RuntimeError(f"{VENDOR_DIR / 'leaflet.js'} is not Leaflet {LEAFLET_VERSION}")
    return js.replace("</script", "<\\/script")


@lru_cache(maxsize=1)
def leaflet_css() -> str:
    """Leaflet's CSS (str) with its images/… references replaced by data: URIs."""
    css = (VENDOR_DIR / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match) -> str:
        data = (VENDOR_DIR / "images" / match.group(1)).read_bytes()
        return "url(data:image/png;base64," + base64.b64encode(data).decode("ascii") + ")"

    return re.sub(r"url\(images/([\w.-]+\.png)\)", inline, css).replace("</style", "<\\/style")


def inline_head() -> str:
    """<style> and <script> elements carrying Leaflet, for the document <head>."""
    return f"<style>\n{leaflet_css()}\n</style>\n<script>\n{leaflet_js()}\n</script>\n"
