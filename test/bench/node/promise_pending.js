'use strict';
// promise.pending_bytes anchor: N pending promises, each with one then on it,
// keeping the promise, its resolve function and the promise then returns (as
// bench_promise.c keeps the promise, its deferred and the derived promise).
// Prints heap bytes per pending promise: process.memoryUsage().heapUsed after
// a full GC, minus the same before (the arrays that hold them are made
// first). Then every one resolves and the loop runs the reactions.
//
// global.gc needs --expose-gc, and bench.c runs `node script`: so the script
// runs itself again with the flag.
if (typeof global.gc !== 'function') {
  const { spawnSync } = require('child_process');
  const r = spawnSync(process.execPath, ['--expose-gc', __filename], { stdio: 'inherit' });
  process.exit(r.status === null ? 1 : r.status);
}

const { bestOf } = require('./common');

const N = 1000000;

function fail(msg) {
  process.stderr.write(`promise_pending.js: ${msg}\n`);
  process.exit(1);
}

// Packed arrays of the final length, so storing into them allocates nothing.
function slots() {
  const a = [];
  for (let i = 0; i < N; i++) a.push(null);
  return a;
}
const ps = slots();
const qs = slots();
const rs = slots();

function heapUsed() {
  global.gc();
  global.gc();
  return process.memoryUsage().heapUsed;
}

bestOf((done) => {
  let count = 0;
  let sum = 0;
  let bytes;
  const step = (v) => {
    sum += v;
    if (++count < N) return;
    if (sum !== N * (N - 1) / 2) fail(`the handlers saw the wrong values (sum ${sum})`);
    for (let i = 0; i < N; i++) ps[i] = qs[i] = rs[i] = null;
    done(bytes);
  };
  const before = heapUsed();
  for (let i = 0; i < N; i++) {
    ps[i] = new Promise((r) => { rs[i] = r; });
    qs[i] = ps[i].then(step);
  }
  bytes = (heapUsed() - before) / N;
  for (let i = 0; i < N; i++) rs[i](i);
});
