'use strict';
// timer.add_fire anchor: set N one-shot timers (setTimeout) with the same
// delays as bench.c's bench_delays (xorshift32, same seed, 1 + x % 1000 ms)
// and wait until all fired. Prints process CPU ns per timer
// (process.cpuUsage: user + system) and wall ns per timer.
const { bestOf, nowNs } = require('./common');

const N = 1000000;
const delays = new Uint32Array(N);
let x = 2463534242;
for (let i = 0; i < N; i++) {
  x = (x ^ (x << 13)) >>> 0;
  x = (x ^ (x >>> 17)) >>> 0;
  x = (x ^ (x << 5)) >>> 0;
  delays[i] = 1 + (x % 1000);
}

bestOf((done) => {
  let fired = 0;
  const cpu0 = process.cpuUsage();
  const wall0 = nowNs();
  const fire = () => {
    if (++fired < N) return;
    const cpu = process.cpuUsage(cpu0);
    const wall = nowNs() - wall0;
    done((cpu.user + cpu.system) * 1000 / N, wall / N);
  };
  for (let i = 0; i < N; i++) setTimeout(fire, delays[i]);
});
