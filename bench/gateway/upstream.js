// Tiny keep-alive HTTP upstream for the gateway benchmark: answers every request with a fixed 1 KiB body.
const http = require('node:http');
const body = Buffer.alloc(1024, 'x');
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2]), '127.0.0.1', () => process.send?.('ready'));
