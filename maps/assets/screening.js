/* The screening map's behaviour (inlined into the self-contained HTML by maps/screening_map.py).
 *
 * Reads window.E2C_SCREEN: the top candidates of a stored screening (geometry, rank, colour, popup
 * and tooltip texts in Japanese and English), the other roads of the network, the area outline.
 * Draws them with Leaflet; wires the candidate list, the base map switch, the language button and the
 * phone's bottom sheet as the district map does (maps/assets/map.js), and fits the roads into the part
 * of the map no panel covers. window.e2c exposes the map and the candidates for tests. */
(function () {
  'use strict';
  var D = window.E2C_SCREEN;
  var root = document.documentElement;
  var state = { lang: D.lang };

  var map = L.map('e2c-map', { zoomControl: false, zoomSnap: 0.25, zoomDelta: 0.5, attributionControl: true, tap: true });
  var zoom = L.control.zoom({ position: 'topleft' }).addTo(map);
  L.control.scale({ metric: true, imperial: false, position: 'bottomleft', maxWidth: 120 }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  var tiles = {};
  Object.keys(D.tiles).forEach(function (k) {
    var t = D.tiles[k];
    tiles[k] = L.tileLayer(t.url, { attribution: t.attribution, maxNativeZoom: t.max_native_zoom, maxZoom: 19 });
  });
  function text(obj) { return obj[state.lang] || obj.ja; }
  var hover = window.matchMedia && window.matchMedia('(hover: hover)').matches;

  function openPopup(latlng, html) {
    var pad = padding(), size = map.getSize();
    L.popup({
      maxWidth: Math.max(180, Math.min(340, size.x - pad.tl[0] - pad.br[0] - 34)),  // 34: the content's margins, the border maxHeight: Math.max(160, size.y - pad.tl[1] - pad.br[1] - 20),
      autoPan: true, keepInView: true, autoPanPaddingTopLeft: L.point(pad.tl[0], pad.tl[1]),
      autoPanPaddingBottomRight: L.point(pad.br[0], pad.br[1]), className: 'e2c-popup'
    }).setLatLng(latlng).setContent(html).openOn(map);
  }

  L.geoJSON(D.area, { interactive: false,
    style: { color: '#222', weight: 2.5, opacity: 0.9, dashArray: '10 6', fill: false } }).addTo(map);
  L.geoJSON(D.roads, { interactive: false,
    style: function (f) { return L.extend({ lineCap: 'round' }, D.styles[f.properties.kind]); } }).addTo(map);

  // candidates: the best drawn last (on top); a tap on the line or on its rank number opens the popup
  var byRank = {};
  function bind(layer, c) {
    if (hover) { layer.bindTooltip(function () { return text(c.tip); }, { sticky: true, direction: 'auto', opacity: 0.95 }); }
    layer.on('click', function (e) {
      L.DomEvent.stopPropagation(e);
      if (layer.closeTooltip) { layer.closeTooltip(); }
      openPopup(e.latlng, text(c.popup));
    });
  }
  D.candidates.slice().reverse().forEach(function (c) {
    var g = L.featureGroup();
    L.geoJSON(c.geometry, { interactive: false,
      style: { color: '#ffffff', weight: c.rank <= 3 ? 11 : 10, opacity: 0.95, lineCap: 'round', className: 'e2c-casing' } }).addTo(g);
    var line = L.geoJSON(c.geometry, { style: { color: c.colour, weight: c.rank <= 3 ? 7 : 6, opacity: 1, lineCap: 'round',
      className: 'e2c-candidate e2c-cand-' + c.rank } });
    line.eachLayer(function (l) { bind(l, c); });
    line.addTo(g);
    var marker = L.marker([c.lat, c.lon], { keyboard: false, riseOnHover: true, zIndexOffset: 1000 - c.rank,
      icon: L.divIcon({ className: 'e2c-rank-marker', iconSize: [24, 24], iconAnchor: [12, 12],
        html: '<span style="background:' + c.colour + '">' + c.rank + '</span>' }) });
    bind(marker, c);
    marker.addTo(g);
    g.addTo(map);
    byRank[c.rank] = { c: c, group: g };
  });
  function openCandidate(rank) {
    var x = byRank[rank];
    if (!x) { return; }
    if (sheetMode()) { openSheet(false); }
    openPopup([x.c.lat, x.c.lon], text(x.c.popup));
  }
  document.querySelectorAll('button.e2c-cand').forEach(function (el) {
    el.addEventListener('click', function () { openCandidate(parseInt(el.getAttribute('data-rank'), 10)); });
  });

  function base(key) {
    Object.keys(tiles).forEach(function (k) { if (k === key) { map.addLayer(tiles[k]); } else { map.removeLayer(tiles[k]); } });
  }
  document.querySelectorAll('input[name="e2c-base"]').forEach(function (el) {
    el.addEventListener('change', function () { if (el.checked) { base(el.value); } });
  });
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
  }
  var toggle = document.getElementById('e2c-lang-toggle');
  if (toggle) { toggle.addEventListener('click', function () { setLang(state.lang === 'ja' ? 'en' : 'ja'); }); }

  // the phone's bottom sheet and the fitting into the uncovered part of the map, as on the district map
  var panel = document.getElementById('e2c-panel');
  var handle = document.getElementById('e2c-handle');
  function sheetMode() { return handle && window.getComputedStyle(handle).display !== 'none'; }
  function openSheet(open) {
    panel.classList.toggle('e2c-open', open);
    handle.setAttribute('aria-expanded', open ? 'true' : 'false');
    relayout();
  }
  if (handle) { handle.addEventListener('click', function () { openSheet(!panel.classList.contains('e2c-open')); }); }
  function covered() {
    if (!sheetMode()) { return 0; }
    var rect = map.getContainer().getBoundingClientRect(), p = panel.getBoundingClientRect();
    return Math.max(0, rect.bottom - p.top);
  }
  function padding() {
    var bottom = covered(), zoomBox = zoom.getContainer().getBoundingClientRect();
    return { tl: [zoomBox.width ? zoomBox.width + 22 : 16, 24], br: [16, bottom + 34] };
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

  base('gsi');
  setLang(state.lang);
  relayout();
  var resizeTimer = null;
  window.addEventListener('resize', function () { clearTimeout(resizeTimer); resizeTimer = setTimeout(relayout, 100); });
  window.addEventListener('beforeprint', relayout);
  window.addEventListener('afterprint', relayout);

  window.e2c = { map: map, tiles: tiles, state: state, base: base, setLang: setLang, openSheet: openSheet, fit: fit,
                 padding: padding, openCandidate: openCandidate,
                 candidates: D.candidates.map(function (c) { return { rank: c.rank, road_id: c.road_id }; }) };
})();
