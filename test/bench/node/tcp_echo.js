// tcp.echo's Node anchor (bench_tcp.c): a net server on 127.0.0.1 that
// writes every chunk back as it came, driven by the bench's own C client.
// Prints its port once listening, then the CPU time it used (ns) once the
// client's connections (argv[2] of them) have all closed, and exits.
'use strict';
const net = require('net');

const conns = Number(process.argv[2] || 50);
let closed = 0;
let cpu0;
const server = net.createServer((s) => {
  s.setNoDelay(true);
  s.on('data', (chunk) => s.write(chunk));
  s.on('error', () => {});
  s.on('close', () => {
    if (++closed === conns) {
      const c = process.cpuUsage(cpu0);
      process.stdout.write(`${(c.user + c.system) * 1000}\n`);
      server.close();
    }
  });
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 1024 }, () => {
  cpu0 = process.cpuUsage();
  process.stdout.write(`${server.address().port}\n`);
});
