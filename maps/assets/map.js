/* The district map's switches (inlined by maps/district_map.py; started by a maps.elements.Script).
 *
 * E2CDistrict.start(frame, o): the folium layers are already on the page; o names them: tiles
 * {gsi, osm}, groups {indicator: {before, after, change}} (a feature group per indicator and map,
 * roads with their casing), extras {devices, braking, cut_through, gates} (overlays, null when the
 * district has none), and gives layer / indicator / base (the view the page opens with). It wires
 * the map, indicator and overlay switches and the print button, shows the legend of what is drawn,
 * shrinks the device symbols at small scales, then starts the frame. window.e2c exposes the map and
 * its state for tests and readers' own scripts. */
window.E2CDistrict = (function () {
  'use strict';

  function start(frame, o) {
    var map = frame.map;
    var state = { layer: o.layer, indicator: o.indicator, lang: frame.state.lang };
    var groups = o.groups, extras = {};
    Object.keys(o.extras).forEach(function (k) { if (o.extras[k]) { extras[k] = o.extras[k]; } });
    frame.onLang(function (lang) { state.lang = lang; });

    function display(selector, shown) {
      document.querySelectorAll(selector).forEach(function (el) { el.style.display = shown(el) ? '' : 'none'; });
    }
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
      display('[data-e2c-legend]', function (el) { return el.getAttribute('data-e2c-legend') === want; });
      display('[data-e2c-ind]', function (el) { return el.getAttribute('data-e2c-ind') === state.indicator; });
      display('[data-e2c-showing]', function (el) { return el.getAttribute('data-e2c-showing') === state.layer; });
    }
    function extra(key, on) {
      if (!extras[key]) { return; }
      if (on) { map.addLayer(extras[key]); if (extras[key].bringToFront) { extras[key].bringToFront(); } }
      else { map.removeLayer(extras[key]); }
      display('[data-e2c-extra-legend="' + key + '"]', function () { return on; });
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
    frame.start({ tiles: o.tiles, base: o.base });
    scaleSymbols();

    window.e2c = { map: map, groups: groups, extras: extras, tiles: o.tiles, state: state, show: show, extra: extra,
                   base: frame.base, setLang: frame.setLang, openSheet: frame.openSheet, fit: frame.fit,
                   padding: frame.padding };
    return window.e2c;
  }

  return { start: start };
})();
