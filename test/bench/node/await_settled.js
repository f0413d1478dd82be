'use strict';
// task.await_settled and async.await_settled anchor: one async function
// awaits one already-fulfilled promise N times (each await suspends and
// resumes as a microtask). Prints wall ns per await, from the function's
// start to the return of its last await.
const { bestOf, nowNs } = require('./common');

const N = 1000000;

function fail(msg) {
  process.stderr.write(`await_settled.js: ${msg}\n`);
  process.exit(1);
}

async function awaits(p) {
  let count = 0;
  const t0 = nowNs();
  for (let i = 0; i < N; i++) {
    const v = await p;
    if (v !== 7) fail(`an await got ${v}`);
    count++;
  }
  const ns = (nowNs() - t0) / N;
  if (count !== N) fail(`${count} of ${N} awaits ran`);
  return ns;
}

bestOf((done) => {
  awaits(Promise.resolve(7)).then(done);
});
