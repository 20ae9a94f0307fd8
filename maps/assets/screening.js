/* The screening map's candidate list (inlined by maps/screening_map.py; started by a
 * maps._elements.Script).
 *
 * E2CScreening.start(frame, o): the folium layers are already on the page (other roads in grey, the
 * area outline, each candidate a feature group of its line and rank marker, tooltips and popups bound
 * through the frame); o gives tiles {gsi, osm}, base, and candidates: [{rank, road_id, lat, lon,
 * popup: {ja, en}}]. A tap on a candidate in the list opens its popup (closing the bottom sheet on
 * phones). window.e2c exposes the map and the candidates for tests. */
window.E2CScreening = (function () {
  'use strict';

  function start(frame, o) {
    var byRank = {};
    o.candidates.forEach(function (c) { byRank[c.rank] = c; });
    function openCandidate(rank) {
      var c = byRank[rank];
      if (!c) { return; }
      if (frame.sheetMode()) { frame.openSheet(false); }
      frame.openPopup([c.lat, c.lon], frame.text(c.popup));
    }
    document.querySelectorAll('button.e2c-cand').forEach(function (el) {
      el.addEventListener('click', function () { openCandidate(parseInt(el.getAttribute('data-rank'), 10)); });
    });

    frame.start({ tiles: o.tiles, base: o.base });

    window.e2c = { map: frame.map, tiles: o.tiles, state: frame.state, base: frame.base, setLang: frame.setLang,
                   openSheet: frame.openSheet, fit: frame.fit, padding: frame.padding, openCandidate: openCandidate,
                   candidates: o.candidates.map(function (c) { return { rank: c.rank, road_id: c.road_id }; }) };
    return window.e2c;
  }

  return { start: start };
})();
