'use strict';
// task.await_queued anchor: as await_settled.js, with one other microtask
// queued (a no-op) before each await, so that the await's resume waits its
// turn behind it. Prints wall ns per await (the no-op's run included).
const { bestOf, nowNs } = require('./common');

const N = 1000000;
let ran = 0;
const noop = () => { ran++; };

function fail(msg) {
  process.stderr.write(`await_queued.js: ${msg}\n`);
  process.exit(1);
}

async function awaits(p) {
  let count = 0;
  ran = 0;
  const t0 = nowNs();
  for (let i = 0; i < N; i++) {
    queueMicrotask(noop);
    const v = await p;
    if (v !== 7) fail(`an await got ${v}`);
    count++;
  }
  const ns = (nowNs() - t0) / N;
  if (count !== N || ran !== N) fail(`${count} awaits, ${ran} no-ops of ${N}`);
  return ns;
}

bestOf((done) => {
  awaits(Promise.resolve(7)).then(done);
});
