/* The district map's behaviour (inlined into the self-contained HTML by maps/district_map.py).
 *
 * Reads window.E2C_DATA (written by the renderer): geometries, road layers per indicator and map
 * (before / after / change) with their styles and tooltip texts in Japanese and English, labels,
 * outlines, devices and optional overlays. Draws them with Leaflet, wires the switches, the
 * language toggle and the phone's bottom sheet, and fits the roads into the part of the map no
 * panel covers. window.e2c exposes the map and its state for tests and readers' own scripts. */
(function () {
  'use strict';
  var DATA = window.E2C_DATA;
  var root = document.documentElement;
  var state = { layer: DATA.initial_layer, indicator: DATA.initial_indicator, lang: DATA.lang };

  var map = L.map('e2c-map', {
    zoomControl: false, zoomSnap: 0.25, zoomDelta: 0.5, attributionControl: true, tap: true
  });
  var zoom = L.control.zoom({ position: 'topleft' }).addTo(map);
  L.control.scale({ metric: true, imperial: false, position: 'bottomleft', maxWidth: 120 }).addTo(map);
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');

  var tiles = {};
  Object.keys(DATA.tiles).forEach(function (k) {
    var t = DATA.tiles[k];
    tiles[k] = L.tileLayer(t.url, { attribution: t.attribution, maxNativeZoom: t.max_native_zoom, maxZoom: 19 });
  });

  function text(obj) { return obj[state.lang] || obj.ja; }
  var hover = window.matchMedia && window.matchMedia('(hover: hover)').matches;

  // --- popups: one at a time, kept inside the uncovered part of the map ---------------------------
  function openPopup(latlng, tip) {
    var pad = padding();
    var size = map.getSize();
    L.popup({
      maxWidth: Math.max(160, Math.min(300, size.x - 60)), autoPan: true, keepInView: true,
      autoPanPaddingTopLeft: L.point(pad.tl[0], pad.tl[1]),
      autoPanPaddingBottomRight: L.point(pad.br[0], pad.br[1]), className: 'e2c-popup'
    }).setLatLng(latlng).setContent(text(tip)).openOn(map);
  }
  function interactive(layer, tip, sticky) {
    if (hover) {
      layer.bindTooltip(function () { return text(tip); }, { sticky: sticky, direction: 'auto', opacity: 0.95 });
    }
    layer.on('click', function (e) {
      L.DomEvent.stopPropagation(e);
      layer.closeTooltip && layer.closeTooltip();
      openPopup(e.latlng, tip);
    });
  }

  // --- outlines -------------------------------------------------------------------------------
  L.geoJSON(DATA.outlines.ward, { interactive: false,
    style: { color: '#555', weight: 2.5, opacity: 0.9, fill: false } }).addTo(map);
  L.geoJSON(DATA.outlines.area, { interactive: false,
    style: { color: '#222', weight: 2.5, opacity: 0.9, dashArray: '10 6', fill: false } }).addTo(map);

  // --- roads: one feature group per indicator × map, all embedded, switched here ---------------
  var groups = {};
  Object.keys(DATA.indicators).forEach(function (ind) {
    groups[ind] = {};
    Object.keys(DATA.indicators[ind].layers).forEach(function (key) {
      var fc = { type: 'FeatureCollection', features: DATA.indicators[ind].layers[key].map(function (p) {
        return { type: 'Feature', properties: p, geometry: DATA.geoms[p.g] }; }) };
      var g = L.featureGroup();
      L.geoJSON(fc, { interactive: false,
        filter: function (f) { return f.properties.kind === 'value'; },
        style: function (f) { return { color: DATA.casing, weight: f.properties.style.weight + 3, opacity: 0.85,
                                       lineCap: 'round', className: 'e2c-casing' }; } }).addTo(g);
      L.geoJSON(fc, {
        style: function (f) {
          return L.extend({ className: 'e2c-road e2c-' + f.properties.kind + ' e2c-role-' + f.properties.role },
                          f.properties.style);
        },
        onEachFeature: function (f, layer) { interactive(layer, f.properties.tip, true); }
      }).addTo(g);
      groups[ind][key] = g;
    });
  });

  // --- overlays: devices, cut-through routes, braking hot spots ---------------------------------
  var extras = {};
  if (DATA.cut_through) {
    extras.cut_through = L.geoJSON(DATA.cut_through, {
      style: function (f) { return f.properties.style; },
      onEachFeature: function (f, layer) { interactive(layer, f.properties.tip, true); } });
  }
  if (DATA.braking) {
    extras.braking = L.geoJSON(DATA.braking, {
      pointToLayer: function (f, latlng) { return L.circleMarker(latlng, f.properties.style); },
      onEachFeature: function (f, layer) { interactive(layer, f.properties.tip, false); } });
  }
  if (DATA.gates) {  // where roads cross the outline: a ring and the gate's id; the name in the tooltip / popup
    extras.gates = L.geoJSON(DATA.gates, {
      pointToLayer: function (f, latlng) {
        return L.marker(latlng, { keyboard: false, riseOnHover: true, icon: L.divIcon({
          className: 'e2c-gate', iconSize: [14, 14], iconAnchor: [7, 7],
          html: '<span class="e2c-gate-ring" style="border-color:' + DATA.gate_colour + '"></span>' +
                '<span class="e2c-gate-id" style="color:' + DATA.gate_colour + '">' + f.properties.id + '</span>' }) });
      },
      onEachFeature: function (f, layer) { interactive(layer, f.properties.tip, false); } });
  }
  if (DATA.devices) {
    extras.devices = L.geoJSON(DATA.devices, {
      pointToLayer: function (f, latlng) {
        return L.marker(latlng, { keyboard: false, riseOnHover: true, icon: L.divIcon({
          className: 'e2c-device e2c-device-' + f.properties.kind, html: DATA.device_icons[f.properties.kind],
          iconSize: [22, 22], iconAnchor: [11, 11] }) });
      },
      onEachFeature: function (f, layer) { interactive(layer, f.properties.tip, false); } });
  }
  DATA.labels.forEach(function (p) {
    L.marker([p.lat, p.lon], { interactive: false, keyboard: false,
      icon: L.divIcon({ className: 'e2c-label e2c-' + p.role, iconSize: null,
        html: '<span><span lang="ja">' + p.text.ja + '</span><span lang="en">' + p.text.en + '</span></span>' })
    }).addTo(map);
  });

  // --- switches -------------------------------------------------------------------------------
  function show(key, ind) {
    state.layer = key || state.layer; state.indicator = ind || state.indicator;
    Object.keys(groups).forEach(function (i) {
      Object.keys(groups[i]).forEach(function (k) {
        var g = groups[i][k];
        if (i === state.indicator && k === state.layer) { map.addLayer(g); } else { map.removeLayer(g); }
      });
    });
    Object.keys(extras).forEach(function (k) { if (map.hasLayer(extras[k]) && extras[k].bringToFront) { extras[k].bringToFront(); } });
    var want = state.indicator + ':' + state.layer;
    document.querySelectorAll('[data-e2c-legend]').forEach(function (el) {
      el.style.display = el.getAttribute('data-e2c-legend') === want ? '' : 'none';
    });
    document.querySelectorAll('[data-e2c-ind]').forEach(function (el) {
      el.style.display = el.getAttribute('data-e2c-ind') === state.indicator ? '' : 'none';
    });
    document.querySelectorAll('[data-e2c-showing]').forEach(function (el) {
      el.style.display = el.getAttribute('data-e2c-showing') === state.layer ? '' : 'none';
    });
  }
  function extra(key, on) {
    if (!extras[key]) { return; }
    if (on) { map.addLayer(extras[key]); if (extras[key].bringToFront) { extras[key].bringToFront(); } }
    else { map.removeLayer(extras[key]); }
    document.querySelectorAll('[data-e2c-extra-legend="' + key + '"]').forEach(function (el) {
      el.style.display = on ? '' : 'none'; });
  }
  function base(key) {
    Object.keys(tiles).forEach(function (k) {
      if (k === key) { map.addLayer(tiles[k]); } else { map.removeLayer(tiles[k]); }
    });
  }
  function setLang(lang) {
    state.lang = lang;
    root.setAttribute('lang', lang);
    document.title = DATA.doc_title[lang];
    var z = DATA.zoom_titles[lang];
    var zin = document.querySelector('.leaflet-control-zoom-in'), zout = document.querySelector('.leaflet-control-zoom-out');
    if (zin) { zin.title = z[0]; zin.setAttribute('aria-label', z[0]); }
    if (zout) { zout.title = z[1]; zout.setAttribute('aria-label', z[1]); }
    map.closePopup();
    map.eachLayer(function (l) { if (l.closeTooltip) { l.closeTooltip(); } });
    var toggle = document.getElementById('e2c-lang-toggle');
    if (toggle) { toggle.textContent = DATA.lang_toggle[lang]; toggle.setAttribute('aria-label', DATA.lang_toggle_label[lang]); }
    map.getContainer().setAttribute('aria-label', DATA.map_label[lang]);
  }
  function on(selector, handler) {
    document.querySelectorAll(selector).forEach(function (el) {
      el.addEventListener('change', function () { handler(el); });
    });
  }
  on('input[name="e2c-layer"]', function (el) { if (el.checked) { show(el.value, null); } });
  on('input[name="e2c-indicator"]', function (el) { if (el.checked) { show(null, el.value); } });
  on('input[name="e2c-extra"]', function (el) { extra(el.value, el.checked); });
  on('input[name="e2c-base"]', function (el) { if (el.checked) { base(el.value); } });
  document.querySelectorAll('input[name="e2c-extra"]').forEach(function (el) { extra(el.value, el.checked); });
  var toggle = document.getElementById('e2c-lang-toggle');
  if (toggle) { toggle.addEventListener('click', function () { setLang(state.lang === 'ja' ? 'en' : 'ja'); }); }
  var printButton = document.getElementById('e2c-print');
  if (printButton) { printButton.addEventListener('click', function () { window.print(); }); }

  // --- the phone's bottom sheet ---------------------------------------------------------------
  var panel = document.getElementById('e2c-panel');
  var handle = document.getElementById('e2c-handle');
  function sheetMode() { return handle && window.getComputedStyle(handle).display !== 'none'; }
  function openSheet(open) {
    panel.classList.toggle('e2c-open', open);
    handle.setAttribute('aria-expanded', open ? 'true' : 'false');
    relayout();
  }
  if (handle) { handle.addEventListener('click', function () { openSheet(!panel.classList.contains('e2c-open')); }); }

  // --- fitting the roads into the uncovered part of the map --------------------------------------
  // The side column never covers the map; on phones the bottom sheet overlaps its lower edge, and
  // Leaflet's own controls sit in its corners: paddings keep every road clear of all of them.
  function covered() {
    var rect = map.getContainer().getBoundingClientRect(), bottom = 0;
    if (sheetMode()) {
      var p = panel.getBoundingClientRect();
      bottom = Math.max(0, rect.bottom - p.top);
    }
    return bottom;
  }
  function padding() {
    var bottom = covered();
    var zoomBox = zoom.getContainer().getBoundingClientRect();
    var left = zoomBox.width ? zoomBox.width + 22 : 16;
    // labels of the treated and comparison streets stand up to ~40 px above their street
    return { tl: [left, 44], br: [16, bottom + 34] };
  }
  function relayout() {
    var bottom = covered();
    map.getContainer().style.setProperty('--e2c-sheet', bottom + 'px');
    map.invalidateSize({ animate: false });
    fit();
  }
  function fit() {
    var pad = padding();
    map.fitBounds(DATA.bounds, { paddingTopLeft: pad.tl, paddingBottomRight: pad.br, animate: false });
  }

  // At small scales the device symbols shrink so that they do not hide the treated street's colour.
  function scaleSymbols() { map.getContainer().classList.toggle('e2c-far', map.getZoom() < 16.5); }
  map.on('zoomend', scaleSymbols);

  show(state.layer, state.indicator);
  base(DATA.initial_base);
  setLang(state.lang);
  relayout();
  scaleSymbols();
  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(relayout, 100);
  });
  if (window.matchMedia) {
    var printing = window.matchMedia('print');
    var onPrint = function () { relayout(); };
    if (printing.addEventListener) { printing.addEventListener('change', onPrint); } else { printing.addListener(onPrint); }
  }
  window.addEventListener('beforeprint', relayout);
  window.addEventListener('afterprint', relayout);

  window.e2c = { map: map, groups: groups, extras: extras, tiles: tiles, state: state, show: show, base: base,
                 extra: extra, setLang: setLang, openSheet: openSheet, fit: fit, padding: padding };
})();
