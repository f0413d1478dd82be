'use strict';
// worker.json_throughput anchor: the main thread posts N objects
// {i, name: 'item'} to a worker as fast as it can (postMessage never
// refuses); the worker sums i and answers {count, sum} after the last. One
// untimed exchange first (the worker is up). Prints wall ns per message,
// from the first post to the answer.
const { Worker, isMainThread, parentPort } = require('worker_threads');

const N = 200000;

if (!isMainThread) {
  let count = 0;
  let sum = 0;
  parentPort.on('message', (m) => {
    if (m === 'hello') return parentPort.postMessage('hello');
    sum += m.i;
    if (++count === N) {
      parentPort.postMessage({ count, sum });
      count = 0;
      sum = 0;
    }
  });
  return;
}

const { bestOf, nowNs } = require('./common');

const RUNS = 4; // common.js: one warm-up, then three

function fail(msg) {
  process.stderr.write(`worker_json.js: ${msg}\n`);
  process.exit(1);
}

const worker = new Worker(__filename);
let runs = 0;

bestOf((done) => {
  let t0 = 0;
  worker.removeAllListeners('message');
  worker.on('message', (m) => {
    if (m === 'hello') {
      t0 = nowNs();
      for (let i = 0; i < N; i++) worker.postMessage({ i, name: 'item' });
      return;
    }
    const ns = (nowNs() - t0) / N;
    if (m.count !== N || m.sum !== (N * (N - 1)) / 2) fail(`the worker counted ${m.count} summing to ${m.sum}`);
    if (++runs === RUNS) worker.terminate();
    done(ns);
  });
  worker.postMessage('hello');
});
