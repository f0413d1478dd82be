'use strict';
// async.suspended_bytes anchor: N async functions, each suspended awaiting
// one shared pending promise. Prints heap bytes per suspended function:
// process.memoryUsage().heapUsed after a full GC, minus the same before the
// calls, divided by N (the promises the calls return are dropped, as
// bench_task.c drops them). Then the promise resolves, and every function
// must wake with its value.
//
// global.gc needs --expose-gc, and bench.c runs `node script`: so the script
// runs itself again with the flag.
if (typeof global.gc !== 'function') {
  const { spawnSync } = require('child_process');
  const r = spawnSync(process.execPath, ['--expose-gc', __filename], { stdio: 'inherit' });
  process.exit(r.status === null ? 1 : r.status);
}

const { bestOf } = require('./common');

const N = 100000;

function fail(msg) {
  process.stderr.write(`async_suspended.js: ${msg}\n`);
  process.exit(1);
}

function heapUsed() {
  global.gc();
  global.gc();
  return process.memoryUsage().heapUsed;
}

let count = 0;

async function waiter(gate) {
  const v = await gate;
  if (v !== 1) fail(`a function woke with ${v}`);
  count++;
}

bestOf((done) => {
  let open;
  const gate = new Promise((r) => { open = r; });
  count = 0;
  const before = heapUsed();
  for (let i = 0; i < N; i++) waiter(gate);
  const bytes = (heapUsed() - before) / N;
  if (count !== 0) fail(`${count} functions did not suspend`);
  open(1);
  setImmediate(() => {
    if (count !== N) fail(`${count} of ${N} functions woke`);
    done(bytes);
  });
});
