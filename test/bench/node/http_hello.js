// make bench: Node's http beside pact's HTTP server (bench_http.c). A hello
// server on 127.0.0.1: it prints its port, the bench's load client drives it
// (warm-up and measured runs), and a request for /exit stops it.
'use strict';
const http = require('http');

const server = http.createServer((req, res) => {
    if (req.url === '/exit') {
        res.end('bye');
        server.close();
        server.closeAllConnections();
        return;
    }
    // the length given, as the C servers send it (else Node chunks)
    res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': 12});
    res.end('hello world\n');
});
server.listen(0, '127.0.0.1', () => {
    process.stdout.write(server.address().port + '\n');
});
