'use strict';
// promise.chain anchor: build a chain of N thens on a pending promise, then
// resolve its root with 0; each handler returns its value + 1. Prints wall
// ns per reaction, from making the root promise to the last handler (build
// and run together, as bench_promise.c times it).
const { bestOf, nowNs } = require('./common');

const N = 1000000;

function fail(msg) {
  process.stderr.write(`promise_chain.js: ${msg}\n`);
  process.exit(1);
}

bestOf((done) => {
  let count = 0;
  let t1 = 0;
  const step = (v) => {
    if (++count === N) t1 = nowNs();
    return v + 1;
  };
  const t0 = nowNs();
  let resolve;
  let p = new Promise((r) => { resolve = r; });
  for (let i = 0; i < N; i++) p = p.then(step);
  resolve(0);
  p.then((v) => {
    if (count !== N || v !== N) fail(`${count} reactions ran, the last value is ${v}`);
    done((t1 - t0) / N);
  });
});
