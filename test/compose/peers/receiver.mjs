// A webhook receiver on the compose network (test:compose): records every request it gets and answers
//   POST /ok/...            200
//   POST /status/<code>/... that status
//   POST /fail/<n>/...      500 for the first n requests carrying a webhook-id, then 200 for it
// GET /requests lists what it got (method, path, headers, raw body, time); DELETE /requests forgets it.
import http from 'node:http';

const requests = [];
const seenById = new Map();
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url, 'http://receiver');
    if (url.pathname === '/requests') {
      if (req.method === 'DELETE') requests.length = 0;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(requests));
      return;
    }
    const body = Buffer.concat(chunks).toString('utf8');
    const id = req.headers['webhook-id'] ?? '';
    const n = (seenById.get(id) ?? 0) + 1;
    seenById.set(id, n);
    let status = 200;
    const [, kind, arg] = url.pathname.split('/');
    if (kind === 'status') status = Number(arg) || 500;
    if (kind === 'fail' && n <= Number(arg)) status = 500;
    requests.push({ method: req.method, path: url.pathname, headers: req.headers, body, status, at: Date.now() });
    res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'not yet');
  });
});
server.listen(8080, '0.0.0.0', () => console.log('receiver on :8080'));
process.on('SIGTERM', () => process.exit(0));
