"""The maps' own folium/branca elements: the page's parts around the map and the small plugins that
give it its behaviour.

Parts of the page (HTML in the body, laid out by maps/assets/map.css): `Banner` (合成データ), `TitleBar`
(title, language button, headline #headline), `SidePanel` (a side column on wide screens, a bottom
sheet on phones). Behaviour (maps/assets/*.js, inlined by `Assets`): `Frame` (language, bottom sheet,
popups kept inside the uncovered part of the map, fitting the roads into it, print), `Tip` (a
tooltip and popup in both languages on any layer), `Script` (a page script started with the
frame and the JS names of the map's layers).

Every element is added to the folium.Map (`m.add_child(...)`); its JavaScript refers to the map and
to other elements by their folium names, so a map holds everything it shows.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable

from branca.element import Element, MacroElement
from folium.template import Template
from folium.utilities import JsCode
from markupsafe import Markup

import maps._embed as embed
import maps.wording as w


def bi(make: Callable[[str], str], tag: str = "span", escape: bool = True, **attrs) -> str:
    """The same element in both languages: <span lang="ja">…</span><span lang="en">…</span> (the page's
    CSS shows the one of its current language)."""
    extra = "".join(f' {k.rstrip("_").replace("_", "-")}="{html.escape(str(v))}"' for k, v in attrs.items())
    out = []
    for lang in w.LANGS:
        body = make(lang)
        out.append(f'<{tag} lang="{lang}"{extra}>{html.escape(body) if escape else body}</{tag}>')
    return "".join(out)


def js_value(obj) -> str:
    """`obj` as a JavaScript expression: folium elements by their variable name, everything else as
    JSON safe inside <script> (dict keys kept as they are, unlike folium's tojavascript)."""
    if isinstance(obj, Element):
        return obj.get_name()
    if isinstance(obj, dict):
        return "{" + ",".join(f"{_safe_json(str(k))}:{js_value(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(js_value(v) for v in obj) + "]"
    return _safe_json(obj)


def _safe_json(obj) -> str:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class Assets(MacroElement):
    """The product's own CSS and JS (maps/assets/), inlined in the page's <head>."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        {%- for name in this.names %}{{ this.inline(name) }}
        {% endfor -%}
        {% endmacro %}
        """
    )

    def __init__(self, *names: str):
        super().__init__()
        self._name = "Assets"
        self.names = names

    @staticmethod
    def inline(name: str) -> Markup:
        return Markup(embed.script(name) if name.endswith(".js") else embed.style(name))


class Banner(MacroElement):
    """The red 合成データ banner over the whole page (both languages; CSS shows one)."""

    _template = Template(
        """
        {% macro html(this, kwargs) %}<div class="e2c-banner" role="alert">{{ this.text }}</div>{% endmacro %}
        """
    )

    def __init__(self, text_html: str):
        super().__init__()
        self._name = "Banner"
        self.text = text_html


class TitleBar(MacroElement):
    """The title, the language button and the headline (`id="headline"`), above the panel."""

    _template = Template(
        """
        {% macro html(this, kwargs) %}<header id="e2c-top"><div class="e2c-titlebar"><h1>{{ this.title }}</h1>
        <button type="button" id="e2c-lang-toggle">{{ this.toggle|e }}</button></div>{{ this.headline }}</header>
        {% endmacro %}
        """
    )

    def __init__(self, title_html: str, toggle: str, headline_html: str):
        super().__init__()
        self._name = "TitleBar"
        self.title, self.toggle, self.headline = title_html, toggle, headline_html


class SidePanel(MacroElement):
    """The panel: a side column on wide screens, a bottom sheet (closed, its handle showing) on phones."""

    _template = Template(
        """
        {% macro html(this, kwargs) %}<aside id="e2c-panel"><button type="button" id="e2c-handle"
        aria-expanded="false" aria-controls="e2c-panel-body"><span class="e2c-arrow" aria-hidden="true">▲</span>
        {{ this.handle }}</button><div id="e2c-panel-body">{% for section in this.sections %}{{ section }}{% endfor %}
        </div></aside>{% endmacro %}
        """
    )

    def __init__(self, handle_html: str, sections: list[str]):
        super().__init__()
        self._name = "SidePanel"
        self.handle = handle_html
        self.sections = [s for s in sections if s]


class Frame(MacroElement):
    """The page's frame around the map (maps/assets/frame.js): language, bottom sheet, popups inside
    the uncovered part of the map, fitting `bounds` into it. Add it before the layers that use `Tip`."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = E2CFrame.create({{ this._parent.get_name() }}, {{ this.options_js }});
        {% endmacro %}
        """
    )

    def __init__(self, options: dict):
        super().__init__()
        self._name = "Frame"
        self.options = options

    def render(self, **kwargs):
        self.options_js = js_value(self.options)
        super().render(**kwargs)


class Tip(MacroElement):
    """A tooltip (on devices that hover) and a popup (on a tap), in the page's current language, for
    the layer it is added to; `tip` is {'ja': html, 'en': html}, `popup` the popup's text when it says
    more. GeoJson features get theirs from their `tip` and `popup` properties (`on_each_feature`)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this.frame.get_name() }}.bind({{ this._parent.get_name() }}, {{ this.tip_js }}, {{ this.sticky|tojson }},
            {{ this.popup_js }});
        {% endmacro %}
        """
    )

    def __init__(self, frame: Frame, tip: dict[str, str], sticky: bool = False, popup: dict[str, str] | None = None):
        super().__init__()
        self._name = "Tip"
        self.frame, self.tip, self.sticky, self.popup = frame, tip, sticky, popup

    def render(self, **kwargs):
        self.tip_js = js_value(self.tip)
        self.popup_js = js_value(self.popup)
        super().render(**kwargs)


def on_each_feature(frame: Frame, sticky: bool = True):
    """folium GeoJson `on_each_feature`: each feature's `tip` property as its tooltip and popup (its
    `popup` property, when present, as the popup)."""
    p = "feature.properties"
    return JsCode(
        f"function (feature, layer) {{ {frame.get_name()}.bind(layer, {p}.tip, {json.dumps(sticky)}, {p}.popup); }}"
    )


class Script(MacroElement):
    """A page script (maps/assets/map.js: E2CDistrict, screening.js: E2CScreening) started with the
    frame and `options` (folium elements given by their JS names). Add it after the layers it names."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = {{ this.entry }}.start({{ this.frame.get_name() }}, {{ this.options_js }});
        {% endmacro %}
        """
    )

    def __init__(self, entry: str, frame: Frame, options: dict):
        super().__init__()
        self._name = "Script"
        self.entry, self.frame, self.options = entry, frame, options

    def render(self, **kwargs):
        self.options_js = js_value(self.options)
        super().render(**kwargs)
