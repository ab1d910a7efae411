/* territoire_geo scene page: decode the embedded scene, build the deck, tooltips and camera presets.
 * Every data value reaches the DOM through textContent, never through innerHTML. */
(function () {
  'use strict';
  var cfg = JSON.parse(document.getElementById('tg-scene').textContent);
  var D = window.deck;
  var J = window.__tgJson || window.deck;
  var mapEl = document.getElementById('tg-map');
  var tip = document.getElementById('tg-tooltip');
  var hasTerrain = typeof D._TerrainExtension === 'function';
  var footer = document.querySelector('.tg-source'), legendEl = document.querySelector('.tg-legend');
  if (footer && legendEl) legendEl.style.bottom = (footer.offsetHeight + 16) + 'px';

  function points(flat, origin) {
    var out = [], x = origin[0], y = origin[1];
    for (var i = 0; i < flat.length; i += 2) {
      x += flat[i]; y += flat[i + 1];
      out.push([x / 1e6, y / 1e6]);
    }
    return out;
  }

  function decode(layer, codecs) {
    var rows = layer.data;
    if (!Array.isArray(rows) || !codecs) return;
    Object.keys(codecs).forEach(function (key) {
      var kind = codecs[key][0], arg = codecs[key][1];
      rows.forEach(function (row) {
        if (kind === 'polygon') row[key] = row[key].map(function (ring) { return points(ring, arg); });
        else if (kind === 'path') row[key] = points(row[key], arg);
        else if (kind === 'palette') row[key] = arg[row[key]];
      });
    });
  }

  function terrainMesh(g, offset) {
    var w = g.w, h = g.h, b = g.bounds, k, i, j;
    var pos = new Float32Array(w * h * 3), uv = new Float32Array(w * h * 2);
    for (j = 0; j < h; j++) {
      for (i = 0; i < w; i++) {
        k = j * w + i;
        var lon = g.x0 + i * g.dx, lat = g.y0 + j * g.dy;
        pos[3 * k] = lon; pos[3 * k + 1] = lat; pos[3 * k + 2] = g.z[k] * g.scale * g.exag + offset;
        uv[2 * k] = (lon - b[0]) / (b[2] - b[0]); uv[2 * k + 1] = (b[3] - lat) / (b[3] - b[1]);
      }
    }
    var nrm = new Float32Array(w * h * 3), mx = 111320 * Math.cos(g.y0 * Math.PI / 180) * Math.abs(g.dx);
    var my = 110540 * Math.abs(g.dy);
    for (j = 0; j < h; j++) {  // smooth shading: normals from central differences, in metres
      for (i = 0; i < w; i++) {
        k = j * w + i;
        var zx = (pos[3 * (j * w + Math.min(i + 1, w - 1)) + 2] - pos[3 * (j * w + Math.max(i - 1, 0)) + 2]) / (2 * mx);
        var zy = (pos[3 * (Math.max(j - 1, 0) * w + i) + 2] - pos[3 * (Math.min(j + 1, h - 1) * w + i) + 2]) / (2 * my);
        var len = Math.sqrt(zx * zx + zy * zy + 1);
        nrm[3 * k] = -zx / len; nrm[3 * k + 1] = -zy / len; nrm[3 * k + 2] = 1 / len;
      }
    }
    var idx = new Uint32Array((w - 1) * (h - 1) * 6), n = 0;
    for (j = 0; j < h - 1; j++) {
      for (i = 0; i < w - 1; i++) {
        var a = j * w + i, c = a + w;
        idx[n++] = a; idx[n++] = c; idx[n++] = a + 1; idx[n++] = a + 1; idx[n++] = c; idx[n++] = c + 1;
      }
    }
    return {attributes: {POSITION: {value: pos, size: 3}, NORMAL: {value: nrm, size: 3}, TEXCOORD_0: {value: uv, size: 2}},
            indices: {value: idx, size: 1}, topology: 'triangle-list', mode: 4};
  }

  var spec = cfg.deck, byId = {};
  (spec.layers || []).forEach(function (layer) {
    decode(layer, (cfg.codecs || {})[layer.id]);
    byId[layer.id] = layer;
    if (!hasTerrain) {  // bundle without layer extensions: relief drawn under the data, not draped
      delete layer.extensions;
      if (layer.operation) layer.operation = 'draw';
    }
  });
  (spec.layers || []).forEach(function (layer) {  // "tg:<id>": share the data of another layer
    if (typeof layer.data === 'string' && layer.data.indexOf('tg:') === 0) {
      var source = byId[layer.data.slice(3)];
      layer.data = source ? source.data : [];
    }
  });
  var constants = {};
  if (cfg.terrain) {
    var sunk = hasTerrain ? 0 : -(cfg.terrain.zmax - cfg.terrain.zmin) * cfg.terrain.exag - 1;
    constants.TERRAIN_MESH = terrainMesh(cfg.terrain, sunk);
  }
  var classes = {};
  Object.keys(D).forEach(function (k) { if (typeof D[k] === 'function' && /^[A-Z_]/.test(k)) classes[k] = D[k]; });
  var configuration = new J.JSONConfiguration({
    classes: classes, constants: constants, enumerations: {COORDINATE_SYSTEM: D.COORDINATE_SYSTEM}
  });
  var props = new J.JSONConverter({configuration: configuration}).convert(spec);
  var layers = props.layers || [];
  if (cfg.basemap) {
    layers.unshift(new D.TileLayer({
      id: 'basemap', data: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png', minZoom: 0, maxZoom: 19, tileSize: 256,
      renderSubLayers: function (p) {
        var bb = p.tile.bbox;
        return new D.BitmapLayer(p, {data: null, image: p.data, bounds: [bb.west, bb.south, bb.east, bb.north],
                                     extensions: hasTerrain && cfg.terrain ? [new D._TerrainExtension()] : []});
      }
    }));
  }

  function viewFor(preset) {
    var w = mapEl.clientWidth || 1200, h = mapEl.clientHeight || 800, b = preset.bounds;
    var pad = Math.round(Math.min(w, h) * 0.06);
    var fit = new D.WebMercatorViewport({width: w, height: h}).fitBounds([[b[0], b[1]], [b[2], b[3]]], {
      padding: {top: pad + 60, bottom: pad + 30, left: Math.min(pad + 120, w / 4), right: Math.min(pad + 120, w / 4)}
    });
    var pitch = preset.pitch || 0;
    return {longitude: fit.longitude, latitude: fit.latitude, zoom: fit.zoom - pitch / 250, pitch: pitch,
            bearing: preset.bearing || 0, position: [0, 0, preset.z || 0], maxPitch: 80, minZoom: 3, maxZoom: 20};
  }

  var presets = cfg.presets || [];
  var viewState = presets.length ? viewFor(presets[cfg.initial || 0]) : props.initialViewState;
  var tips = cfg.tooltips || {};
  var rendered = false;
  var deckgl = null;

  function hideTip() { tip.hidden = true; }

  function showTip(info) {
    var layerTip = info && info.layer ? tips[info.layer.id] : null;
    var obj = info ? info.object : null;
    if (!layerTip || !obj || !Array.isArray(obj.t)) { hideTip(); return; }
    tip.textContent = '';
    if (layerTip.title) {
      var head = document.createElement('strong');
      head.textContent = layerTip.title;
      tip.appendChild(head);
    }
    var table = document.createElement('table');
    layerTip.fields.forEach(function (label, i) {
      var value = obj.t[i];
      if (value === null || value === undefined || value === '') return;
      var row = table.insertRow(), th = document.createElement('th'), td = document.createElement('td');
      th.textContent = label; td.textContent = String(value);
      row.appendChild(th); row.appendChild(td);
    });
    tip.appendChild(table);
    tip.hidden = false;
    var x = Math.min(info.x + 14, mapEl.clientWidth - tip.offsetWidth - 8);
    var y = Math.min(info.y + 14, mapEl.clientHeight - tip.offsetHeight - 8);
    tip.style.left = Math.max(4, x) + 'px';
    tip.style.top = Math.max(4, y) + 'px';
  }

  function afterRender() {
    if (rendered || !deckgl || !deckgl.layerManager) return;
    var current = deckgl.layerManager.getLayers();
    for (var i = 0; i < current.length; i++) { if (!current[i].isLoaded) return; }
    rendered = true;
    document.documentElement.setAttribute('data-rendered', 'true');
    document.title = 'rendered · ' + cfg.title;
  }

  deckgl = new D.Deck({
    parent: mapEl, views: props.views, layers: layers, viewState: viewState, controller: true,
    onViewStateChange: function (e) { viewState = e.viewState; deckgl.setProps({viewState: viewState}); },
    onHover: showTip, onClick: showTip, onAfterRender: afterRender,
    getCursor: function (s) { return s.isDragging ? 'grabbing' : (s.isHovering ? 'pointer' : 'grab'); },
    onError: function (error) { console.error('deck.gl: ' + (error && error.message)); }
  });

  var hidden = {};
  var boxes = Array.prototype.slice.call(document.querySelectorAll('.tg-toggles input[data-toggle]'));

  function showLayers() {
    boxes.forEach(function (box) {
      var ids = (cfg.toggles || [])[Number(box.getAttribute('data-toggle'))] || [];
      box.checked = !ids.some(function (id) { return hidden[id]; });
    });
    deckgl.setProps({layers: layers.map(function (layer) {
      var props = {visible: !hidden[layer.id]};
      if (layer.id === 'terrain' && cfg.terrain && cfg.terrain.plain) {  // raster blended in the relief texture
        props.texture = hidden.raster ? cfg.terrain.plain : byId.terrain.texture;
      }
      return layer.clone(props);
    })});
  }

  boxes.forEach(function (box) {
    box.addEventListener('change', function () {
      ((cfg.toggles || [])[Number(box.getAttribute('data-toggle'))] || []).forEach(function (id) {
        hidden[id] = !box.checked;
      });
      showLayers();
    });
  });

  function fly(index, duration) {
    var target = viewFor(presets[index]);
    if (duration) {
      target.transitionDuration = duration;
      target.transitionInterpolator = new D.FlyToInterpolator();
    }
    viewState = target;
    hideTip();
    hidden = {};
    (presets[index].hide || []).forEach(function (id) { hidden[id] = true; });
    deckgl.setProps({viewState: viewState});
    showLayers();
    Array.prototype.forEach.call(document.querySelectorAll('.tg-presets button'), function (b) {
      b.setAttribute('aria-pressed', String(Number(b.getAttribute('data-preset')) === index));
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll('.tg-presets button'), function (button) {
    button.addEventListener('click', function () { fly(Number(button.getAttribute('data-preset')), 1500); });
  });
  mapEl.addEventListener('mouseleave', hideTip);
  if (presets.length) fly(cfg.initial || 0, 0);
  window.territoireScene = {deck: deckgl, fly: fly, presets: presets};
})();
