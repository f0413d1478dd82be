'use strict';
// Shared by the Node anchors of make bench: run a benchmark once to warm up
// (JIT, heap growth), then three times, and print the least value of each
// figure on one line, space-separated, for bench.c to read. The C side
// treats a non-zero exit or a missing number as a failed benchmark.
//
// Each run calls done only from the callback that completes its count, so a
// lost callback means the loop empties before every run finished: the exit
// check below turns that into a failure instead of a figure.

const WARMUP = 1;
const RUNS = 3;

function nowNs() {
  return Number(process.hrtime.bigint());
}

// run(done) does one measured run and calls done(fig0, fig1, ...) from a
// callback; each run starts from a fresh macrotask so none overlaps another.
function bestOf(run) {
  const best = [];
  let left = WARMUP + RUNS;
  let finished = false;
  const next = () => run((...figs) => {
    if (--left < RUNS)
      figs.forEach((f, i) => { if (!(best[i] <= f)) best[i] = f; });
    if (left > 0) return setImmediate(next);
    finished = true;
    process.stdout.write(best.map((f) => f.toFixed(3)).join(' ') + '\n');
  });
  process.on('exit', (code) => {
    if (!finished && code === 0) {
      process.stderr.write(`${process.argv[1]}: the loop ended before every run finished\n`);
      process.exitCode = 1;
    }
  });
  setImmediate(next);
}

module.exports = { bestOf, nowNs };
