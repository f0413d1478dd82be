'use strict';
// make bench: Node's clients beside pact_fetch (bench_fetch.c), against the
// bench's own hello server on 127.0.0.1 (its port in PACT_BENCH_FETCH_PORT).
// Four figures, ns per request: fetch (undici) one after the other, and with
// 50 in flight; then http.request with a keep-alive agent, the same two
// ways. Every response's status and body is checked.
const http = require('http');
const { bestOf, nowNs } = require('./common');

const port = Number(process.env.PACT_BENCH_FETCH_PORT);
const url = `http://127.0.0.1:${port}/`;
const SEQ = 5000, TOTAL = 20000, CONC = 50;
const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });

function check(status, body) {
  if (status !== 200 || body !== 'hello world\n')
    throw new Error(`not the response expected: ${status} ${body}`);
}

async function viaFetch() {
  const res = await fetch(url);
  check(res.status, await res.text());
}

function viaHttp() {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => { try { check(res.statusCode, body); resolve(); } catch (e) { reject(e); } });
    }).on('error', reject);
  });
}

async function sequential(one) {
  const t0 = nowNs();
  for (let i = 0; i < SEQ; i++) await one();
  return (nowNs() - t0) / SEQ;
}

async function concurrent(one) {
  let started = 0;
  const t0 = nowNs();
  async function lane() {
    while (started < TOTAL) { started++; await one(); }
  }
  await Promise.all(Array.from({ length: CONC }, lane));
  return (nowNs() - t0) / TOTAL;
}

if (!(port > 0)) {
  process.stderr.write('fetch_get.js: no PACT_BENCH_FETCH_PORT\n');
  process.exit(1);
}
bestOf((done) => {
  (async () => {
    const a = await sequential(viaFetch);
    const b = await concurrent(viaFetch);
    const c = await sequential(viaHttp);
    const d = await concurrent(viaHttp);
    done(a, b, c, d);
  })().catch((e) => { process.stderr.write(`fetch_get.js: ${e.stack}\n`); process.exit(1); });
});
// the kept-alive sockets would hold the process after the last run
process.on('beforeExit', () => agent.destroy());
