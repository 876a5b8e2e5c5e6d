// SPDX-License-Identifier: MIT
// The browser side of test_web_view.py: Debian's Chromium, headless, driven by puppeteer-core
// (PUPPETEER_MODULE: its path). argv: url, screenshot path, muscles (comma-separated), the
// muscle that contracts in the synth's first bridge. stdout: "BROWSER" once Chromium is up (the
// Python side then starts emgd and answers "STARTED"), "ok: ..." / "FAIL: ..." lines,
// "STATUS?" (the Python side answers "STATUS <state>" from /emgd/status over UDP: the daemon,
// not the page, says it records), "RESTART" (it restarts emgd and answers "RESTARTED") and
// "RELOAD" (it adds a muscle and sets [web] control = no, reloads, answers "RELOADED").
'use strict';
const puppeteer = require(process.env.PUPPETEER_MODULE);
const readline = require('readline');
const os = require('os');
const fs = require('fs');
const path = require('path');

const [url, shot, musclesArg, target] = process.argv.slice(2);
const muscles = musclesArg.split(',');
const out = (s) => process.stdout.write(s + '\n');
const t0 = Date.now();
const since = () => ((Date.now() - t0) / 1000).toFixed(1) + ' s';
let browser = null;
let profile = null;

async function finish(code) {
  if (browser) await browser.close().catch(() => {});
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
  process.exit(code);
}

class CheckFailed extends Error {}
function check(cond, msg) {
  if (!cond) {
    out('FAIL: ' + msg);
    throw new CheckFailed(msg);
  }
  out('ok: ' + msg);
}

const lines = [];
let waiter = null;
readline.createInterface({ input: process.stdin }).on('line', (l) => {
  if (waiter) { const w = waiter; waiter = null; w(l); } else lines.push(l);
});
const nextLine = () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => { waiter = r; }));

// The text of every card: {muscle: {num, unit, band, bandtxt, active, onsets, reps}}.
const cards = (page) => page.evaluate(() => {
  const o = {};
  for (const c of document.querySelectorAll('.card')) {
    o[c.dataset.muscle] = {
      num: c.querySelector('.num').textContent, unit: c.querySelector('.unit').textContent,
      band: c.dataset.band, bandtxt: c.querySelector('.bandstate').textContent.trim(),
      active: c.dataset.active, onsets: +c.dataset.onsets, reps: c.querySelector('.reps').textContent,
    };
  }
  return o;
});

(async () => {
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'emgd-chromium-'));
  browser = await puppeteer.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--user-data-dir=' + profile],
    defaultViewport: { width: 1280, height: 800 }, // a 10" tablet in landscape
  });
  const page = await browser.newPage();
  out('BROWSER up at ' + since());
  check(await nextLine() === 'STARTED', 'emgd started');
  // Console errors while the daemon is down are expected (refused connections); none else.
  let restarting = false;
  const errors = [], pageErrors = [], offsite = [];
  page.on('console', (m) => { if (m.type() === 'error' && !restarting) errors.push(m.text()); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('request', (r) => { if (!r.url().startsWith(new URL(url).origin)) offsite.push(r.url()); });

  const resp = await page.goto(url, { waitUntil: 'load' });
  check(resp.status() === 200 && resp.headers()['content-type'].startsWith('text/html'),
    'GET /ui/: 200 text/html (' + resp.status() + ')');
  check(/default-src 'self'/.test(resp.headers()['content-security-policy'] || ''),
    'the page is served with a same-origin Content-Security-Policy');

  // OSC parser on known bytes: a bundle holding ",ifs" - the same decoding the stream uses.
  const parsed = await page.evaluate(() => {
    const b = [0x23, 0x62, 0x75, 0x6e, 0x64, 0x6c, 0x65, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const m = [0x2f, 0x78, 0, 0, 0x2c, 0x69, 0x66, 0x73, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe,
      0x3f, 0xc0, 0, 0, 0x68, 0x69, 0, 0];
    const all = new Uint8Array([...b, 0, 0, 0, m.length, ...m]);
    return JSON.stringify(EmgOsc.parse(all.buffer));
  });
  check(parsed === '[{"address":"/x","types":"ifs","args":[-2,1.5,"hi"]}]', 'osc.js decodes a bundle with i f s: ' + parsed);

  // ---- one bar per muscle, live numbers ----
  await page.waitForFunction((n) => document.querySelectorAll('.card').length === n &&
    [...document.querySelectorAll('.card .num')].every((e) => e.textContent !== '–'), { timeout: 10000 }, muscles.length);
  let c1 = await cards(page);
  check(muscles.every((m) => c1[m]) && Object.keys(c1).length === muscles.length,
    'one card per muscle of the namespace: ' + Object.keys(c1).join(' '));
  check(muscles.every((m) => c1[m].unit === 'µV'), 'µV before any MVC');
  const conn = await page.$eval('#conn', (e) => e.dataset.state + ' ' + e.textContent.trim());
  check(conn.startsWith('live'), 'connection shown as live: ' + conn);
  const replies = () => page.evaluate(() => window.emgdView.replies.slice());
  const waitReply = (addr, n) => page.waitForFunction((a, k) =>
    window.emgdView.replies.filter((r) => r[0] === a).length >= k, { timeout: 8000, polling: 50 }, addr, n)
    .then(() => true, () => false);

  // Watch the band state and active flag of every card from now on (no sample is missed).
  await page.evaluate(() => {
    window.__seen = {};
    const obs = new MutationObserver((recs) => {
      for (const r of recs) {
        const c = r.target, m = c.dataset.muscle;
        const s = window.__seen[m] = window.__seen[m] || { band: {}, active: 0, flash: 0 };
        if (r.attributeName === 'data-band') s.band[c.dataset.band] = c.querySelector('.bandstate').textContent.trim();
        if (r.attributeName === 'data-active' && c.dataset.active === '1') s.active++;
        if (r.attributeName === 'class' && c.classList.contains('flash')) s.flash++;
      }
    });
    for (const c of document.querySelectorAll('.card'))
      obs.observe(c, { attributes: true, attributeFilter: ['data-band', 'data-active', 'class'] });
    // the firing-order line: every group shown
    window.__orders = [];
    new MutationObserver(() => {
      const o = document.querySelector('#order');
      window.__orders.push(o.dataset.group + ' ' + o.querySelector('.seq').textContent);
    }).observe(document.querySelector('#order'), { attributes: true, attributeFilter: ['data-group'] });
  });

  // ---- a target band, set in the page as a clinician would ----
  await page.click('#band-toggle');
  await page.$eval('#ex-name', (e) => { e.value = ''; });
  await page.type('#ex-name', 'test bridge');
  await page.$eval('#ex-name', (e) => e.dispatchEvent(new Event('change')));
  await page.select('#band-unit', 'uv');
  for (const [id, v] of [['#band-lo', '15'], ['#band-hi', '45']]) {
    await page.$eval(id, (e) => { e.value = ''; });
    await page.type(id, v);
    await page.$eval(id, (e) => e.dispatchEvent(new Event('change')));
  }
  await page.click('#band-toggle');
  const stored = await page.evaluate(() => localStorage.getItem('emgd.view.v1'));
  check(/"test bridge":\{"lo":15,"hi":45,"unit":"uv"/.test(stored), 'the band is kept in localStorage: ' + stored);

  const vals = new Set();
  for (let i = 0; i < 10; i++) {
    const c = await cards(page);
    vals.add(muscles.map((m) => c[m].num).join(' '));
    await new Promise((r) => setTimeout(r, 100));
  }
  check(vals.size >= 5, 'the numbers change (' + vals.size + ' distinct readings of 10 in 1 s)');

  // ---- the first bridge (synth: about 3 s in, 2 s hold): onset flash, active, band states ----
  await page.waitForFunction((m) => {
    const s = window.__seen[m];
    return s && s.flash > 0 && s.active > 0 && s.band.below && s.band.in && s.band.above;
  }, { timeout: 15000, polling: 100 }, target).catch(() => {});
  const seen = await page.evaluate(() => window.__seen);
  const s = seen[target] || { band: {}, active: 0, flash: 0 };
  out('seen for ' + target + ' at ' + since() + ': ' + JSON.stringify(s));
  check(s.flash > 0, target + ': an onset flash');
  check(s.active > 0, target + ': shown ACTIVE during the contraction');
  check(/below/.test(s.band.below || '') && /in band/.test(s.band.in || '') && /above/.test(s.band.above || ''),
    target + ': the band text went below / in band / above: ' + JSON.stringify(s.band));
  // screenshot while contracted: bars up, band states in colour, shape and words
  await page.waitForFunction((m) => document.querySelector('.card[data-muscle="' + m + '"]').dataset.active === '1',
    { timeout: 10000, polling: 50 }, target).catch(() => {});
  await page.screenshot({ path: shot });
  out('screenshot ' + shot);

  // ---- a repetition's summary (/emg/rep, min_rest_ms after the burst) ----
  await page.waitForFunction((m) => /reps [1-9]/.test(document.querySelector('.card[data-muscle="' + m + '"] .reps').textContent),
    { timeout: 10000, polling: 100 }, target).catch(() => {});
  const cr = (await cards(page))[target];
  check(/reps [1-9]/.test(cr.reps) && /peak [0-9.]+ µV · [0-9.]+ s to peak · [0-9.]+ s/.test(cr.reps),
    target + ': rep counter and last-rep summary: ' + cr.reps);
  const dev = await page.$eval('#device', (e) => e.textContent.replace(/\s+/g, ' ').trim());
  const devState = await page.$eval('#dev-state', (e) => e.dataset.state);
  check(devState === 'streaming' && /Hz/.test(dev) && /overruns \d+/.test(dev), 'device state and overruns: ' + dev);

  // ---- the firing order (/emg/order), latency, live left/right symmetry ----
  await page.waitForFunction(() => window.__orders.length > 0, { timeout: 15000, polling: 100 }).catch(() => {});
  const orders = await page.evaluate(() => window.__orders);
  check(orders.length > 0 && /^\d+ [a-z ]+( +→ +[a-z ]+ \+\d+ ms)*$/.test(orders[0]),
    'the firing-order line with lags: ' + JSON.stringify(orders.slice(0, 3)));
  await page.waitForFunction(() => /latency p99 [0-9.]+ ms/.test(document.querySelector('#dev-latency').textContent),
    { timeout: 5000, polling: 100 }).catch(() => {});
  const lat = await page.$eval('#dev-latency', (e) => e.textContent);
  check(/latency p99 [0-9.]+ ms/.test(lat), 'latency from /emgd/latency: ' + lat);
  const sym = await page.$eval('#symmetry', (e) => e.textContent);
  check(/L:R glute max \d+:\d+ · hamstring \d+:\d+/.test(sym), 'live left/right symmetry: ' + sym);

  // ---- session controls: each click is an OSC packet the daemon answers ----
  await page.click('#session-toggle');
  // an error from the daemon is shown: stop without a recording
  await page.click('#rec-stop');
  await waitReply('/emgd/record/stop', 1);
  const errBox = await page.$eval('#errors', (e) => (e.hidden ? 'hidden: ' : '') + e.textContent.replace(/\s+/g, ' ').trim());
  check(/^\d.*\/emgd\/record\/stop: not recording/.test(errBox), 'an /emgd/error is shown in the page: ' + errBox);
  await page.click('#errors-clear');
  // calibrate MVC of the target muscle, 2 s, with the counting seconds visible
  await page.$eval('#cal-secs', (e) => { e.value = '2'; });
  await page.select('#mvc-muscle', target);
  await page.click('#cal-mvc');
  const cd2 = await page.waitForFunction(() => !document.querySelector('#countdown').hidden &&
    /\d s$/.test(document.querySelector('#countdown').textContent.trim()), { timeout: 5000, polling: 20 })
    .then(() => page.$eval('#countdown', (e) => e.textContent.replace(/\s+/g, ' ').trim()), () => '');
  check(new RegExp('MVC ' + target.replace(/_/g, ' ') + ': push as hard as you can [12] s').test(cd2), 'an MVC countdown: ' + cd2);
  await page.waitForFunction(() => window.emgdView.calibrated.some((c) => c[0] === 'mvc'), { timeout: 10000, polling: 50 }).catch(() => {});
  const mvc = await page.evaluate(() => window.emgdView.calibrated.filter((c) => c[0] === 'mvc'));
  check(mvc.length === 1 && mvc[0][1] === target, 'the MVC result: ' + JSON.stringify(mvc));
  if (!mvc[0][3]) { // refused (not clearly above rest): the daemon's reason is on the page
    const e = await page.$eval('#errors', (el) => el.textContent);
    check(/\/emgd\/calibrate\/mvc: mvc .* refused/.test(e), 'a refused MVC shows why: ' + e);
  } else {
    await page.waitForFunction((m) => document.querySelector('.card[data-muscle="' + m + '"] .unit').textContent === '%MVC',
      { timeout: 3000, polling: 50 }, target).catch(() => {});
    check((await cards(page))[target].unit === '%MVC', target + ' shown in %MVC after its MVC');
  }
  // record, a marker typed in the page, stop
  await page.type('#rec-name', 'webview');
  await page.click('#rec-start');
  check(await waitReply('/emgd/record/start', 1) &&
    (await replies()).find((r) => r[0] === '/emgd/record/start')[1], 'start recording: /emgd/ok');
  await page.waitForFunction(() => !document.querySelector('#rec-state').hidden, { timeout: 3000, polling: 50 }).catch(() => {});
  check(!(await page.$eval('#rec-state', (e) => e.hidden)), 'the page shows REC (from /emgd/status)');
  out('STATUS?');
  const st = await nextLine();
  check(st === 'STATUS recording', 'the daemon says it records (/emgd/status over UDP): ' + st);
  await page.type('#marker-text', 'set 2, hip thrust (from the page)');
  await page.keyboard.press('Enter');
  check(await waitReply('/emgd/marker', 1) && (await replies()).find((r) => r[0] === '/emgd/marker')[1] &&
    await page.$eval('#marker-text', (e) => e.value === ''), 'the marker is accepted and its field cleared');
  await page.click('#rec-stop');
  check(await waitReply('/emgd/record/stop', 2) && (await replies()).filter((r) => r[0] === '/emgd/record/stop')[1][1],
    'stop recording: /emgd/ok');
  check(await page.$eval('#cal-rest', (e) => !e.disabled) && await page.evaluate(() => window.emgdView.readOnly === ''),
    'the controls stay enabled (this page may control)');
  await page.screenshot({ path: shot.replace(/\.png$/, '-session.png') });
  out('screenshot ' + shot.replace(/\.png$/, '-session.png'));

  // ---- the daemon restarts: the page notices and comes back by itself ----
  restarting = true;
  out('RESTART');
  const down = await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'reconnecting' &&
    !document.querySelector('#banner').hidden, { timeout: 10000, polling: 50 }).then(() => true, () => false);
  check(down, 'the page says the connection is lost');
  check(await nextLine() === 'RESTARTED', 'emgd restarted');
  const back = await page.waitForFunction(() => window.emgdView.connects >= 2 &&
    document.querySelector('#conn').dataset.state === 'live', { timeout: 15000, polling: 100 }).then(() => true, () => false);
  check(back, 'the page reconnected by itself (' + since() + ')');
  restarting = false;
  const before = JSON.stringify(await cards(page));
  await page.waitForFunction((b) => {
    const now = [...document.querySelectorAll('.card .num')].map((e) => e.textContent).join();
    return now !== b;
  }, { timeout: 5000 }, [...Object.values(JSON.parse(before))].map((c) => c.num).join()).catch(() => {});
  const after = JSON.stringify(await cards(page));
  check(after !== before, 'live numbers again after the restart');

  // ---- calibrate rest after the restart: the new emgd's script opens with 8 s of rest ----
  // (as a clinician would: when every card says rest; a muscle that still moved is refused,
  // with the reason on the page, and the click repeated)
  let restMsg = '', rest = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    const quiet = await page.waitForFunction(() => [...document.querySelectorAll('.card')].every((c) => c.dataset.active === '0'),
      { timeout: 6000, polling: 50 }).then(() => true, () => false);
    out('attempt ' + attempt + ': all muscles at rest: ' + quiet + ' at ' + since());
    const before = await page.evaluate(() => window.emgdView.calibrated.length);
    await page.$eval('#cal-secs', (e) => { e.value = '1'; });
    await page.click('#cal-rest');
    const cd = await page.waitForFunction(() => !document.querySelector('#countdown').hidden &&
      /Rest calibration/.test(document.querySelector('#countdown').textContent), { timeout: 5000, polling: 20 })
      .then(() => page.$eval('#countdown', (e) => e.textContent.replace(/\s+/g, ' ').trim()), () => '');
    check(/Rest calibration: relax every muscle (1 s|… measuring)/.test(cd), 'a rest countdown: ' + cd);
    await page.waitForFunction((n) => window.emgdView.calibrated.length >= n,
      { timeout: 10000, polling: 50 }, before + muscles.length).catch(() => {});
    rest = await page.evaluate((b) => window.emgdView.calibrated.slice(b), before);
    restMsg = await page.$eval('#session-msg', (e) => e.textContent);
    check(await page.$eval('#countdown', (e) => e.hidden), 'the countdown ends with the result: ' + restMsg);
    if (rest.every((c) => c[3] === 1)) break;
    const e = await page.$eval('#errors', (el) => el.textContent);
    check(/\/emgd\/calibrate\/rest: rest [a-z_]+ refused: the muscle was active/.test(e), 'a refused rest says why: ' + e);
  }
  check(rest.length === muscles.length && muscles.every((m) => rest.some((c) => c[0] === 'rest' && c[1] === m && c[3] === 1)) &&
    new RegExp('^calibrated rest ' + muscles.map((m) => m.replace(/_/g, ' ') + ': [0-9.]+ µV').join(' · rest ') + '$').test(restMsg),
    'calibrate rest: each muscle\'s rest level on the page: ' + restMsg);

  // ---- a reload: one muscle more and [web] control = no ----
  out('RELOAD');
  check(await nextLine() === 'RELOADED', 'emgd reloaded with glute_med_r and control = no');
  const grown = await page.waitForFunction((n) => window.emgdView.pathChanges > 0 &&
    document.querySelectorAll('.card').length === n, { timeout: 10000, polling: 100 }, muscles.length + 1)
    .then(() => true, () => false);
  check(grown, 'PATH_ADDED: the page read the namespace again and shows ' +
    (await page.$$eval('.card', (cs) => cs.map((c) => c.dataset.muscle).join(' '))));
  await page.waitForFunction(() => document.querySelector('.card[data-muscle="glute_med_r"] .num').textContent !== '–',
    { timeout: 5000, polling: 100 }).catch(() => {});
  check(await page.$eval('.card[data-muscle="glute_med_r"] .num', (e) => e.textContent !== '–'), 'the new muscle is live');
  await page.$eval('#marker-text', (e) => { e.value = ''; });
  await page.type('#marker-text', 'not allowed now');
  await page.click('#marker-send');
  await page.waitForFunction(() => window.emgdView.readOnly !== '', { timeout: 5000, polling: 50 }).catch(() => {});
  const ro = await page.evaluate(() => ({ why: window.emgdView.readOnly,
    disabled: [...document.querySelectorAll('#session .ctl')].every((b) => b.disabled),
    note: document.querySelector('#ro-note').hidden ? '' : document.querySelector('#ro-note').textContent }));
  check(/read-only: \[web\] control = no/.test(ro.why) && ro.disabled && /read-only/.test(ro.note),
    'control = no: the page says read-only and greys the controls: ' + JSON.stringify(ro));

  check(pageErrors.length === 0, 'no script errors: ' + JSON.stringify(pageErrors));
  check(errors.length === 0, 'no console errors outside the restart: ' + JSON.stringify(errors));
  check(offsite.length === 0, 'nothing loaded from elsewhere: ' + JSON.stringify(offsite));
  out('DONE');
  await finish(0);
})().catch((e) => {
  if (!(e instanceof CheckFailed)) out('FAIL: ' + (e && e.stack || e));
  finish(1);
});
