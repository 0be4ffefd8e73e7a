#!/usr/bin/env node
// Stand-in for the `minio` server of minio/minio (AGPL; not built here): `minio server <dir> [--address :9000]
// [--console-address :9001]` serves S3 on :9000 from s3rver, accepting only MINIO_ROOT_USER /
// MINIO_ROOT_PASSWORD (SigV4 checked), and answers MinIO's /minio/health/{live,ready}. No console.
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const S3rver = require('s3rver');
const Account = require('s3rver/lib/models/account.js');

const [command, directory = '/data', ...rest] = process.argv.slice(2);
if (command !== 'server') {
  console.error(`minio (stand-in): only "server <dir>" is supported, got ${JSON.stringify(process.argv.slice(2))}`);
  process.exit(2);
}
const flag = (name, fallback) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : fallback;
};
const port = Number(flag('--address', ':9000').split(':').pop());
const user = process.env.MINIO_ROOT_USER;
const password = process.env.MINIO_ROOT_PASSWORD;
if (!user || !password) {
  console.error('minio (stand-in): MINIO_ROOT_USER and MINIO_ROOT_PASSWORD must be set');
  process.exit(1);
}
Account.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
Account.DUMMY_ACCOUNT.createKeyPair(user, password);

// Path-style only: s3rver would otherwise take the host name (`minio`) for a bucket name.
const s3 = new S3rver({ directory, silent: true, vhostBuckets: false });
await s3.configureBuckets();
const handle = s3.callback();
const server = http.createServer((req, res) => {
  if (req.url === '/minio/health/live' || req.url === '/minio/health/ready') {
    res.writeHead(200).end();
    return;
  }
  handle(req, res);
});
server.listen(port, '0.0.0.0', () => console.log(`minio (stand-in, s3rver): S3 on :${port}, data in ${directory}`));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
