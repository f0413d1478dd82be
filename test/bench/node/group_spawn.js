'use strict';
// group.spawn anchor: Promise.all over N async functions that return at
// once (the structured "wait for all" of Node), in wall ns per child from
// the first call to the all-promise's reaction.
const { bestOf, nowNs } = require('./common');

const N = 100000;

async function quick(i) {
  return i;
}

bestOf((done) => {
  const t0 = nowNs();
  const ps = [];
  for (let i = 0; i < N; i++) ps.push(quick(i));
  Promise.all(ps).then((vs) => {
    const ns = (nowNs() - t0) / N;
    if (vs.length !== N) {
      process.stderr.write('group_spawn.js: a child is missing\n');
      process.exit(1);
    }
    done(ns);
  });
});
