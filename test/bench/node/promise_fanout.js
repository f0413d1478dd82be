'use strict';
// promise.fanout anchor: N independent reactions, Promise.resolve(i).then(f)
// each, run by the microtask drain after the building callback; the handlers
// sum their values. Prints wall ns per reaction, from the first
// Promise.resolve to the last handler.
const { bestOf, nowNs } = require('./common');

const N = 1000000;

bestOf((done) => {
  let count = 0;
  let sum = 0;
  let t0;
  const step = (v) => {
    sum += v;
    if (++count < N) return;
    const ns = (nowNs() - t0) / N;
    if (sum !== N * (N - 1) / 2) {
      process.stderr.write(`promise_fanout.js: the handlers saw the wrong values (sum ${sum})\n`);
      process.exit(1);
    }
    done(ns);
  };
  t0 = nowNs();
  for (let i = 0; i < N; i++) Promise.resolve(i).then(step);
});
