// make bench: Node's http beside pact's HTTP server (bench_http.c). A server
// on 127.0.0.1 for http.hello (`GET /`, the 12 bytes of "hello world\n") and
// http.echo (`POST /echo`, the JSON body parsed and written back with
// JSON.stringify): it prints its port, the bench's load driver (wrk or its
// own client) measures it, `GET /cpu` answers the process's CPU time so far
// (for the _cpu figures), and a request for /exit stops it.
'use strict';
const http = require('http');

const server = http.createServer((req, res) => {
    if (req.url === '/exit') {
        res.end('bye');
        server.close();
        server.closeAllConnections();
        return;
    }
    if (req.url === '/cpu') { // the process's CPU time so far (ns): for _cpu
        const c = process.cpuUsage();
        res.end(String((c.user + c.system) * 1000));
        return;
    }
    if (req.method === 'POST' && req.url === '/echo') {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            let out;
            try {
                out = JSON.stringify(JSON.parse(Buffer.concat(chunks).toString()));
            } catch (e) {
                res.writeHead(400);
                res.end();
                return;
            }
            res.writeHead(200, {'Content-Type': 'application/json',
                                'Content-Length': Buffer.byteLength(out)});
            res.end(out);
        });
        return;
    }
    // the length given, as the C servers send it (else Node chunks)
    res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': 12});
    res.end('hello world\n');
});
server.listen(0, '127.0.0.1', () => {
    process.stdout.write(server.address().port + '\n');
});
