// The deploy target of test:compose: a tiny service with one version per app (`staging`, `production`) that
// the targets file's commands change over HTTP from the worker container, as `docker service update` would.
//   GET  /<app>/health         {"status":"ok","version":V}; 500 while V starts with "bad"
//   POST /<app>/admin/deploy   body = the version to run
//   GET  /<app>/admin/version  the version it runs
//   GET  /history              every version change, in order
import http from 'node:http';

const versions = new Map([
  ['staging', '1.0.0'],
  ['production', '1.0.0'],
]);
const history = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const [, app, a, b] = new URL(req.url, 'http://shopweb').pathname.split('/');
    const send = (status, body) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (app === 'history') return send(200, history);
    if (!versions.has(app)) return send(404, { error: `no app ${app}` });
    const version = versions.get(app);
    if (a === 'health') return send(version.startsWith('bad') ? 500 : 200, { status: 'ok', version });
    if (a === 'admin' && b === 'version') return res.writeHead(200).end(version);
    if (a === 'admin' && b === 'deploy' && req.method === 'POST') {
      const next = Buffer.concat(chunks).toString('utf8').trim();
      if (!next) return send(400, { error: 'no version' });
      versions.set(app, next);
      history.push({ app, from: version, to: next, at: Date.now() });
      return send(200, { app, version: next });
    }
    return send(404, { error: 'not found' });
  });
});
server.listen(8080, '0.0.0.0', () => console.log('shopweb on :8080'));
process.on('SIGTERM', () => process.exit(0));
