'use strict';
// worker.round_trip anchor: the main thread posts {n: i} to a worker, which
// answers {n: i + 1}; the next goes on receipt, N times, one message in
// flight. One untimed exchange first (the worker is up). Prints wall ns per
// round trip.
const { Worker, isMainThread, parentPort } = require('worker_threads');

if (!isMainThread) {
  parentPort.on('message', (m) => parentPort.postMessage({ n: m.n + 1 }));
  return;
}

const { bestOf, nowNs } = require('./common');

const N = 20000;
const RUNS = 4; // common.js: one warm-up, then three

function fail(msg) {
  process.stderr.write(`worker_round_trip.js: ${msg}\n`);
  process.exit(1);
}

const worker = new Worker(__filename);
let runs = 0;

bestOf((done) => {
  let got = -1;
  let t0 = 0;
  worker.removeAllListeners('message');
  worker.on('message', (m) => {
    if (got < 0) {
      got = 0;
      t0 = nowNs();
      worker.postMessage({ n: 0 });
      return;
    }
    if (m.n !== got * 2 + 1) fail(`got ${m.n}, expected ${got * 2 + 1}`);
    if (++got === N) {
      const ns = (nowNs() - t0) / N;
      if (++runs === RUNS) worker.terminate();
      done(ns);
      return;
    }
    worker.postMessage({ n: got * 2 });
  });
  worker.postMessage({ n: -1 });
});
