// SPDX-License-Identifier: MIT
// N browser-view-like WebSocket viewers for bench_web.py, on Node's `ws` package (WS_MODULE:
// its path). Each connects from its own loopback address (127.0.0.2.., 4 per address: the
// server allows 8 connections per address), LISTENs to what the view LISTENs to plus
// /emg/frame (to count lost ticks), and asks /emgd/latency every 2 s as the view does.
// argv: url, viewers, seconds, paths (comma-separated). stdout: "READY" once every viewer
// is listening, then one JSON line per viewer at the end.
'use strict';
const WebSocket = require(process.env.WS_MODULE);
const path = require('path');
const EmgOsc = require(path.join(__dirname, '..', '..', 'www', 'osc.js'));

const [url, nArg, secsArg, pathsArg] = process.argv.slice(2);
const n = +nArg, secs = +secsArg, paths = pathsArg.split(',');
const latencyQuery = EmgOsc.message('/emgd/latency', '', []);
const viewers = [];
let ready = 0;

for (let i = 0; i < n; i++) {
  const v = { i, addr: '127.0.0.' + (2 + Math.floor(i / 4)), packets: 0, bytes: 0, ticks: 0, lost: 0,
    last: -1, latency: 0, errors: 0, closed: null };
  viewers.push(v);
  const ws = new WebSocket(url, { localAddress: v.addr });
  v.ws = ws;
  ws.binaryType = 'nodebuffer';
  ws.on('open', () => {
    for (const p of paths) ws.send(JSON.stringify({ COMMAND: 'LISTEN', DATA: p }));
    v.timer = setInterval(() => ws.send(latencyQuery), 2000);
    if (++ready === n) process.stdout.write('READY\n');
  });
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return;
    v.packets++;
    v.bytes += data.length;
    let msgs;
    try { msgs = EmgOsc.parse(data); } catch (e) { v.errors++; return; }
    for (const m of msgs) {
      if (m.address === '/emg/frame') {
        const t = m.args[0];
        if (v.last >= 0 && t > v.last + 1) v.lost += t - v.last - 1;
        v.last = t;
        v.ticks++;
      } else if (m.address === '/emgd/latency') v.latency++;
    }
  });
  ws.on('close', (code) => { v.closed = code; });
  ws.on('error', (e) => { v.error = e.message; });
}

setTimeout(() => {
  for (const v of viewers) {
    clearInterval(v.timer);
    const { ws, timer, ...rest } = v;
    process.stdout.write(JSON.stringify(rest) + '\n');
    ws.terminate();
  }
  process.exit(0);
}, secs * 1000);
