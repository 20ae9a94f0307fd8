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
  var state = { lang: D.lang };

  // the frame shared with the district map (frame.js): map, tiles, language, bottom sheet, fitting
  var frame = E2CFrame.create(D, state, { popupMaxWidth: 340 });
  var map = frame.map, text = frame.text;
  var hover = window.matchMedia && window.matchMedia('(hover: hover)').matches;

  var openPopup = frame.openPopup;

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
    if (frame.sheetMode()) { frame.openSheet(false); }
    openPopup([x.c.lat, x.c.lon], text(x.c.popup));
  }
  document.querySelectorAll('button.e2c-cand').forEach(function (el) {
    el.addEventListener('click', function () { openCandidate(parseInt(el.getAttribute('data-rank'), 10)); });
  });

  frame.start('gsi');

  window.e2c = { map: map, tiles: frame.tiles, state: state, base: frame.base, setLang: frame.setLang,
                 openSheet: frame.openSheet, fit: frame.fit, padding: frame.padding, openCandidate: openCandidate,
                 candidates: D.candidates.map(function (c) { return { rank: c.rank, road_id: c.road_id }; }) };
})();
