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
  var state = { layer: DATA.initial_layer, indicator: DATA.initial_indicator, lang: DATA.lang };

  // The frame shared with the screening map (frame.js): map, tiles, language, bottom sheet, fitting.
  // 44 px above the roads: labels of the treated and comparison streets stand up to ~40 px above them.
  var frame = E2CFrame.create(DATA, state, { topPadding: 44, popupMaxWidth: 300 });
  var map = frame.map, tiles = frame.tiles, text = frame.text;
  var hover = window.matchMedia && window.matchMedia('(hover: hover)').matches;

  // --- popups: one at a time, kept inside the uncovered part of the map ---------------------------
  function openPopup(latlng, tip) { frame.openPopup(latlng, text(tip)); }
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
  function on(selector, handler) {
    document.querySelectorAll(selector).forEach(function (el) {
      el.addEventListener('change', function () { handler(el); });
    });
  }
  on('input[name="e2c-layer"]', function (el) { if (el.checked) { show(el.value, null); } });
  on('input[name="e2c-indicator"]', function (el) { if (el.checked) { show(null, el.value); } });
  on('input[name="e2c-extra"]', function (el) { extra(el.value, el.checked); });
  document.querySelectorAll('input[name="e2c-extra"]').forEach(function (el) { extra(el.value, el.checked); });
  var printButton = document.getElementById('e2c-print');
  if (printButton) { printButton.addEventListener('click', function () { window.print(); }); }

  // At small scales the device symbols shrink so that they do not hide the treated street's colour.
  function scaleSymbols() { map.getContainer().classList.toggle('e2c-far', map.getZoom() < 16.5); }
  map.on('zoomend', scaleSymbols);

  show(state.layer, state.indicator);
  frame.start(DATA.initial_base);
  scaleSymbols();

  window.e2c = { map: map, groups: groups, extras: extras, tiles: tiles, state: state, show: show, base: frame.base,
                 extra: extra, setLang: frame.setLang, openSheet: frame.openSheet, fit: frame.fit, padding: frame.padding };
})();
