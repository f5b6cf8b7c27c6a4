// The cyclejax explorer page: talks JSON to cyclejax/explore_server.py and draws.
// All model work happens on the server; this file only keeps the user's choices
// (input, direction, interventions, open layers) and shows what comes back.
'use strict';

const state = {
  info: null,
  input: null, // {input: key, source: 'test'|'toy'|'upload'}
  direction: null,
  size: null,
  tab: 'test',
  layerScale: {}, // layer -> factor for the whole layer (1 = unchanged)
  channels: {}, // layer -> {channel: factor}
  regions: {}, // layer -> [{y0, y1, x0, x1, factor, channel}] (layer pixels)
  drag: null, // {name, channel, y, x}: where a region drag began
  follow: null, // the polling timer while following the run
  zeroBottleneck: false,
  keepSkips: null, // null keeps all; else the kept levels
  open: new Set(), // layers whose grids are shown
  run: null,
  layers: [],
  busy: false,
  again: false,
  seq: 0,
  grids: {}, // layer -> layout of its last grid
};

const $ = (selector) => document.querySelector(selector);

// The launch's token (the server puts it into the page): every call carries it.
const TOKEN = document.querySelector('meta[name="cyclejax-token"]')?.content || '';

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}), 'X-Cyclejax-Token': TOKEN };
  const response = await fetch(path, { ...options, headers });
  let body;
  try {
    body = await response.json();
  } catch (e) {
    body = { error: `HTTP ${response.status} ${response.statusText}` };
  }
  if (!response.ok || body.error) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

const postJSON = (path, value) =>
  api(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value) });

function showError(message) {
  const box = $('#error');
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $('#error').hidden = true;
  $('#error').textContent = '';
}

// ---------------------------------------------------------------------------------
// Inputs.

async function setInput(promise, source) {
  clearError();
  try {
    const result = await promise;
    state.input = { input: result.input, source };
    $('#input-img').src = result.image;
    if (source === 'toy' && result.truth) {
      const t = result.truth.shapes[0];
      const color = t.true_color ? `true color rgb(${t.true_color.join(', ')})` : 'no true color (unseen kind)';
      $('#toy-truth').textContent = `${t.kind}: ${color}, area ${t.area} px`;
    }
    scheduleUpdate(0);
  } catch (e) {
    showError(e.message);
  }
}

function loadTest() {
  const body = {
    source: 'test',
    domain: $('#test-domain').value,
    index: Number($('#test-index').value),
    size: state.size,
  };
  return setInput(postJSON('/api/input', body), 'test');
}

function loadToy() {
  const body = {
    source: 'toy',
    kind: $('#toy-kind').value,
    domain: $('#toy-domain').value,
    background: Number($('#toy-background').value),
    gray: Number($('#toy-gray').value),
    noise: Number($('#toy-noise').value),
    aspect: Number($('#toy-aspect').value),
    shift: $('#toy-shift').checked,
    seed: Number($('#toy-seed').value),
    size: state.size,
  };
  return setInput(postJSON('/api/input', body), 'toy');
}

function loadUpload() {
  const file = $('#upload-file').files[0];
  if (!file) return;
  const url = `/api/upload?size=${state.size}`;
  return setInput(api(url, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: file }), 'upload');
}

function reloadInput() {
  if (state.tab === 'test') return loadTest();
  if (state.tab === 'toy') return loadToy();
  return loadUpload();
}

function selectTab(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll('.tab')) button.classList.toggle('active', button.dataset.tab === tab);
  for (const name of ['test', 'toy', 'upload']) $(`#tab-${name}`).hidden = name !== tab;
}

// ---------------------------------------------------------------------------------
// Interventions and updates.

function interventions() {
  const layers = {};
  for (const [name, factor] of Object.entries(state.layerScale)) if (factor !== 1) layers[name] = factor;
  return {
    layers,
    channels: state.channels,
    zero_bottleneck: state.zeroBottleneck,
    keep_skips: state.keepSkips,
    regions: state.regions,
  };
}

let timer = null;
function scheduleUpdate(delay = 120) {
  clearTimeout(timer);
  timer = setTimeout(kick, delay);
}

async function kick() {
  if (state.busy) {
    state.again = true;
    return;
  }
  state.busy = true;
  try {
    await update();
  } finally {
    state.busy = false;
    if (state.again) {
      state.again = false;
      kick();
    }
  }
}

async function update() {
  if (!state.input) return;
  const seq = ++state.seq;
  const start = performance.now();
  try {
    const result = await postJSON('/api/run', {
      input: state.input.input,
      direction: state.direction,
      interventions: interventions(),
    });
    if (seq !== state.seq) return;
    state.run = result.run;
    $('#baseline-img').src = result.baseline;
    const out = $('#output-img');
    out.src = result.output;
    out.dataset.run = result.run;
    $('#identical').textContent =
      result.identical && active().length
        ? 'These interventions leave the output unchanged (to the 8-bit pixel).'
        : '';
    drawLayers(result.layers);
    await refreshGrids();
    const total = performance.now() - start;
    $('#status').textContent = `update ${total.toFixed(0)} ms (network ${(1000 * result.forward_seconds).toFixed(0)} ms)`;
    document.body.dataset.updates = String(seq);
  } catch (e) {
    showError(e.message);
  }
}

function active() {
  const parts = [];
  if (state.zeroBottleneck) parts.push(`bottleneck zeroed`);
  if (state.keepSkips) parts.push(`skips kept: ${state.keepSkips.join(', ') || 'none'}`);
  for (const [name, factor] of Object.entries(state.layerScale)) if (factor !== 1) parts.push(`${name} ×${factor}`);
  for (const [name, chans] of Object.entries(state.channels)) {
    const list = Object.entries(chans).map(([c, f]) => `${c}→${f}`);
    if (list.length) parts.push(`${name} filters ${list.join(' ')}`);
  }
  for (const [name, list] of Object.entries(state.regions)) {
    const text = list.map((r) => `${r.channel ?? 'all'}[${r.y0}:${r.y1}, ${r.x0}:${r.x1}]→${r.factor}`);
    if (text.length) parts.push(`${name} regions ${text.join(' ')}`);
  }
  return parts;
}

function describeActive() {
  const parts = active();
  $('#active').textContent = parts.length ? `Active: ${parts.join('; ')}` : 'No interventions: the network as trained.';
}

function changed() {
  clearError();
  describeActive();
  scheduleUpdate();
}

// ---------------------------------------------------------------------------------
// Layers.

function drawLayers(layers) {
  const box = $('#layers');
  const names = layers.map((l) => l.name).join(',');
  if (box.dataset.names !== names) {
    box.textContent = '';
    box.dataset.names = names;
    for (const layer of layers) box.appendChild(layerRow(layer));
  }
  state.layers = layers;
  for (const layer of layers) {
    const row = box.querySelector(`[data-layer="${CSS.escape(layer.name)}"]`);
    const change = row.querySelector('.change');
    change.textContent = `Δ ${(100 * layer.change).toFixed(1)}%`;
    change.classList.toggle('moved', layer.change > 1e-6);
    drawMarks(layer.name);
  }
}

function layerRow(layer) {
  const row = document.createElement('div');
  row.className = 'layer';
  row.dataset.layer = layer.name;
  const [h, w, c] = layer.shape;
  row.innerHTML = `
    <div class="layer-head">
      <button class="show" title="show the filters' responses">▸</button>
      <span class="name"></span><span class="shape">${h}×${w}×${c}</span>
      <span class="role">${layer.role}</span><span class="change"></span>
      <label><input type="checkbox" class="layer-on" checked> on</label>
      <label>scale <input type="range" class="layer-scale" min="0" max="2" step="0.05" value="1"></label>
      <span class="scale-value">1.00</span>
    </div>
    <div class="layer-body" hidden>
      <div class="grid-wrap"><img class="grid" alt="feature maps"></div>
      <div class="note channel-note">Click a filter to set it to the factor above (with "regions" on, drag across a filter to set that region of its response); <button class="clear">clear this layer's filters and regions</button></div>
    </div>`;
  row.querySelector('.name').textContent = layer.name;
  const scale = row.querySelector('.layer-scale');
  const on = row.querySelector('.layer-on');
  const setScale = (value) => {
    state.layerScale[layer.name] = value;
    row.querySelector('.scale-value').textContent = value.toFixed(2);
    row.classList.toggle('off', value === 0);
    changed();
  };
  scale.addEventListener('input', () => {
    on.checked = Number(scale.value) !== 0;
    setScale(Number(scale.value));
  });
  on.addEventListener('change', () => {
    scale.value = on.checked ? 1 : 0;
    setScale(on.checked ? 1 : 0);
  });
  row.querySelector('.show').addEventListener('click', () => toggleOpen(layer.name, row));
  row.querySelector('.clear').addEventListener('click', () => {
    delete state.channels[layer.name];
    delete state.regions[layer.name];
    drawMarks(layer.name);
    changed();
  });
  const grid = row.querySelector('.grid');
  grid.addEventListener('click', (event) => clickTile(layer.name, event));
  grid.addEventListener('mousedown', (event) => {
    if (!$('#region-mode').checked) return;
    event.preventDefault(); // no image drag
    state.drag = tilePoint(layer.name, event, layer.shape);
  });
  grid.addEventListener('mouseup', (event) => endDrag(layer.name, event, layer.shape));
  return row;
}

function toggleOpen(name, row) {
  const body = row.querySelector('.layer-body');
  body.hidden = !body.hidden;
  row.querySelector('.show').textContent = body.hidden ? '▸' : '▾';
  if (body.hidden) state.open.delete(name);
  else {
    state.open.add(name);
    fetchGrid(name);
  }
}

async function fetchGrid(name) {
  if (!state.run) return;
  const run = state.run;
  const normalize = $('#normalize').value;
  try {
    const grid = await api(`/api/layer?run=${run}&layer=${encodeURIComponent(name)}&normalize=${normalize}`);
    if (run !== state.run) return;
    state.grids[name] = grid.layout;
    const row = $('#layers').querySelector(`[data-layer="${CSS.escape(name)}"]`);
    const img = row.querySelector('.grid');
    img.src = grid.image;
    img.dataset.run = run;
    drawMarks(name);
  } catch (e) {
    showError(e.message);
  }
}

function refreshGrids() {
  return Promise.all([...state.open].map(fetchGrid));
}

function gridSize(layout) {
  return [
    layout.cols * (layout.cell_w + layout.pad) + layout.pad,
    layout.rows * (layout.cell_h + layout.pad) + layout.pad,
  ];
}

// The filter under the pointer and the point of its response there, in the layer's
// pixels: {name, channel, y, x}, or null off the tiles.
function tilePoint(name, event, shape) {
  const layout = state.grids[name];
  if (!layout) return null;
  const img = event.currentTarget;
  const [width, height] = gridSize(layout);
  const x = (event.offsetX * width) / img.clientWidth - layout.pad;
  const y = (event.offsetY * height) / img.clientHeight - layout.pad;
  const col = Math.floor(x / (layout.cell_w + layout.pad));
  const row = Math.floor(y / (layout.cell_h + layout.pad));
  const channel = row * layout.cols + col;
  if (col < 0 || row < 0 || col >= layout.cols || channel >= layout.channels) return null;
  const cx = x - col * (layout.cell_w + layout.pad);
  const cy = y - row * (layout.cell_h + layout.pad);
  const [h, w] = shape;
  const clamp = (v, n) => Math.max(0, Math.min(n - 1, Math.floor(v)));
  return { name, channel, y: clamp((cy * h) / layout.cell_h, h), x: clamp((cx * w) / layout.cell_w, w) };
}

function endDrag(name, event, shape) {
  const start = state.drag;
  state.drag = null;
  if (!start || !$('#region-mode').checked || start.name !== name) return;
  const end = tilePoint(name, event, shape);
  if (!end || end.channel !== start.channel) {
    showError('a region must begin and end on the same filter');
    return;
  }
  const list = (state.regions[name] = state.regions[name] || []);
  if (list.length >= 8) {
    showError(`layer ${name} already has 8 region edits (the most); clear it first`);
    return;
  }
  list.push({
    y0: Math.min(start.y, end.y),
    y1: Math.max(start.y, end.y) + 1,
    x0: Math.min(start.x, end.x),
    x1: Math.max(start.x, end.x) + 1,
    factor: Number($('#tile-factor').value),
    channel: start.channel,
  });
  drawMarks(name);
  changed();
}

function clickTile(name, event) {
  const layout = state.grids[name];
  if (!layout || $('#region-mode').checked) return;
  const img = event.currentTarget;
  const [width, height] = gridSize(layout);
  const x = (event.offsetX * width) / img.clientWidth - layout.pad;
  const y = (event.offsetY * height) / img.clientHeight - layout.pad;
  const col = Math.floor(x / (layout.cell_w + layout.pad));
  const row = Math.floor(y / (layout.cell_h + layout.pad));
  if (col < 0 || row < 0 || col >= layout.cols) return;
  const channel = row * layout.cols + col;
  if (channel >= layout.channels) return;
  const chans = (state.channels[name] = state.channels[name] || {});
  if (channel in chans) delete chans[channel];
  else chans[channel] = Number($('#tile-factor').value);
  if (!Object.keys(chans).length) delete state.channels[name];
  drawMarks(name);
  changed();
}

function drawMarks(name) {
  const layout = state.grids[name];
  const row = $('#layers').querySelector(`[data-layer="${CSS.escape(name)}"]`);
  if (!layout || !row) return;
  const wrap = row.querySelector('.grid-wrap');
  for (const mark of wrap.querySelectorAll('.mark')) mark.remove();
  const [width, height] = gridSize(layout);
  for (const [c, factor] of Object.entries(state.channels[name] || {})) {
    const r = Math.floor(c / layout.cols);
    const q = c % layout.cols;
    const mark = document.createElement('div');
    mark.className = factor > 1 ? 'mark boost' : 'mark';
    mark.title = `filter ${c} ×${factor}`;
    mark.style.left = `${(100 * (layout.pad + q * (layout.cell_w + layout.pad))) / width}%`;
    mark.style.top = `${(100 * (layout.pad + r * (layout.cell_h + layout.pad))) / height}%`;
    mark.style.width = `${(100 * layout.cell_w) / width}%`;
    mark.style.height = `${(100 * layout.cell_h) / height}%`;
    wrap.appendChild(mark);
  }
  const layer = state.layers.find((l) => l.name === name);
  for (const r of state.regions[name] || []) {
    if (!layer || r.channel === null) continue;
    const [h, w] = layer.shape;
    const q = r.channel % layout.cols;
    const row = Math.floor(r.channel / layout.cols);
    const left = layout.pad + q * (layout.cell_w + layout.pad) + (r.x0 * layout.cell_w) / w;
    const top = layout.pad + row * (layout.cell_h + layout.pad) + (r.y0 * layout.cell_h) / h;
    const mark = document.createElement('div');
    mark.className = r.factor > 1 ? 'mark region boost' : 'mark region';
    mark.title = `filter ${r.channel} [${r.y0}:${r.y1}, ${r.x0}:${r.x1}] ×${r.factor}`;
    mark.style.left = `${(100 * left) / width}%`;
    mark.style.top = `${(100 * top) / height}%`;
    mark.style.width = `${(100 * (r.x1 - r.x0) * layout.cell_w) / w / width}%`;
    mark.style.height = `${(100 * (r.y1 - r.y0) * layout.cell_h) / h / height}%`;
    wrap.appendChild(mark);
  }
}

// ---------------------------------------------------------------------------------
// Following a run that is still training: poll for a newer checkpoint.

function setFollow(on) {
  clearInterval(state.follow);
  state.follow = null;
  if (!on) return;
  const poll = async () => {
    try {
      const latest = await api('/api/latest');
      $('#follow-status').textContent = `step ${latest.step} (saved: ${latest.steps.join(', ')})`;
      if (latest.changed) {
        state.info.step = latest.step;
        showRunInfo(state.info);
        scheduleUpdate(0);
        drawCurves().catch((e) => showError(e.message));
        setupSamples().catch((e) => showError(e.message));
      }
    } catch (e) {
      showError(e.message);
    }
  };
  poll();
  state.follow = setInterval(poll, Number($('#follow-seconds').value || 5) * 1000);
}

// ---------------------------------------------------------------------------------
// Training history: loss curves (SVG) and sample grids.

async function drawCurves() {
  const { records } = await api('/api/metrics');
  const box = $('#curves');
  box.textContent = '';
  if (!records.length) {
    box.textContent = 'No metrics.jsonl in this workdir.';
    return;
  }
  const names = ['D_A', 'G_A', 'cycle_A', 'idt_A', 'D_B', 'G_B', 'cycle_B', 'idt_B'];
  const W = 220;
  const H = 120;
  const ns = 'http://www.w3.org/2000/svg';
  for (const name of names) {
    const points = records.filter((r) => typeof r[name] === 'number').map((r) => [r.step, r[name]]);
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('width', W);
    svg.setAttribute('height', H);
    svg.setAttribute('class', 'curve');
    svg.dataset.loss = name;
    const title = document.createElementNS(ns, 'text');
    title.setAttribute('x', 6);
    title.setAttribute('y', 14);
    title.textContent = name;
    svg.appendChild(title);
    if (points.length) {
      const xs = points.map((p) => p[0]);
      const ys = points.map((p) => p[1]);
      const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
      const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
      const sx = (x) => 6 + ((W - 12) * (x - x0)) / (x1 - x0 || 1);
      const sy = (y) => H - 6 - ((H - 26) * (y - y0)) / (y1 - y0 || 1);
      const line = document.createElementNS(ns, 'polyline');
      line.setAttribute('points', points.map(([x, y]) => `${sx(x)},${sy(y)}`).join(' '));
      line.setAttribute('fill', 'none');
      line.setAttribute('stroke', '#1565c0');
      svg.appendChild(line);
      const range = document.createElementNS(ns, 'text');
      range.setAttribute('x', W - 6);
      range.setAttribute('y', 14);
      range.setAttribute('text-anchor', 'end');
      range.setAttribute('font-size', '10');
      range.textContent = `${y0.toPrecision(3)}–${y1.toPrecision(3)}, last ${ys[ys.length - 1].toPrecision(3)}`;
      svg.appendChild(range);
    }
    box.appendChild(svg);
  }
}

async function setupSamples() {
  const { samples } = await api('/api/samples');
  const slider = $('#sample-index');
  if (!samples.length) {
    $('#samples-row').textContent = 'No sample grids in this workdir.';
    return;
  }
  slider.max = samples.length - 1;
  slider.value = samples.length - 1;
  const show = () => {
    const name = samples[Number(slider.value)];
    $('#sample-name').textContent = `${name} (real | translated | reconstructed | identity)`;
    $('#sample-img').src = `/samples/${encodeURIComponent(name)}?token=${encodeURIComponent(TOKEN)}`;
  };
  slider.addEventListener('input', show);
  show();
}

// ---------------------------------------------------------------------------------
// Optional: the discriminator's Score-CAM (cyclejax.explain).

function setupScoreCam() {
  const note = $('#scorecam-note');
  if (!state.info.explain_available) {
    note.textContent = 'Not available: cyclejax.explain is not installed in this cyclejax.';
    return;
  }
  note.textContent = "Where the discriminator judging this direction's output finds it real (takes a few seconds).";
  const button = $('#scorecam-run');
  button.hidden = false;
  button.addEventListener('click', async () => {
    if (!state.run) return;
    button.disabled = true;
    try {
      const result = await api(`/api/scorecam?run=${state.run}&direction=${state.direction}`);
      if (!result.available) {
        note.textContent = `Not available: ${result.message}`;
        return;
      }
      const img = $('#scorecam-img');
      img.src = result.image;
      img.hidden = false;
      $('#scorecam-caption').textContent = `${result.discriminator}, ${result.seconds.toFixed(1)} s`;
    } catch (e) {
      showError(e.message);
    } finally {
      button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------------------------
// Start.

function setupControls(info) {
  const direction = $('#direction');
  for (const d of info.directions) {
    direction.add(new Option(`${d[0]} → ${d[d.length - 1]} (${info.generators[d]})`, d));
  }
  const testDomain = $('#test-domain');
  testDomain.innerHTML = '';
  for (const d of Object.keys(info.test_images)) testDomain.add(new Option(d, d));
  state.direction = info.directions.includes('BtoA') ? 'BtoA' : info.directions[0];
  direction.value = state.direction;
  direction.addEventListener('change', () => {
    state.direction = direction.value;
    if (state.tab === 'test') {
      $('#test-domain').value = state.direction[0];
      loadTest();
    } else changed();
  });
  const size = $('#size');
  for (const s of info.sizes) size.add(new Option(`${s}×${s}`, s));
  state.size = info.size;
  size.addEventListener('change', () => {
    state.size = Number(size.value);
    reloadInput();
  });

  for (const button of document.querySelectorAll('.tab')) {
    button.addEventListener('click', () => {
      selectTab(button.dataset.tab);
      if (button.dataset.tab !== 'upload') reloadInput();
    });
  }
  $('#test-domain').value = state.direction[0];
  const index = $('#test-index');
  const count = () => info.test_images[$('#test-domain').value] || 0;
  $('#test-note').textContent = info.data_error ? `The run's data cannot be opened: ${info.data_error}` : '';
  $('#test-domain').addEventListener('change', loadTest);
  index.addEventListener('change', loadTest);
  $('#test-prev').addEventListener('click', () => {
    index.value = Math.max(0, Number(index.value) - 1);
    loadTest();
  });
  $('#test-next').addEventListener('click', () => {
    index.value = Math.min(count() - 1, Number(index.value) + 1);
    loadTest();
  });

  for (const kind of info.toy_kinds) $('#toy-kind').add(new Option(kind, kind));
  for (const input of document.querySelectorAll('#tab-toy input, #tab-toy select')) {
    const output = input.parentElement.querySelector('output');
    const sync = () => {
      if (output) output.textContent = input.value;
    };
    sync();
    input.addEventListener('input', sync);
    input.addEventListener('change', loadToy);
  }
  $('#upload-file').addEventListener('change', loadUpload);

  $('#bottleneck-name').textContent = info.bottleneck || 'none';
  $('#bottleneck-row').hidden = !info.bottleneck;
  $('#zero-bottleneck').addEventListener('change', (e) => {
    state.zeroBottleneck = e.target.checked;
    changed();
  });
  const skips = $('#skips');
  $('#skips-row').hidden = !info.skips.length;
  for (const level of info.skips) {
    const label = document.createElement('label');
    label.innerHTML = `<input type="checkbox" class="skip" value="${level}" checked> ${level}`;
    skips.appendChild(label);
  }
  skips.addEventListener('change', () => {
    const kept = [...skips.querySelectorAll('.skip')].filter((c) => c.checked).map((c) => Number(c.value));
    state.keepSkips = kept.length === info.skips.length ? null : kept;
    changed();
  });
  $('#reset').addEventListener('click', () => {
    state.layerScale = {};
    state.channels = {};
    state.regions = {};
    state.zeroBottleneck = false;
    state.keepSkips = null;
    $('#zero-bottleneck').checked = false;
    for (const c of skips.querySelectorAll('.skip')) c.checked = true;
    for (const name of Object.keys(state.grids)) drawMarks(name);
    for (const row of document.querySelectorAll('.layer')) {
      row.querySelector('.layer-scale').value = 1;
      row.querySelector('.layer-on').checked = true;
      row.querySelector('.scale-value').textContent = '1.00';
      row.classList.remove('off');
    }
    changed();
  });
  $('#normalize').addEventListener('change', refreshGrids);
}

function showRunInfo(info) {
  const downs = info.num_downs ? `, ${info.num_downs} downs` : '';
  $('#run-info').textContent = `${info.workdir} · step ${info.step} · ${info.netG} (ngf ${info.ngf}${downs})`;
}

async function main() {
  try {
    const info = await api('/api/info');
    state.info = info;
    showRunInfo(info);
    setupControls(info);
    $('#follow').addEventListener('change', (e) => setFollow(e.target.checked));
    describeActive();
    setupScoreCam();
    const hasTest = (info.test_images[state.direction[0]] || 0) > 0;
    selectTab(hasTest ? 'test' : 'toy');
    await reloadInput();
    drawCurves().catch((e) => showError(e.message));
    setupSamples().catch((e) => showError(e.message));
  } catch (e) {
    showError(e.message);
  }
}

main();
