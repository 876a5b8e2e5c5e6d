// SPDX-License-Identifier: MIT
// A WebSocket client for test_oscquery_ws.py, on Node's `ws` package (WS_MODULE: its path).
// stdin: "LISTEN <path>", "IGNORE <path>", "SEND <text>", "PING", "QUIT" - one per line;
// stdout: "OPEN", "BIN <hex>", "TEXT <text>", "PONG", "CLOSE <code>", "ERROR <message>".
'use strict';
const WebSocket = require(process.env.WS_MODULE);
const readline = require('readline');

const ws = new WebSocket(process.argv[2]);
const out = (s) => process.stdout.write(s + '\n');
ws.binaryType = 'nodebuffer';
ws.on('open', () => out('OPEN'));
ws.on('message', (data, isBinary) => out(isBinary ? 'BIN ' + data.toString('hex') : 'TEXT ' + data));
ws.on('pong', () => out('PONG'));
ws.on('close', (code) => { out('CLOSE ' + code); process.exit(0); });
ws.on('error', (e) => { out('ERROR ' + e.message); process.exit(1); });
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const sp = line.indexOf(' ');
  const cmd = sp < 0 ? line : line.slice(0, sp);
  const arg = sp < 0 ? '' : line.slice(sp + 1);
  if (cmd === 'LISTEN' || cmd === 'IGNORE') ws.send(JSON.stringify({ COMMAND: cmd, DATA: arg }));
  else if (cmd === 'SEND') ws.send(arg);
  else if (cmd === 'PING') ws.ping();
  else if (cmd === 'QUIT') ws.close(1000);
});
