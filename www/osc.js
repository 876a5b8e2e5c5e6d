// SPDX-License-Identifier: MIT
// A small OSC 1.0 decoder for the browser view: emgd's WebSocket sends the bytes of its UDP
// stream, a message or a bundle (cut to what the page LISTENs to). Types i, f, s (what emgd
// sends), plus d, h, T, F, N and b so an unexpected tag does not derail the rest of a bundle.
// parse(ArrayBuffer | Uint8Array) -> [{address, types, args}], flat; throws on malformed input.
// message(address, types, args) -> Uint8Array: one message with i, f and s arguments (the
// control packets the session controls send; emgd checks them exactly as it checks UDP).
'use strict';
(function (root) {
  const dec = new TextDecoder('utf-8');

  // A NUL-terminated string padded to 4 bytes at i: [string, next offset].
  function str(u8, i, end) {
    let e = i;
    while (e < end && u8[e] !== 0) e++;
    if (e >= end) throw new Error('OSC string without NUL at ' + i);
    return [dec.decode(u8.subarray(i, e)), (e + 4) & ~3];
  }

  function message(u8, dv, i, end, out) {
    let address, tags;
    [address, i] = str(u8, i, end);
    if (address[0] !== '/') throw new Error('OSC address must start with /: ' + address);
    if (i >= end) { out.push({ address, types: '', args: [] }); return; } // no type tag string
    [tags, i] = str(u8, i, end);
    if (tags[0] !== ',') throw new Error('OSC type tags must start with ,');
    const args = [];
    for (const t of tags.slice(1)) {
      switch (t) {
        case 'i': need(i, 4, end); args.push(dv.getInt32(i)); i += 4; break;
        case 'f': need(i, 4, end); args.push(dv.getFloat32(i)); i += 4; break;
        case 'd': need(i, 8, end); args.push(dv.getFloat64(i)); i += 8; break;
        case 'h': need(i, 8, end); args.push(Number(dv.getBigInt64(i))); i += 8; break;
        case 's': { let s; [s, i] = str(u8, i, end); args.push(s); break; }
        case 'b': {
          need(i, 4, end);
          const n = dv.getUint32(i);
          need(i + 4, n, end);
          args.push(u8.slice(i + 4, i + 4 + n));
          i += 4 + ((n + 3) & ~3);
          break;
        }
        case 'T': args.push(true); break;
        case 'F': args.push(false); break;
        case 'N': args.push(null); break;
        default: throw new Error('unsupported OSC type tag ' + t);
      }
    }
    out.push({ address, types: tags.slice(1), args });
  }

  function need(i, n, end) {
    if (i + n > end) throw new Error('OSC argument past the end of the packet');
  }

  function packet(u8, dv, i, end, out, depth) {
    if (end - i >= 16 && u8[i] === 0x23 && str(u8, i, end)[0] === '#bundle') {
      if (depth > 8) throw new Error('OSC bundles nested too deep');
      i += 16; // "#bundle\0" and the timetag (emgd sends "immediately")
      while (i < end) {
        need(i, 4, end);
        const n = dv.getUint32(i);
        need(i + 4, n, end);
        packet(u8, dv, i + 4, i + 4 + n, out, depth + 1);
        i += 4 + n;
      }
      return;
    }
    message(u8, dv, i, end, out);
  }

  function parse(data) {
    const u8 = data instanceof Uint8Array ? data : new Uint8Array(data);
    const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
    const out = [];
    packet(u8, dv, 0, u8.length, out, 0);
    return out;
  }

  const enc = new TextEncoder();

  // A string as OSC wants it: UTF-8, a NUL, padded to 4 bytes.
  function ostr(s) {
    const b = enc.encode(s);
    const out = new Uint8Array((b.length + 4) & ~3);
    out.set(b);
    return out;
  }

  function encode(address, types, args) {
    const parts = [ostr(address), ostr(',' + types)];
    for (let k = 0; k < types.length; k++) {
      const t = types[k], v = args[k];
      if (t === 's') { parts.push(ostr(String(v))); continue; }
      const b = new Uint8Array(4), dv = new DataView(b.buffer);
      if (t === 'i') dv.setInt32(0, v);
      else if (t === 'f') dv.setFloat32(0, v);
      else throw new Error('unsupported OSC type tag ' + t);
      parts.push(b);
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let i = 0;
    for (const p of parts) { out.set(p, i); i += p.length; }
    return out;
  }

  const api = { parse, message: encode };
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.EmgOsc = api;
})(typeof self !== 'undefined' ? self : this);
