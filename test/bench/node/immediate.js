'use strict';
// immediate.hop anchor: a chain of N setImmediate callbacks, each setting the
// next (so each hop is one loop iteration). Prints wall ns per hop.
const { bestOf, nowNs } = require('./common');

const N = 1000000;

bestOf((done) => {
  let count = 0;
  const t0 = nowNs();
  const hop = () => {
    if (++count < N) setImmediate(hop);
    else done((nowNs() - t0) / N);
  };
  setImmediate(hop);
});
