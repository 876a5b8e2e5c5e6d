// SPDX-License-Identifier: MIT
// Subscribe to emgd with osc.js (npm install osc) and print every muscle's RMS once a
// second, onsets and repetitions.
//
//     node emgd-subscribe.js [HOST:PORT] [SECONDS]
//
// HOST:PORT is emgd's [osc] listen address (default 127.0.0.1:9000); SECONDS stops after
// that long (default: until Ctrl-C).  emgd answers and streams to the address a request
// came from, so requests leave from the port this script listens on; the subscription
// is a 10 s lease renewed every 5 s.
"use strict";
const osc = require("osc");

const [host, port] = (process.argv[2] || "127.0.0.1:9000").split(/:(?=\d+$)/);
const seconds = process.argv[3] ? Number(process.argv[3]) : Infinity;
const rms = new Map(); // muscle -> last /emg/<muscle>/rms, uV

const udp = new osc.UDPPort({
  localAddress: "0.0.0.0",
  localPort: 0, // any free port
  remoteAddress: host,
  remotePort: Number(port),
  metadata: false,
});

const subscribe = () => udp.send({ address: "/emgd/subscribe", args: [{ type: "i", value: 10 }] });

// "message" fires for every message, also those inside emgd's bundles.
udp.on("message", (msg) => {
  const parts = msg.address.split("/"); // "", "emg", muscle, leaf
  if (msg.address === "/emgd/subscribed") {
    console.log(`subscribed: lease ${msg.args[0]} s`);
  } else if (msg.address === "/emgd/error") {
    console.log(`emgd refused ${msg.args[0]}: ${msg.args[1]}`);
  } else if (parts.length === 4 && parts[1] === "emg" && parts[3] === "rms") {
    rms.set(parts[2], msg.args[0]);
  } else if (parts.length === 4 && parts[1] === "emg" && parts[3] === "onset") {
    console.log(`onset ${parts[2]} (${(msg.args[0] * 1e3).toFixed(0)} ms ago)`);
  } else if (msg.address === "/emg/rep") {
    console.log(`rep ${msg.args[0]} #${msg.args[1]} peak ${msg.args[2].toFixed(1)} ${msg.args[9]}`);
  }
});

udp.on("error", (e) => console.error(`osc: ${e.message}`));

udp.on("ready", () => {
  subscribe();
  const renew = setInterval(subscribe, 5000);
  const report = setInterval(() => {
    if (rms.size)
      console.log("rms uV: " + [...rms].map(([m, v]) => `${m} ${v.toFixed(1)}`).join("  "));
  }, 1000);
  const stop = () => {
    clearInterval(renew);
    clearInterval(report);
    udp.send({ address: "/emgd/unsubscribe", args: [] });
    setTimeout(() => udp.close(), 50);
  };
  if (Number.isFinite(seconds)) setTimeout(stop, seconds * 1000);
  process.on("SIGINT", stop);
});

udp.open();
