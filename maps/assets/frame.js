/* The frame shared by the product's maps (the district map, map.js, and the screening map,
 * screening.js), around a folium map: the language button, the phone's bottom sheet, tooltips and
 * popups in the current language (popups kept inside the part of the map no panel covers), the
 * fitting of the roads into that part, the base-map switch, print.
 *
 * maps._elements.Frame creates it right after the folium map: E2CFrame.create(map, data) with data:
 * lang, bounds, doc_title, map_label, lang_toggle, lang_toggle_label ({ja, en} each), titles (a list
 * of {selector, text: {ja, en}, attr}: control titles relabelled with the language), topPadding (px
 * kept free above the roads, default 24), popupMaxWidth (default 300), focus (optional bounds kept in view
 * at the same scale when the phone's bottom sheet opens). Layers call frame.bind(layer,
 * tip, sticky, popup) while they are created; the page script calls frame.start({tiles, base}) last. */
window.E2CFrame = (function () {
  'use strict';

  function create(map, D) {
    var root = document.documentElement;
    var state = { lang: D.lang };
    var hover = window.matchMedia && window.matchMedia('(hover: hover)').matches;
    var container = map.getContainer();
    container.setAttribute('role', 'region');
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    var langHandlers = [];

    function text(obj) { return obj[state.lang] || obj.ja; }

    // --- tooltips and popups: one popup at a time, kept inside the uncovered part of the map ------
    function openPopup(latlng, html) {
      var pad = padding(), size = map.getSize();
      L.popup({
        // 34: the popup content's margins and border
        maxWidth: Math.max(160, Math.min(D.popupMaxWidth || 300, size.x - pad.tl[0] - pad.br[0] - 34)),
        maxHeight: Math.max(160, size.y - pad.tl[1] - pad.br[1] - 20),
        autoPan: true, keepInView: true, autoPanPaddingTopLeft: L.point(pad.tl[0], pad.tl[1]),
        autoPanPaddingBottomRight: L.point(pad.br[0], pad.br[1]), className: 'e2c-popup'
      }).setLatLng(latlng).setContent(html).openOn(map);
    }
    // tip: the tooltip's text {ja, en}; popup: the popup's, when it says more than the tooltip
    function bind(layer, tip, sticky, popup) {
      if (!tip) { return; }
      if (hover) {
        layer.bindTooltip(function () { return text(tip); }, { sticky: sticky, direction: 'auto', opacity: 0.95 });
      }
      layer.on('click', function (e) {
        L.DomEvent.stopPropagation(e);
        if (layer.closeTooltip) { layer.closeTooltip(); }
        openPopup(e.latlng || layer.getLatLng(), text(popup || tip));
      });
    }

    // --- language -----------------------------------------------------------------------------
    function setLang(lang) {
      state.lang = lang;
      root.setAttribute('lang', lang);
      document.title = D.doc_title[lang];
      (D.titles || []).forEach(function (t) {
        container.querySelectorAll(t.selector).forEach(function (el) {
          el.setAttribute(t.attr || 'title', t.text[lang]);
          if (!t.attr) { el.setAttribute('aria-label', t.text[lang]); }
        });
      });
      map.closePopup();
      map.eachLayer(function (l) { if (l.closeTooltip) { l.closeTooltip(); } });
      var toggle = document.getElementById('e2c-lang-toggle');
      if (toggle) { toggle.textContent = D.lang_toggle[lang]; toggle.setAttribute('aria-label', D.lang_toggle_label[lang]); }
      container.setAttribute('aria-label', D.map_label[lang]);
      langHandlers.forEach(function (h) { h(lang); });
    }
    var toggle = document.getElementById('e2c-lang-toggle');
    if (toggle) { toggle.addEventListener('click', function () { setLang(state.lang === 'ja' ? 'en' : 'ja'); }); }

    // --- the phone's bottom sheet -------------------------------------------------------------
    var panel = document.getElementById('e2c-panel');
    var handle = document.getElementById('e2c-handle');
    function sheetMode() { return !!handle && window.getComputedStyle(handle).display !== 'none'; }
    function openSheet(open) {
      panel.classList.toggle('e2c-open', open);
      handle.setAttribute('aria-expanded', open ? 'true' : 'false');
      relayout();
    }
    if (handle) { handle.addEventListener('click', function () { openSheet(!panel.classList.contains('e2c-open')); }); }

    // --- fitting the roads into the uncovered part of the map ------------------------------------
    // The side column never covers the map; on phones the bottom sheet overlaps its lower edge, and
    // the map's controls sit in its corners: paddings keep every road clear of all of them.
    function covered() {
      if (!sheetMode() || !panel) { return 0; }
      var rect = container.getBoundingClientRect(), p = panel.getBoundingClientRect();
      return Math.max(0, rect.bottom - p.top);
    }
    function padding() {
      var corner = container.querySelector('.leaflet-top.leaflet-left'), box = corner ? corner.getBoundingClientRect() : null;
      var left = box && box.width ? box.width + 12 : 16;
      return { tl: [left, D.topPadding || 24], br: [16, covered() + 34] };
    }
    // With the phone's bottom sheet open, the strip above it is small: fitting the whole district into
    // it would zoom out until the district is a blob. Instead the scale stays that of the closed sheet
    // (zooming out only as far as the treated and comparison streets, D.focus, need), with those
    // streets in the middle of the strip.
    var fitZoom = null;
    function fit() {
      var pad = padding();
      var open = sheetMode() && panel && panel.classList.contains('e2c-open');
      if (!open || !D.focus || fitZoom === null) {
        map.fitBounds(D.bounds, { paddingTopLeft: pad.tl, paddingBottomRight: pad.br, animate: false });
        if (!open) { fitZoom = map.getZoom(); }
        if (!open || !D.focus) { return; }
      }
      var size = map.getSize(), focus = L.latLngBounds(D.focus);
      var z = Math.min(fitZoom, map.getBoundsZoom(focus, false, L.point(pad.tl[0] + pad.br[0], pad.tl[1] + pad.br[1])));
      var shift = L.point((pad.br[0] - pad.tl[0]) / 2, (pad.br[1] - pad.tl[1]) / 2);
      map.setView(map.unproject(map.project(focus.getCenter(), z).add(shift), z), z, { animate: false });
    }
    var layoutHandlers = [];
    function relayout() {
      container.style.setProperty('--e2c-sheet', covered() + 'px');
      map.invalidateSize({ animate: false });
      fit();
      layoutHandlers.forEach(function (h) { h(); });
    }

    // --- base maps, then everything at once ----------------------------------------------------
    var tiles = {};
    function base(key) {
      Object.keys(tiles).forEach(function (k) { if (k === key) { map.addLayer(tiles[k]); } else { map.removeLayer(tiles[k]); } });
    }
    function start(opts) {
      tiles = opts.tiles || {};
      document.querySelectorAll('input[name="e2c-base"]').forEach(function (el) {
        el.addEventListener('change', function () { if (el.checked) { base(el.value); } });
      });
      base(opts.base);
      setLang(state.lang);
      relayout();
      var resizeTimer = null;
      window.addEventListener('resize', function () { clearTimeout(resizeTimer); resizeTimer = setTimeout(relayout, 100); });
      if (window.matchMedia) {
        var printing = window.matchMedia('print');
        if (printing.addEventListener) { printing.addEventListener('change', relayout); } else { printing.addListener(relayout); }
      }
      window.addEventListener('beforeprint', relayout);
      window.addEventListener('afterprint', relayout);
    }

    return { map: map, state: state, text: text, bind: bind, openPopup: openPopup, setLang: setLang,
             onLang: function (h) { langHandlers.push(h); }, onLayout: function (h) { layoutHandlers.push(h); },
             sheetMode: sheetMode, openSheet: openSheet,
             covered: covered, padding: padding, fit: fit, relayout: relayout, base: base, start: start,
             tiles: function () { return tiles; } };
  }

  return { create: create };
})();
