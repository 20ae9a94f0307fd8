"""Front-end files inlined into the self-contained HTML: vendored Leaflet and the product's own
assets (maps/assets/*.js, *.css), so a map opens from file:// with no network."""

from __future__ import annotations

import base64
import re
from functools import cache, lru_cache
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "vendor" / "leaflet"
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
LEAFLET_VERSION = "1.9.3"


def _safe_script(js: str) -> str:
    return js.replace("</script", "<\\/script")


def _safe_style(css: str) -> str:
    return css.replace("</style", "<\\/style")


@lru_cache(maxsize=1)
def leaflet_js() -> str:
    """Leaflet's minified JS (str), safe to place inside a <script> element."""
    js = (VENDOR_DIR / "leaflet.js").read_text(encoding="utf-8")
    if f"Leaflet {LEAFLET_VERSION}" not in js[:300]:
        raise RuntimeError(f"{VENDOR_DIR / 'leaflet.js'} is not Leaflet {LEAFLET_VERSION}")
    return _safe_script(js)


@lru_cache(maxsize=1)
def leaflet_css() -> str:
    """Leaflet's CSS (str) with its images/… references replaced by data: URIs."""
    css = (VENDOR_DIR / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match) -> str:
        data = (VENDOR_DIR / "images" / match.group(1)).read_bytes()
        return "url(data:image/png;base64," + base64.b64encode(data).decode("ascii") + ")"

    return _safe_style(re.sub(r"url\(images/([\w.-]+\.png)\)", inline, css))


@cache
def asset(name: str) -> str:
    """The text of maps/assets/<name> (a .js or .css file), safe inside its <script> / <style> element."""
    path = ASSETS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"map asset {path} is missing (package data maps/assets/*)")
    text = path.read_text(encoding="utf-8")
    return _safe_script(text) if name.endswith(".js") else _safe_style(text)


def script(name: str) -> str:
    return f"<script>\n{asset(name)}\n</script>"


def style(name: str) -> str:
    return f"<style>\n{asset(name)}\n</style>"


def leaflet_head() -> str:
    """<style> and <script> elements carrying Leaflet, for the document <head>."""
    return f"<style>\n{leaflet_css()}\n</style>\n<script>\n{leaflet_js()}\n</script>\n"
