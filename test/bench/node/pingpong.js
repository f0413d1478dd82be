'use strict';
// task.pingpong and async.pingpong anchor: two async functions pass a number
// back and forth N times through promises. Each side makes a promise, keeps
// its resolve function where the other side finds it, and awaits it; the
// other side resolves it. Prints wall ns per round trip, from ping's start
// to its last wake (as bench_task.c).
const { bestOf, nowNs } = require('./common');

const N = 200000;

function fail(msg) {
  process.stderr.write(`pingpong.js: ${msg}\n`);
  process.exit(1);
}

bestOf((done) => {
  let toPing = null;
  let toPong = null;
  const send = (resolve, v) => {
    if (!resolve) fail('the other side is not waiting');
    resolve(v);
  };
  async function pong() {
    for (let i = 0; i < N; i++) {
      const v = await new Promise((r) => { toPong = r; });
      if (v !== i) fail(`pong got ${v} in round ${i}`);
      const r = toPing;
      toPing = null;
      send(r, v);
    }
  }
  async function ping() {
    let count = 0;
    const t0 = nowNs();
    for (let i = 0; i < N; i++) {
      const p = new Promise((r) => { toPing = r; });
      const r = toPong;
      toPong = null;
      send(r, i);
      const v = await p;
      if (v !== i) fail(`ping got ${v} in round ${i}`);
      count++;
    }
    const ns = (nowNs() - t0) / N;
    if (count !== N) fail(`${count} of ${N} rounds ran`);
    return ns;
  }
  const pongDone = pong(); // first: it waits before ping sends
  Promise.all([ping(), pongDone]).then(([ns]) => done(ns));
});
