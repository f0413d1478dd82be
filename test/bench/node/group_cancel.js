'use strict';
// group.cancel anchor: N async functions awaiting timers/promises'
// setTimeout with one AbortSignal; the controller aborts and every one ends
// with an AbortError. Wall ns per child from abort() to the last one's end.
// 10,000 children, not the C side's 100,000: Node's AbortSignal removes each
// listener from a list as it runs, so its cost per child grows with the
// count (100,000 takes minutes); the figure is thus Node's best case.
const { bestOf, nowNs } = require('./common');
const { setTimeout: sleep } = require('timers/promises');
const { setMaxListeners } = require('events');

const N = 10000;

bestOf((done) => {
  const ac = new AbortController();
  setMaxListeners(N + 1, ac.signal);
  let ended = 0;
  let t0 = 0;
  const child = async () => {
    try {
      await sleep(600000, undefined, { signal: ac.signal });
    } catch (e) {
      if (e.name !== 'AbortError') throw e;
    }
    if (++ended === N) done((nowNs() - t0) / N);
  };
  for (let i = 0; i < N; i++) child();
  setImmediate(() => {
    t0 = nowNs();
    ac.abort();
  });
});
