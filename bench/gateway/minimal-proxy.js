// Reference point for the benchmark: the least a Node + undici proxy can do (one fixed upstream, no
// routing, no header rewriting, no metrics). The gap to the Berth gateway is the cost of its features.
const http = require('node:http');
const { Pool } = require('undici');
const pool = new Pool(`http://127.0.0.1:${process.argv[2]}`, { pipelining: 1 });
http
  .createServer((req, res) => {
    pool
      .stream({ path: req.url, method: req.method, headers: { host: req.headers.host }, body: null }, ({ statusCode, headers }) => {
        res.writeHead(statusCode, headers);
        return res;
      })
      .catch(() => res.destroy());
  })
  .listen(Number(process.argv[3]), '127.0.0.1', () => process.send?.('ready'));
