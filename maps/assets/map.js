/* The district map's switches (inlined by maps/district_map.py; started by a maps.elements.Script).
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

    // Role labels (対策道路 / 比較道路): each takes the first place along its street (o.labels[i].candidates,
    // in order of preference; above the street, else below) where it overlaps no label placed before it
    // and lies inside the part of the map no panel or control covers; failing that, the least bad one.
    var labels = o.labels || [];
    function visibleBox() {
      var r = map.getContainer().getBoundingClientRect(), pad = frame.padding();
      return { l: r.left + pad.tl[0] - 8, t: r.top + 4, r: r.right - 4, b: r.bottom - pad.br[1] + 10 };
    }
    function overlap(a, b) {
      return Math.max(0, Math.min(a.r, b.r) - Math.max(a.l, b.l)) * Math.max(0, Math.min(a.b, b.b) - Math.max(a.t, b.t));
    }
    function outside(box, v) {
      var inner = { l: Math.max(box.l, v.l), t: Math.max(box.t, v.t), r: Math.min(box.r, v.r), b: Math.min(box.b, v.b) };
      var area = (box.r - box.l) * (box.b - box.t), kept = Math.max(0, inner.r - inner.l) * Math.max(0, inner.b - inner.t);
      return area - kept;
    }
    function placeLabels() {
      var v = visibleBox(), placed = [];
      labels.forEach(function (lab) {
        var el = lab.marker.getElement();
        if (!el) { return; }
        var best = null;
        lab.candidates.forEach(function (ll, i) {
          [false, true].forEach(function (below) {
            lab.marker.setLatLng(ll);
            el.classList.toggle('e2c-below', below);
            var r = el.firstChild.getBoundingClientRect(), box = { l: r.left, t: r.top, r: r.right, b: r.bottom };
            var cost = 1000 * outside(box, v) + 100 * placed.reduce(function (s, p) { return s + overlap(box, p); }, 0) + i + (below ? 0.5 : 0);
            if (best === null || cost < best.cost) { best = { cost: cost, ll: ll, below: below, box: box }; }
          });
        });
        lab.marker.setLatLng(best.ll);
        el.classList.toggle('e2c-below', best.below);
        placed.push(best.box);
      });
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
