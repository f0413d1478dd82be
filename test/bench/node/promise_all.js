'use strict';
// promise.all anchor: Promise.all over N pending promises (made beforehand),
// a then on it, then every input resolves with its index in input order.
// Prints wall ns per input, from Promise.all to the start of the
// all-promise's reaction, which then checks every value.
const { bestOf, nowNs } = require('./common');

const N = 100000;

bestOf((done) => {
  const ps = [];
  const rs = [];
  for (let i = 0; i < N; i++) ps.push(new Promise((r) => { rs.push(r); }));
  const t0 = nowNs();
  Promise.all(ps).then((vs) => {
    const ns = (nowNs() - t0) / N;
    if (vs.length !== N || vs.some((v, i) => v !== i)) {
      process.stderr.write('promise_all.js: the list does not hold every value in order\n');
      process.exit(1);
    }
    done(ns);
  });
  for (let i = 0; i < N; i++) rs[i](i);
});
