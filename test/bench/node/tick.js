'use strict';
// tick.hop anchor: a chain of N process.nextTick callbacks, each queuing the next,
// started from an immediate so the drain runs inside the loop, as bench.c
// does. Prints wall ns per hop, from queuing the first to running the last.
const { bestOf, nowNs } = require('./common');

const N = 10000000;

bestOf((done) => {
  let count = 0;
  let t0;
  const hop = () => {
    if (++count < N) return process.nextTick(hop);
    const ns = (nowNs() - t0) / N;
    setImmediate(() => done(ns));
  };
  setImmediate(() => {
    t0 = nowNs();
    process.nextTick(hop);
  });
});
