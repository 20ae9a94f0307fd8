"""The page around a folium map: one self-contained HTML file that opens from file:// with no network.

`Page` is the root (a branca Figure) of the maps this package builds. When rendered (`m.save(path)`,
a notebook showing `m`) it
- writes `<html lang>`, the title, the body class and the frame (#e2c-app) the layout CSS works on,
  with the map's own <div> last so that keyboard and screen readers meet title and panel first;
- gives the maps only the libraries they need (Leaflet; jQuery when a folium Popup asks for it; the
  awesome-markers files when a folium Icon does), and
- swaps every library link for the vendored, pinned file inlined (maps._embed.VENDORED). A link to
  a file that is not vendored (a plugin an engineer added) stays a link: the page then needs the
  network, and says so with a warning. Published pages go through `save_page`, which refuses it.
"""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import folium
from branca.element import CssLink, Element, Figure, JavascriptLink
from folium.features import GeoJson
from folium.map import Icon, Popup
from folium.template import Template

import maps._embed as embed

# folium's own defaults (by name) for what a map may ask for beyond Leaflet: awesome-markers icons
# are not vendored (an engineer's folium.Icon works online only, with a warning).
_FOLIUM_JS = dict(folium.Map.default_js)
_FOLIUM_CSS = dict(folium.Map.default_css)
_AWESOME_JS = ("awesome_markers",)
_AWESOME_CSS = (
    "bootstrap_css",
    "glyphicons_css",
    "awesome_markers_font_css",
    "awesome_markers_css",
    "awesome_rotate_css",
)
_EXTERNAL = re.compile(r"<(?:script|link)\b[^>]*(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.I)


class NotOffline(RuntimeError):
    """A page would load a script or stylesheet from the network."""


class Page(Figure):
    """The root of a published map: lang, title and body class of the page; vendored libraries inlined."""

    _template = Template(
        "<!DOCTYPE html>\n"
        '<html lang="{{ this.lang }}">\n<head>\n<meta charset="utf-8">\n'
        "{% if this.title %}<title>{{ this.title|e }}</title>\n{% endif %}"
        "{{ this.header.render(**kwargs) }}\n"
        # after folium's own viewport tag (which forbids zooming the page): the panel's text may be zoomed
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "</head>\n"
        '<body{% if this.body_class %} class="{{ this.body_class }}"{% endif %}>\n'
        '<div id="e2c-app">\n{{ this.html.render(**kwargs) }}\n</div>\n'
        "<script>\n{{ this.script.render(**kwargs) }}\n</script>\n"
        "</body>\n</html>\n"
    )

    def __init__(self, lang: str = "ja", title: str | None = None, body_class: str = ""):
        super().__init__(title=title)
        self._name = "Page"
        self.header._children.pop("meta_http", None)  # <meta charset> is in the template
        self.lang = lang
        self.body_class = body_class

    def render(self, **kwargs) -> str:
        """The page's HTML: every element rendered, the map's <div> last, vendored links inlined."""
        self._ask_for_needed_libraries()
        for child in self._children.values():
            child.render(**kwargs)
        for m in _maps(self):
            if m.get_name() in self.html._children:
                self.html._children.move_to_end(m.get_name())
        self._inline_vendored()
        page = self._template.render(this=self, kwargs=kwargs)
        external = external_assets(page)
        if external:
            warnings.warn(
                f"this page loads {len(external)} file(s) from the network and will not open offline: "
                + ", ".join(external[:3]),
                stacklevel=2,
            )
        return page

    def _ask_for_needed_libraries(self) -> None:
        """jQuery for folium's Popup (and keep_in_front, non-embedded GeoJson); awesome-markers for Icon."""
        elements = list(_walk(self))
        if any(
            isinstance(e, Popup)
            or (isinstance(e, folium.Map) and e.objects_to_stay_in_front)
            or (isinstance(e, GeoJson) and not e.embed)
            for e in elements
        ):
            self.header.add_child(JavascriptLink(embed.JQUERY_JS.url), name="jquery")
        if any(isinstance(e, Icon) for e in elements):
            for name in _AWESOME_JS:
                self.header.add_child(JavascriptLink(_FOLIUM_JS[name]), name=name)
            for name in _AWESOME_CSS:
                self.header.add_child(CssLink(_FOLIUM_CSS[name]), name=name)

    def _inline_vendored(self) -> None:
        children = OrderedDict()
        for name, child in self.header._children.items():
            if isinstance(child, JavascriptLink | CssLink) and child.url in embed.VENDORED:
                children[name] = Element(embed.inline_element(child.url))
                if child.url == embed.LEAFLET_JS.url:
                    children["leaflet_default_icons"] = Element(embed.leaflet_default_icons())
            elif name != "leaflet_default_icons":
                children[name] = child
        self.header._children = children


def _walk(element: Element) -> Iterator[Element]:
    for child in element._children.values():
        yield child
        yield from _walk(child)


def _maps(page: Page) -> list[folium.Map]:
    return [c for c in page._children.values() if isinstance(c, folium.Map)]


def new_map(page: Page, bounds: list[list[float]], **kwargs) -> folium.Map:
    """A folium.Map on `page`, centred on `bounds` ([[south, west], [north, east]]), asking for the
    vendored Leaflet only (folium's defaults would add jQuery, Bootstrap and awesome-markers from CDNs)."""
    (south, west), (north, east) = bounds
    m = folium.Map(location=[(south + north) / 2, (west + east) / 2], tiles=None, **kwargs)
    m.default_js = [("leaflet", embed.LEAFLET_JS.url)]
    m.default_css = [("leaflet_css", embed.LEAFLET_CSS.url)]
    page.add_child(m)
    return m


def external_assets(page: str) -> list[str]:
    """The <script src> / <link href> elements of `page` that point to the network."""
    return _EXTERNAL.findall(page)


def page_html(m: folium.Map) -> str:
    """The HTML of the page holding `m`; NotOffline when it would load a script or stylesheet from
    the network (a published page never does)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = m.get_root().render()
    external = external_assets(page)
    if external:
        raise NotOffline(f"map HTML would load external assets: {external[:3]}")
    return page


def save_page(m: folium.Map, out_path: str | Path) -> Path:
    """Write the page holding `m` (UTF-8) to `out_path`, creating its folder; NotOffline as page_html."""
    page = page_html(m)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return out_path
