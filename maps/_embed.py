"""Front-end files inlined into the self-contained HTML: the vendored libraries (maps/vendor/, pinned,
with their licences) and the product's own assets (maps/assets/*.js, *.css), so a map opens from
file:// with no network.

A folium element asks for a library by a (name, URL) pair in its `default_js` / `default_css`;
`VENDORED` maps each pinned URL the maps use to its file under maps/vendor/. maps.page.Page swaps
every such link for the file's text (CSS with its images as data: URIs) when the page is rendered.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "vendor"
ASSETS_DIR = Path(__file__).resolve().parent / "assets"
LEAFLET_VERSION = "1.9.4"
_CDN = "https://cdn.jsdelivr.net"


@dataclass(frozen=True)
class Vendored:
    """One vendored file: the URL folium (or a folium plugin) links it by, and where it lives here."""

    url: str  # the pinned release's URL, as in the element's default_js / default_css
    path: str  # relative to maps/vendor/
    banner: str = ""  # text the file's first 300 characters must hold (its release), checked on read

    @property
    def kind(self) -> str:
        return "css" if self.path.endswith(".css") else "js"


# Pinned releases (npm registry tarballs, files unmodified; maps/vendor/README.md lists them with
# their licences). The folium plugins' own URLs name exactly these releases.
LEAFLET_JS = Vendored(f"{_CDN}/npm/leaflet@{LEAFLET_VERSION}/dist/leaflet.js", "leaflet/leaflet.js", "Leaflet 1.9.4")
LEAFLET_CSS = Vendored(f"{_CDN}/npm/leaflet@{LEAFLET_VERSION}/dist/leaflet.css", "leaflet/leaflet.css")
JQUERY_JS = Vendored("https://code.jquery.com/jquery-3.7.1.min.js", "jquery/jquery.min.js", "jQuery v3.7.1")
VENDORED: dict[str, Vendored] = {
    v.url: v
    for v in (
        LEAFLET_JS,
        LEAFLET_CSS,
        JQUERY_JS,
        Vendored(
            f"{_CDN}/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js",
            "leaflet.fullscreen/Control.FullScreen.js",
        ),
        Vendored(
            f"{_CDN}/npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css", "leaflet.fullscreen/Control.FullScreen.css"
        ),
        Vendored(
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.js",
            "leaflet.locatecontrol/L.Control.Locate.min.js",
        ),
        Vendored(
            "https://cdnjs.cloudflare.com/ajax/libs/leaflet-locatecontrol/0.66.2/L.Control.Locate.min.css",
            "leaflet.locatecontrol/L.Control.Locate.min.css",
        ),
        Vendored(
            f"{_CDN}/gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.js",
            "leaflet-measure/leaflet-measure.min.js",
        ),
        Vendored(
            f"{_CDN}/gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.css",
            "leaflet-measure/leaflet-measure.css",
        ),
    )
}


def _safe_script(js: str) -> str:
    return js.replace("</script", "<\\/script")


def _safe_style(css: str) -> str:
    return css.replace("</style", "<\\/style")


def _inline_urls(css: str, folder: Path) -> str:
    """CSS with its relative url(...) references (images beside it) replaced by data: URIs."""

    def inline(match: re.Match) -> str:
        ref = match.group(1).strip("'\"")
        if ref.startswith(("data:", "#")) or "://" in ref:
            return match.group(0)
        data = (folder / ref).read_bytes()
        mime = mimetypes.guess_type(ref)[0] or "application/octet-stream"
        return f"url(data:{mime};base64,{base64.b64encode(data).decode('ascii')})"

    return re.sub(r"url\(([^)]+)\)", inline, css)


@cache
def vendored_text(url: str) -> str:
    """The text of the vendored file linked by `url`, safe inside its <script> / <style> element;
    KeyError when the URL is not vendored."""
    v = VENDORED[url]
    path = VENDOR_DIR / v.path
    text = path.read_text(encoding="utf-8")
    if v.banner and v.banner not in text[:300]:
        raise RuntimeError(f"{path} is not {v.banner}")
    if v.kind == "css":
        return _safe_style(_inline_urls(text, path.parent))
    return _safe_script(text)


def inline_element(url: str) -> str:
    """The <script> or <style> element carrying the vendored file of `url`."""
    tag = "style" if VENDORED[url].kind == "css" else "script"
    return f"<{tag}>\n{vendored_text(url)}\n</{tag}>"


@cache
def leaflet_default_icons() -> str:
    """A <script> giving Leaflet's default marker its images as data: URIs. Leaflet finds them by a
    path it reads from its CSS, which an inlined stylesheet does not have, and would then ask for
    marker-icon.png beside the page (a folium Marker is created with the default icon before its own
    is set, and an engineer's plain folium.Marker keeps it)."""
    images = VENDOR_DIR / "leaflet" / "images"

    def uri(name: str) -> str:
        return "data:image/png;base64," + base64.b64encode((images / name).read_bytes()).decode("ascii")

    return (
        "<script>\nL.Icon.Default.imagePath = '';\nL.Icon.Default.mergeOptions("
        f"{{iconUrl: '{uri('marker-icon.png')}', iconRetinaUrl: '{uri('marker-icon-2x.png')}', "
        f"shadowUrl: '{uri('marker-shadow.png')}'}});\n</script>"
    )


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
