// SPDX-License-Identifier: MIT
// emgd's biofeedback view. Reads the muscles from the OSCQuery namespace (GET /), LISTENs on
// the WebSocket of the same server and draws one bar per muscle, the firing order, the
// repetitions, left/right symmetry and the device. The Session panel sends OSC control
// packets (calibrate, record, marker) over the same WebSocket; emgd checks them as it checks
// UDP control and answers /emgd/ok or /emgd/error, shown here. A token in the address
// (#token=...) is presented for control from another host. Reconnects by itself.
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
    replies: [],            // [address, ok, message] of every /emgd/ok and /emgd/error, in order
    calibrated: [],         // [kind, muscle, value, ok] of every /emgd/calibrated
    readOnly: '',           // why this page may not control ('' while it may)
  };
  window.emgdView = view;
  let cards = new Map();    // muscle -> {el, ...}
  let order = [];           // muscle names in config (namespace) order, for /emg/levels
  let attempt = 0, timer = null, lastStatus = 0, lastOverruns = null;
  let token = (/(?:^#|&)token=([^&]+)/.exec(location.hash) || [])[1] || null;
  let countdown = null;     // {kind, what, end, timer}

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
    const p = ['/emgd/status', '/emgd/error', '/emgd/calibrated', '/emg/order', '/emg/levels', '/emg/rep']
      .filter((x) => has(ns, x));
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
    const sel = $('mvc-muscle');
    sel.textContent = '';
    for (const m of muscles) {
      const o = document.createElement('option');
      o.value = m;
      o.textContent = m.replace(/_/g, ' ');
      sel.appendChild(o);
    }
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
      state = 'nomvc'; txt = mvc ? 'band in µV, bar in %MVC' : 'band in %MVC: no MVC yet';
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
    const rec = a[0] === 'recording';
    $('rec-state').hidden = !rec;
    $('rec-state').dataset.rec = rec ? '1' : '0';
  }

  // /emg/order i group, s first, f lag ms per muscle in config order (-1: did not fire)
  function firingOrder(a) {
    const fired = [];
    for (let i = 0; i < order.length && 2 + i < a.length; i++)
      if (a[2 + i] >= 0) fired.push([order[i], a[2 + i]]);
    fired.sort((x, y) => x[1] - y[1]);
    const el = $('order');
    el.dataset.group = String(a[0]);
    el.dataset.first = a[1];
    el.querySelector('.seq').textContent = fired.map(([m, lag], k) =>
      m.replace(/_/g, ' ') + (k ? ' +' + lag.toFixed(0) + ' ms' : '')).join('  →  ');
  }

  // /emgd/latency i events, f p50, p99, p99.9, max, i metric bundles, f p50, p99, p99.9, max
  function latency(a) {
    const metrics = a[5] > 0, p99 = metrics ? a[7] : a[2];
    $('dev-latency').textContent = (a[0] || a[5]) ? 'latency p99 ' + p99.toFixed(1) + ' ms' : 'latency –';
  }

  // Live left/right symmetry for each name_l / name_r pair: share of the two, same unit.
  function symmetry() {
    const out = [];
    for (const [m, c] of cards) {
      if (!m.endsWith('_l')) continue;
      const r = cards.get(m.slice(0, -2) + '_r');
      if (!r) continue;
      const mvc = c.level !== null && c.level >= 0 && r.level !== null && r.level >= 0;
      const l = mvc ? c.level : c.rms, rv = mvc ? r.level : r.rms;
      if (l === null || rv === null || !(l + rv > 0)) continue;
      const pl = Math.round((100 * l) / (l + rv));
      out.push(m.slice(0, -2).replace(/_/g, ' ') + ' ' + pl + ':' + (100 - pl));
    }
    $('symmetry').textContent = out.length ? 'L:R ' + out.join(' · ') : '';
  }

  // ---- session controls: OSC control packets over the WebSocket ----
  function send(address, types, args) {
    const ws = view.ws;
    if (!ws || ws.readyState !== 1) { say('error', 'not connected to emgd'); return false; }
    ws.send(EmgOsc.message(address, types, args || []));
    return true;
  }

  function say(kind, txt) {
    const m = $('session-msg');
    m.dataset.kind = kind;
    m.textContent = txt;
  }

  function showError(addr, msg) {
    const box = $('errors'), ul = box.querySelector('ul');
    const li = document.createElement('li');
    li.textContent = new Date().toLocaleTimeString() + ' ' + (addr ? addr + ': ' : '') + msg;
    ul.prepend(li);
    while (ul.children.length > 3) ul.lastElementChild.remove();
    box.hidden = false;
  }

  function setReadOnly(why) {
    view.readOnly = why;
    for (const b of document.querySelectorAll('#session .ctl')) b.disabled = !!why;
    $('ro-note').hidden = !why;
    $('ro-note').textContent = why ? 'This view is read-only: ' + why.replace(/^read-only: /, '') +
      '. Calibration, recording and markers stay with the clinician\'s station (emgctl).' : '';
  }

  function secs() {
    const v = parseFloat($('cal-secs').value);
    return isFinite(v) && v > 0 ? v : 5;
  }

  function startCountdown(kind, what, seconds) {
    stopCountdown();
    const el = $('countdown');
    countdown = { kind, what, end: Date.now() + seconds * 1000, timer: null };
    el.dataset.kind = kind;
    el.hidden = false;
    el.querySelector('.what').textContent = what;
    const tick = () => {
      const left = (countdown.end - Date.now()) / 1000;
      el.querySelector('.secs').textContent = left > 0 ? Math.ceil(left) + ' s' : '… measuring';
      // the result (/emgd/calibrated) ends it; the daemon gives up 3 s after the trial
      if (left < -4) stopCountdown();
    };
    tick();
    countdown.timer = setInterval(tick, 100);
  }

  function stopCountdown() {
    if (!countdown) return;
    clearInterval(countdown.timer);
    countdown = null;
    $('countdown').hidden = true;
  }

  // /emgd/ok s address (a reply to this page)
  function ok(a) {
    view.replies.push([a[0], true, '']);
    switch (a[0]) {
      case 'AUTH': say('ok', 'token accepted: this view may control'); break;
      case '/emgd/calibrate/rest':
        startCountdown('rest', 'Rest calibration: relax every muscle', pendingSecs.rest);
        say('ok', 'rest calibration running'); break;
      case '/emgd/calibrate/mvc':
        startCountdown('mvc', 'MVC ' + pendingMvc.replace(/_/g, ' ') + ': push as hard as you can', pendingSecs.mvc);
        say('ok', 'MVC trial of ' + pendingMvc + ' running'); break;
      case '/emgd/record/start': say('ok', 'recording started'); break;
      case '/emgd/record/stop': say('ok', 'recording stopped'); break;
      case '/emgd/marker': say('ok', 'marker added: ' + lastMarker); $('marker-text').value = ''; break;
      case '/emgd/analytics/reset': say('ok', 'new set: repetitions count from 0'); break;
      default: break;
    }
  }

  // /emgd/error s address, s message (a reply to this page, or an asynchronous failure)
  function error(a) {
    view.replies.push([a[0], false, a[1]]);
    if (a[0] === 'AUTH') {
      token = null; // the server closes the connection; reconnect without it
      history.replaceState(null, '', location.pathname + location.search);
    }
    if (/^read-only/.test(a[1])) setReadOnly(a[1]);
    if (/^\/emgd\/calibrate/.test(a[0])) stopCountdown();
    say('error', a[0] + ': ' + a[1]);
    showError(a[0], a[1]);
  }

  // /emgd/calibrated s kind, s muscle, f uV, i ok (one per muscle for rest)
  function calibrated(a) {
    view.calibrated.push(a);
    if (countdown && countdown.kind === a[0]) stopCountdown();
    const txt = a[0] + ' ' + a[1].replace(/_/g, ' ') + ': ' + (a[3] ? a[2].toFixed(1) + ' µV' : 'failed');
    if (a[0] === 'rest' && $('session-msg').dataset.cal === 'rest') $('session-msg').textContent += ' · ' + txt;
    else { say(a[3] ? 'ok' : 'error', 'calibrated ' + txt); }
    $('session-msg').dataset.cal = a[0];
    if (!a[3]) showError('/emgd/calibrate/' + a[0], txt);
  }

  let pendingMvc = '', lastMarker = '';
  const pendingSecs = { rest: 5, mvc: 5 };
  $('cal-rest').addEventListener('click', () => {
    pendingSecs.rest = secs();
    $('session-msg').dataset.cal = '';
    send('/emgd/calibrate/rest', 'f', [pendingSecs.rest]);
  });
  $('cal-mvc').addEventListener('click', () => {
    pendingSecs.mvc = secs();
    pendingMvc = $('mvc-muscle').value;
    $('session-msg').dataset.cal = '';
    send('/emgd/calibrate/mvc', 'sf', [pendingMvc, pendingSecs.mvc]);
  });
  $('rec-start').addEventListener('click', () => {
    const n = $('rec-name').value.trim();
    if (n) send('/emgd/record/start', 's', [n]); else send('/emgd/record/start', '', []);
  });
  $('rec-stop').addEventListener('click', () => send('/emgd/record/stop', '', []));
  const marker = () => {
    lastMarker = $('marker-text').value.trim();
    if (lastMarker) send('/emgd/marker', 's', [lastMarker]);
  };
  $('marker-send').addEventListener('click', marker);
  $('marker-text').addEventListener('keydown', (e) => { if (e.key === 'Enter') marker(); });
  $('ana-reset').addEventListener('click', () => send('/emgd/analytics/reset', '', []));
  $('errors-clear').addEventListener('click', () => {
    $('errors').hidden = true;
    $('errors').querySelector('ul').textContent = '';
  });
  $('session-toggle').addEventListener('click', () => {
    const s = $('session');
    s.hidden = !s.hidden;
    $('session-toggle').setAttribute('aria-expanded', String(!s.hidden));
  });

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
    if (p === '/emg/order') return firingOrder(a);
    if (p === '/emgd/ok') return ok(a);
    if (p === '/emgd/error') return error(a);
    if (p === '/emgd/calibrated') return calibrated(a);
    if (p === '/emgd/latency') return latency(a);
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

  // {"COMMAND":"PATH_ADDED"|"PATH_REMOVED"|"PATH_CHANGED",...}: the muscle map changed on a
  // reload; read the namespace again and LISTEN to the new paths (a fresh connection).
  function namespaceChanged(text) {
    let m;
    try { m = JSON.parse(text); } catch (e) { return; }
    if (!m || !/^PATH_(ADDED|REMOVED|CHANGED|RENAMED)$/.test(m.COMMAND)) return;
    view.pathChanges = (view.pathChanges || 0) + 1;
    clearTimeout(view.rebuild);
    view.rebuild = setTimeout(() => { // one re-read for a burst of notifications
      const ws = view.ws;
      view.ws = null;
      if (ws) ws.close();
      connect();
    }, 100);
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
      setReadOnly(''); // the daemon may have been reconfigured: it says so again if not
      if (token) ws.send(JSON.stringify({ COMMAND: 'AUTH', DATA: decodeURIComponent(token) }));
      for (const p of listen) ws.send(JSON.stringify({ COMMAND: 'LISTEN', DATA: p }));
      ws.send(EmgOsc.message('/emgd/latency', '', []));
      conn('live', 'live');
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') return namespaceChanged(ev.data);
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
    symmetry();
  }, 250);
  // Latency is a query (allowed to read-only viewers too): every 2 s.
  setInterval(() => {
    if (view.ws && view.ws.readyState === 1) view.ws.send(EmgOsc.message('/emgd/latency', '', []));
  }, 2000);

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
