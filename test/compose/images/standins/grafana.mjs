#!/usr/bin/env node
// Stand-in for grafana/grafana (AGPL; not built here): reads Grafana's file provisioning the way Grafana does
// (/etc/grafana/provisioning/{datasources,dashboards}/*.yml, dashboard JSON from each provider's
// options.path) and answers the HTTP API a provisioning check uses, with Grafana's admin login
// (GF_SECURITY_ADMIN_USER, GF_SECURITY_ADMIN_PASSWORD or its __FILE):
//   GET /api/health                              (no login)
//   GET /api/search, /api/dashboards/uid/:uid    provisioned dashboards
//   GET /api/datasources, /api/datasources/proxy/uid/:uid/<path>   datasources, and queries through them
// It draws nothing: there is no UI.
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { parse } from 'yaml';

const root = process.env.GF_PATHS_PROVISIONING ?? '/etc/grafana/provisioning';
const env = (name) =>
  process.env[`${name}__FILE`]
    ? readFile(process.env[`${name}__FILE`], 'utf8').then((s) => s.trim())
    : process.env[name];
const adminUser = (await env('GF_SECURITY_ADMIN_USER')) ?? 'admin';
const adminPassword = (await env('GF_SECURITY_ADMIN_PASSWORD')) ?? 'admin';

async function yamlFiles(dir) {
  const names = await readdir(dir).catch(() => []);
  const docs = [];
  for (const n of names.filter((n) => /\.ya?ml$/.test(n)).sort())
    docs.push(parse(await readFile(path.join(dir, n), 'utf8')));
  return docs;
}
const datasources = (await yamlFiles(path.join(root, 'datasources'))).flatMap((d) => d?.datasources ?? []);
const dashboards = [];
for (const doc of await yamlFiles(path.join(root, 'dashboards'))) {
  for (const provider of doc?.providers ?? []) {
    const dir = provider.options?.path;
    for (const n of (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.json'))) {
      const dashboard = JSON.parse(await readFile(path.join(dir, n), 'utf8'));
      dashboards.push({ dashboard, folderTitle: provider.folder ?? 'General', file: n });
    }
  }
}
console.log(`grafana (stand-in): ${datasources.length} datasource(s), ${dashboards.length} dashboard(s) provisioned`);

const json = (res, status, body) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
const authorised = (req) => {
  const [scheme, value] = (req.headers.authorization ?? '').split(' ');
  if (scheme !== 'Basic' || !value) return false;
  const decoded = Buffer.from(value, 'base64').toString();
  return decoded === `${adminUser}:${adminPassword}`;
};

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://grafana');
  if (url.pathname === '/api/health') return json(res, 200, { database: 'ok', version: 'stand-in' });
  if (!authorised(req)) return json(res, 401, { message: 'Unauthorized' });
  if (url.pathname === '/api/search') {
    return json(
      res,
      200,
      dashboards.map(({ dashboard, folderTitle }) => ({
        uid: dashboard.uid,
        title: dashboard.title,
        type: 'dash-db',
        folderTitle,
        tags: dashboard.tags ?? [],
      })),
    );
  }
  const dash = url.pathname.match(/^\/api\/dashboards\/uid\/([^/]+)$/);
  if (dash) {
    const found = dashboards.find((d) => d.dashboard.uid === dash[1]);
    if (!found) return json(res, 404, { message: 'Dashboard not found' });
    return json(res, 200, { dashboard: found.dashboard, meta: { provisioned: true, folderTitle: found.folderTitle } });
  }
  if (url.pathname === '/api/datasources') return json(res, 200, datasources);
  const proxy = url.pathname.match(/^\/api\/datasources\/proxy\/uid\/([^/]+)(\/.*)$/);
  if (proxy) {
    const ds = datasources.find((d) => d.uid === proxy[1]);
    if (!ds) return json(res, 404, { message: 'Data source not found' });
    try {
      const upstream = await fetch(`${ds.url.replace(/\/$/, '')}${proxy[2]}${url.search}`);
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
      return res.end(Buffer.from(await upstream.arrayBuffer()));
    } catch (e) {
      return json(res, 502, { message: `data source ${ds.name}: ${e.message}` });
    }
  }
  return json(res, 404, { message: 'Not found' });
});
server.listen(3000, '0.0.0.0');
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
