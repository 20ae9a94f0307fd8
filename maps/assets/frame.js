/* The frame shared by the product's self-contained maps (the district map, map.js, and the screening
 * map, screening.js; both inline this file first): the Leaflet map with its zoom buttons, metric
 * scale and base tiles, the base-map switch, the language button, the phone's bottom sheet, popups
 * kept inside the part of the map no panel covers, and the fitting of the roads into that part.
 *
 * A page script calls E2CFrame.create(data, state, options), draws its layers on frame.map, then
 * calls frame.start(initialBase). data: tiles, bounds, doc_title, zoom_titles, lang_toggle,
 * lang_toggle_label, map_label (each text {ja, en}); state.lang is the current language.
 * options: topPadding (px kept free above the roads, default 24), popupMaxWidth (default 300),
 * onLang(lang) (the page's own relabelling). */
window.E2CFrame = (function () {
  'use strict';

  function create(D, state, options) {
    var opts = options || {};
    var root = document.documentElement;
    var map = L.map('e2c-map', { zoomControl: false, zoomSnap: 0.25, zoomDelta: 0.5, attributionControl: true, tap: true });
    var zoom = L.control.zoom({ position: 'topleft' }).addTo(map);
    L.control.scale({ metric: true, imperial: false, position: 'bottomleft', maxWidth: 120 }).addTo(map);
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');

    var tiles = {};
    Object.keys(D.tiles).forEach(function (k) {
      var t = D.tiles[k];
      tiles[k] = L.tileLayer(t.url, { attribution: t.attribution, maxNativeZoom: t.max_native_zoom, maxZoom: 19 });
    });
    function base(key) {
      Object.keys(tiles).forEach(function (k) { if (k === key) { map.addLayer(tiles[k]); } else { map.removeLayer(tiles[k]); } });
    }
    document.querySelectorAll('input[name="e2c-base"]').forEach(function (el) {
      el.addEventListener('change', function () { if (el.checked) { base(el.value); } });
    });

    function text(obj) { return obj[state.lang] || obj.ja; }
    function setLang(lang) {
      state.lang = lang;
      root.setAttribute('lang', lang);
      document.title = D.doc_title[lang];
      var z = D.zoom_titles[lang];
      var zin = document.querySelector('.leaflet-control-zoom-in'), zout = document.querySelector('.leaflet-control-zoom-out');
      if (zin) { zin.title = z[0]; zin.setAttribute('aria-label', z[0]); }
      if (zout) { zout.title = z[1]; zout.setAttribute('aria-label', z[1]); }
      map.closePopup();
      map.eachLayer(function (l) { if (l.closeTooltip) { l.closeTooltip(); } });
      var toggle = document.getElementById('e2c-lang-toggle');
      if (toggle) { toggle.textContent = D.lang_toggle[lang]; toggle.setAttribute('aria-label', D.lang_toggle_label[lang]); }
      map.getContainer().setAttribute('aria-label', D.map_label[lang]);
      if (opts.onLang) { opts.onLang(lang); }
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
    // Leaflet's own controls sit in its corners: paddings keep every road clear of all of them.
    function covered() {
      if (!sheetMode()) { return 0; }
      var rect = map.getContainer().getBoundingClientRect(), p = panel.getBoundingClientRect();
      return Math.max(0, rect.bottom - p.top);
    }
    function padding() {
      var bottom = covered(), zoomBox = zoom.getContainer().getBoundingClientRect();
      return { tl: [zoomBox.width ? zoomBox.width + 22 : 16, opts.topPadding || 24], br: [16, bottom + 34] };
    }
    function fit() {
      var pad = padding();
      map.fitBounds(D.bounds, { paddingTopLeft: pad.tl, paddingBottomRight: pad.br, animate: false });
    }
    function relayout() {
      map.getContainer().style.setProperty('--e2c-sheet', covered() + 'px');
      map.invalidateSize({ animate: false });
      fit();
    }

    // --- popups: one at a time, kept inside the uncovered part of the map -----------------------
    function openPopup(latlng, html) {
      var pad = padding(), size = map.getSize();
      L.popup({
        // 34: the popup content's margins and border
        maxWidth: Math.max(160, Math.min(opts.popupMaxWidth || 300, size.x - pad.tl[0] - pad.br[0] - 34)),
        maxHeight: Math.max(160, size.y - pad.tl[1] - pad.br[1] - 20),
        autoPan: true, keepInView: true, autoPanPaddingTopLeft: L.point(pad.tl[0], pad.tl[1]),
        autoPanPaddingBottomRight: L.point(pad.br[0], pad.br[1]), className: 'e2c-popup'
      }).setLatLng(latlng).setContent(html).openOn(map);
    }

    function start(initialBase) {
      base(initialBase);
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

    return { map: map, zoom: zoom, tiles: tiles, base: base, text: text, setLang: setLang, sheetMode: sheetMode,
             openSheet: openSheet, covered: covered, padding: padding, fit: fit, relayout: relayout,
             openPopup: openPopup, start: start };
  }

  return { create: create };
})();
