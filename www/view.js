// SPDX-License-Identifier: MIT
// emgd's biofeedback view. Reads the muscles from the OSCQuery namespace (GET /), LISTENs on
// the WebSocket of the same server and draws one bar per muscle. Read-only: nothing it sends
// changes the daemon. Reconnects by itself (the daemon restarted, the tablet slept).
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const STORE = 'emgd.view.v1';
  const STALE_MS = 1500;       // no value for this long: the card is dimmed
  const FLASH_MS = 700;        // how long an onset shows
  const MAX_LISTEN = 64;       // the server's per-client LISTEN limit (EMG_OSCQUERY_WS_LISTEN)

  // ---- settings: target band per exercise, in this browser ----
  const DEFAULTS = {
    exercise: 'bridge',
    bands: {
      'bridge': { lo: 40, hi: 60, unit: 'mvc', muscles: null },
      'prone hip extension': { lo: 40, hi: 60, unit: 'mvc', muscles: null },
      'clam': { lo: 30, hi: 50, unit: 'mvc', muscles: null },
    },
  };
  let settings;
  try { settings = JSON.parse(localStorage.getItem(STORE)) || DEFAULTS; } catch (e) { settings = DEFAULTS; }
  if (!settings.bands || typeof settings.bands !== 'object') settings = DEFAULTS;
  const save = () => { try { localStorage.setItem(STORE, JSON.stringify(settings)); } catch (e) { /* private mode */ } };
  const band = () => settings.bands[settings.exercise] || null;

  // ---- state ----
  const view = {            // also read by the browser test (tests/integration/test_web_view.py)
    connects: 0, packets: 0, errors: 0, muscles: [], ws: null,
  };
  window.emgdView = view;
  let cards = new Map();    // muscle -> {el, ...}
  let order = [];           // muscle names in config (namespace) order, for /emg/levels
  let attempt = 0, timer = null, lastStatus = 0, lastOverruns = null;

  const fmt = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(1));

  // ---- the namespace: which muscles and which paths exist ----
  function musclesOf(ns) {
    const emg = ns && ns.CONTENTS && ns.CONTENTS.emg && ns.CONTENTS.emg.CONTENTS;
    if (!emg) return [];
    return Object.keys(emg).filter((k) => emg[k].CONTENTS && emg[k].CONTENTS.rms);
  }

  function has(ns, path) {
    let n = ns;
    for (const part of path.split('/').slice(1)) {
      n = n && n.CONTENTS && n.CONTENTS[part];
      if (!n) return false;
    }
    return true;
  }

  function paths(ns, muscles) {
    const p = ['/emgd/status', '/emg/levels', '/emg/rep'].filter((x) => has(ns, x));
    for (const m of muscles)
      for (const k of ['rms', 'active', 'onset'])
        if (has(ns, '/emg/' + m + '/' + k)) p.push('/emg/' + m + '/' + k);
    return p.slice(0, MAX_LISTEN);
  }

  // ---- cards ----
  function build(muscles) {
    const main = $('muscles');
    main.textContent = '';
    cards = new Map();
    const t = $('card-t');
    for (const m of muscles) {
      const el = t.content.firstElementChild.cloneNode(true);
      el.dataset.muscle = m;
      el.querySelector('.name').textContent = m.replace(/_/g, ' ');
      main.appendChild(el);
      cards.set(m, {
        el, m, rms: null, level: null, t: 0, active: 0, onsets: 0, reps: 0, flashTimer: null, peak: 0,
        bar: el.querySelector('.bar'), zone: el.querySelector('.bandzone'), num: el.querySelector('.num'),
        unit: el.querySelector('.unit'), top: el.querySelector('.scale .top'),
        bsym: el.querySelector('.bandstate .sym'), btxt: el.querySelector('.bandstate .txt'),
        asym: el.querySelector('.active .sym'), atxt: el.querySelector('.active .txt'),
        count: el.querySelector('.reps .count'), last: el.querySelector('.reps .last'),
      });
    }
    view.muscles = muscles.slice();
    buildBandMuscles(muscles);
    layout();
  }

  // The grid that makes the cards largest for this screen (cards a little wider than tall).
  function layout() {
    const main = $('muscles'), n = Math.max(1, cards.size);
    const w = main.clientWidth || innerWidth, h = main.clientHeight || innerHeight;
    let best = 1, score = 0;
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const s = Math.min(w / cols / 1.25, h / rows);
      if (s > score) { score = s; best = cols; }
    }
    main.style.setProperty('--cols', best);
    main.style.setProperty('--rows', Math.ceil(n / best));
  }
  addEventListener('resize', layout);

  // The value shown: %MVC once the muscle has an MVC, else the RMS in µV.
  function draw(c) {
    const mvc = c.level !== null && c.level >= 0;
    const v = mvc ? c.level * 100 : c.rms;
    if (v === null || !isFinite(v)) return;
    const b = band();
    const applies = b && (!b.muscles || b.muscles.includes(c.m));
    // scale: %MVC 0-100 (more if exceeded); µV grows with what was seen, decays slowly
    c.peak = Math.max(v, c.peak * 0.998);
    let max = mvc ? Math.max(100, v) : Math.max(20, c.peak * 1.15);
    if (applies && (b.unit === 'mvc') === mvc) max = Math.max(max, b.hi * 1.25);
    max = niceCeil(max);
    c.bar.style.height = Math.min(100, (100 * v) / max) + '%';
    c.num.textContent = fmt(v);
    c.unit.textContent = mvc ? '%MVC' : 'µV';
    c.top.textContent = max + (mvc ? '%' : '');

    let state = 'none', sym = '', txt = 'no band';
    if (applies && (b.unit === 'mvc') !== mvc) {
      state = 'nomvc'; txt = 'band in %MVC: no MVC yet';
    } else if (applies) {
      c.zone.hidden = false;
      c.zone.style.bottom = (100 * Math.min(b.lo, max)) / max + '%';
      c.zone.style.height = (100 * (Math.min(b.hi, max) - Math.min(b.lo, max))) / max + '%';
      if (v < b.lo) { state = 'below'; sym = '▲'; txt = 'below'; }
      else if (v > b.hi) { state = 'above'; sym = '▼'; txt = 'above'; }
      else { state = 'in'; sym = '●'; txt = 'in band'; }
    }
    if (state !== 'below' && state !== 'above' && state !== 'in') c.zone.hidden = true;
    if (c.el.dataset.band !== state) {
      c.el.dataset.band = state;
      c.bsym.textContent = sym;
      c.btxt.textContent = txt;
    }
  }

  function niceCeil(x) {
    const steps = [1, 2, 2.5, 5, 10];
    const p = Math.pow(10, Math.floor(Math.log10(x)));
    for (const s of steps) if (s * p >= x) return +(s * p).toPrecision(3);
    return 10 * p;
  }

  function setActive(c, a) {
    if ((a ? 1 : 0) === c.active) return; // sent every tick: touch the page on changes only
    c.active = a ? 1 : 0;
    c.el.dataset.active = String(c.active);
    c.asym.textContent = a ? '●' : '○';
    c.atxt.textContent = a ? 'ACTIVE' : 'rest';
  }

  function onset(c) {
    c.onsets++;
    c.el.dataset.onsets = String(c.onsets);
    c.el.classList.add('flash');
    clearTimeout(c.flashTimer);
    c.flashTimer = setTimeout(() => c.el.classList.remove('flash'), FLASH_MS);
  }

  // /emg/rep s muscle, i count, f peak, f mean, f ttp s, f duration s, f lag ms, f sym %, i has_sym, s unit
  function rep(a) {
    const c = cards.get(a[0]);
    if (!c) return;
    const unit = a[9] === 'uV' ? ' µV' : a[9] === 'pct_mvc' ? ' %MVC' : ' ' + a[9];
    c.reps = a[1];
    c.count.textContent = 'reps ' + a[1];
    c.el.dataset.reps = String(a[1]);
    let s = 'last: peak ' + fmt(a[2]) + unit + ' · ' + a[4].toFixed(1) + ' s to peak · ' +
      a[5].toFixed(1) + ' s';
    if (a[8]) s += ' · L/R ' + (a[7] >= 0 ? '+' : '') + a[7].toFixed(0) + ' %';
    c.last.textContent = s;
  }

  // /emgd/status s state, i rate, i channels, i overruns (1 Hz)
  function status(a) {
    lastStatus = Date.now();
    const st = $('dev-state');
    st.dataset.state = a[0];
    st.textContent = 'device: ' + a[0];
    $('dev-rate').textContent = a[1] + ' Hz · ' + a[2] + ' ch';
    const o = $('dev-overruns');
    o.dataset.rising = lastOverruns !== null && a[3] > lastOverruns ? '1' : '0';
    o.dataset.overruns = String(a[3]);
    o.textContent = 'overruns ' + a[3] + (o.dataset.rising === '1' ? ' ▲' : '');
    lastOverruns = a[3];
  }

  function onMessage(msg) {
    const a = msg.args, p = msg.address;
    if (p === '/emg/levels') {
      for (let i = 0; i < a.length && i < order.length; i++) {
        const c = cards.get(order[i]);
        if (c) c.level = a[i];
      }
      return;
    }
    if (p === '/emg/rep') return rep(a);
    if (p === '/emgd/status') return status(a);
    const m = /^\/emg\/([^/]+)\/(\w+)$/.exec(p);
    const c = m && cards.get(m[1]);
    if (!c) return;
    if (m[2] === 'rms') { c.rms = a[0]; c.t = Date.now(); draw(c); }
    else if (m[2] === 'active') setActive(c, a[0]);
    else if (m[2] === 'onset') onset(c);
  }

  // ---- connection ----
  function conn(state, txt) {
    const el = $('conn');
    el.dataset.state = state;
    el.querySelector('.sym').textContent = state === 'live' ? '●' : '◌';
    el.querySelector('.txt').textContent = txt;
    const b = $('banner');
    b.hidden = state === 'live';
    b.textContent = state === 'live' ? '' : txt;
  }

  function retry(why) {
    if (timer) return;
    attempt++;
    const wait = Math.min(3000, 250 * Math.pow(2, Math.min(attempt, 4)));
    conn('reconnecting', 'no connection to emgd (' + why + ') – retrying…');
    timer = setTimeout(() => { timer = null; connect(); }, wait);
  }

  async function connect() {
    let ns;
    try {
      const r = await fetch('/', { cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      ns = await r.json();
    } catch (e) {
      return retry('namespace unavailable');
    }
    const muscles = musclesOf(ns);
    if (muscles.join() !== view.muscles.join()) build(muscles);
    order = muscles;
    const listen = paths(ns, muscles);
    let ws;
    try {
      ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/');
    } catch (e) {
      return retry('WebSocket refused');
    }
    view.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      attempt = 0;
      view.connects++;
      for (const p of listen) ws.send(JSON.stringify({ COMMAND: 'LISTEN', DATA: p }));
      conn('live', 'live');
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') return; // no text messages are sent (PATH_CHANGED is not offered)
      let msgs;
      try { msgs = EmgOsc.parse(ev.data); } catch (e) { view.errors++; return; }
      view.packets++;
      for (const m of msgs) onMessage(m);
    };
    ws.onclose = () => { if (view.ws === ws) { view.ws = null; retry('connection closed'); } };
    ws.onerror = () => { /* onclose follows */ };
  }

  // Dim what has not been updated; say when the daemon stopped sending.
  setInterval(() => {
    const now = Date.now();
    for (const c of cards.values()) c.el.classList.toggle('stale', now - c.t > STALE_MS);
    if (view.ws && view.ws.readyState === 1 && lastStatus && now - lastStatus > 3000)
      $('dev-state').textContent = 'device: no status for ' + Math.round((now - lastStatus) / 1000) + ' s';
    $('clock').textContent = new Date().toLocaleTimeString();
  }, 250);

  // ---- band controls ----
  function buildBandMuscles(muscles) {
    const fs = $('band-muscles');
    for (const l of fs.querySelectorAll('label')) l.remove();
    for (const m of muscles) {
      const l = document.createElement('label');
      const cb = document.createElement('input');
      cb.type = 'checkbox';
      cb.value = m;
      cb.addEventListener('change', bandFromInputs);
      l.append(cb, ' ' + m.replace(/_/g, ' '));
      fs.appendChild(l);
    }
    bandToInputs();
  }

  function bandToInputs() {
    const b = band() || { lo: '', hi: '', unit: 'mvc', muscles: null };
    $('ex-name').value = settings.exercise;
    $('band-lo').value = b.lo;
    $('band-hi').value = b.hi;
    $('band-unit').value = b.unit;
    for (const cb of $('band-muscles').querySelectorAll('input'))
      cb.checked = !b.muscles || b.muscles.includes(cb.value);
    const dl = $('ex-list');
    dl.textContent = '';
    for (const k of Object.keys(settings.bands)) {
      const o = document.createElement('option');
      o.value = k;
      dl.appendChild(o);
    }
    showExercise();
  }

  function showExercise() {
    const b = band();
    $('ex-current').textContent = 'exercise: ' + settings.exercise +
      (b ? ' · target ' + b.lo + '–' + b.hi + (b.unit === 'mvc' ? ' %MVC' : ' µV') : ' · no target');
  }

  function bandFromInputs() {
    const name = $('ex-name').value.trim();
    if (!name) return;
    const lo = parseFloat($('band-lo').value), hi = parseFloat($('band-hi').value);
    const all = [...$('band-muscles').querySelectorAll('input')];
    const sel = all.filter((cb) => cb.checked).map((cb) => cb.value);
    settings.exercise = name;
    if (isFinite(lo) && isFinite(hi) && lo >= 0 && hi > lo)
      settings.bands[name] = { lo, hi, unit: $('band-unit').value, muscles: sel.length === all.length ? null : sel };
    save();
    showExercise();
    for (const c of cards.values()) { c.el.dataset.band = ''; draw(c); }
  }

  $('ex-name').addEventListener('change', () => {
    const name = $('ex-name').value.trim();
    if (!name || name === settings.exercise) return; // a second change event (blur): keep the inputs
    settings.exercise = name;
    if (settings.bands[name]) { save(); bandToInputs(); for (const c of cards.values()) { c.el.dataset.band = ''; draw(c); } }
    else bandFromInputs();
  });
  for (const id of ['band-lo', 'band-hi', 'band-unit']) $(id).addEventListener('change', bandFromInputs);
  $('band-toggle').addEventListener('click', () => {
    const s = $('band');
    s.hidden = !s.hidden;
    $('band-toggle').setAttribute('aria-expanded', String(!s.hidden));
  });

  bandToInputs();
  connect();
})();
