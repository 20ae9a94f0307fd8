/* The district map's switches (inlined by maps/district_map.py; started by a maps._elements.Script).
 *
 * E2CDistrict.start(frame, o): the folium layers are already on the page; o names them: tiles
 * {gsi, osm}, groups {indicator: {before, after, change}} (a feature group per indicator and map,
 * roads with their casing), extras {devices, braking, cut_through, gates} (overlays, null when the
 * district has none), labels [{marker, role, candidates}] (the role labels and the places along their street
 * they may take), and gives layer / indicator / base (the view the page opens with). It wires
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

    // Role labels (対策道路 / 比較道路): each takes a place along its street (o.labels[i].candidates, in order
    // of preference), above or below it (farther out when streets crowd together at small scales), pushed
    // sideways inside the map if it would cross its edge: the place that overlaps no label placed before it
    // and stays inside the part of the map no panel or control covers, else the least bad. A label whose
    // street is off screen is hidden.
    var labels = o.labels || [];
    var OFFSETS = [-1.5, 0.5, -2.6, 1.6, -3.7, 2.7];  // the label's top, in label heights from the street
    function visibleBox() {
      var r = map.getContainer().getBoundingClientRect(), pad = frame.padding();
      return { l: r.left + pad.tl[0] - 8, t: r.top + 4, r: r.right - 4, b: r.bottom - pad.br[1] + 10 };
    }
    function overlap(a, b) {
      return Math.max(0, Math.min(a.r, b.r) - Math.max(a.l, b.l)) * Math.max(0, Math.min(a.b, b.b) - Math.max(a.t, b.t));
    }
    function outside(box, v) {
      var w = Math.max(0, Math.min(box.r, v.r) - Math.max(box.l, v.l)), h = Math.max(0, Math.min(box.b, v.b) - Math.max(box.t, v.t));
      return (box.r - box.l) * (box.b - box.t) - w * h;
    }
    function placeLabel(lab, v, origin, placed) {
      var el = lab.marker.getElement(), span = el && el.firstChild;
      if (!span) { return; }
      span.style.display = '';
      var w = span.offsetWidth, h = span.offsetHeight, best = null;
      lab.candidates.forEach(function (ll, i) {
        var p = map.latLngToContainerPoint(ll), x = origin.x + p.x, y = origin.y + p.y;
        if (x < v.l || x > v.r || y < v.t || y > v.b) { return; }  // this part of the street is off screen
        var left = x - w / 2, dx = left < v.l ? v.l - left : Math.min(0, v.r - (left + w));
        OFFSETS.forEach(function (k, j) {
          var box = { l: x - w / 2 + dx, r: x + w / 2 + dx, t: y + k * h, b: y + (k + 1) * h };
          var crowd = placed.reduce(function (s, q) { return s + overlap(box, q); }, 0);
          var cost = 1000 * outside(box, v) + 100 * crowd + Math.abs(dx) + 3 * i + 8 * j;
          if (best === null || cost < best.cost) { best = { cost: cost, ll: ll, k: k, dx: dx, box: box }; }
        });
      });
      if (best === null) { span.style.display = 'none'; return; }
      lab.marker.setLatLng(best.ll);
      span.style.transform = 'translate(calc(-50% + ' + best.dx.toFixed(1) + 'px), ' + (best.k * 100).toFixed(0) + '%)';
      placed.push(best.box);
    }
    function placeLabels() {
      var v = visibleBox(), r = map.getContainer().getBoundingClientRect(), placed = [];
      labels.forEach(function (lab) { placeLabel(lab, v, { x: r.left, y: r.top }, placed); });
    }
    map.on('moveend', placeLabels);
    frame.onLayout(placeLabels);
    frame.onLang(function () { setTimeout(placeLabels, 0); });

    show(state.layer, state.indicator);
    frame.start({ tiles: o.tiles, base: o.base });
    scaleSymbols();

    window.e2c = { map: map, groups: groups, extras: extras, tiles: o.tiles, state: state, show: show, extra: extra,
                   base: frame.base, setLang: frame.setLang, openSheet: frame.openSheet, fit: frame.fit,
                   padding: frame.padding, labels: labels, placeLabels: placeLabels };
    return window.e2c;
  }

  return { start: start };
})();
