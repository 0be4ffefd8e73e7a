#!/usr/bin/env node
// Stand-in for MinIO's `mc` (AGPL; not built here), for what opsflow's compose file runs:
//   mc ready <alias>                       health of the alias's server (MinIO's /minio/health/ready)
//   mc alias set <alias> <url> <user> <pw> remembered in ~/.mc/config.json, like mc
//   mc mb [--ignore-existing] <alias>/<bucket>
// `local` is http://127.0.0.1:9000 unless set, as in mc's default configuration.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';

const configFile = path.join(os.homedir(), '.mc', 'config.json');
const fail = (message) => {
  console.error(`mc: ${message}`);
  process.exit(1);
};
async function aliases() {
  try {
    return JSON.parse(await readFile(configFile, 'utf8')).aliases ?? {};
  } catch {
    return {};
  }
}
async function alias(name) {
  const all = await aliases();
  return all[name] ?? (name === 'local' ? { url: 'http://127.0.0.1:9000' } : fail(`unknown alias ${name}`));
}

const args = process.argv.slice(2);
const [cmd, ...rest] = args;
if (cmd === 'ready') {
  const { url } = await alias(rest[0] ?? fail('ready <alias>'));
  const res = await fetch(`${url}/minio/health/ready`).catch((e) => fail(`${url}: ${e.message}`));
  if (!res.ok) fail(`${url} is not ready (${res.status})`);
  console.log(`'${rest[0]}' is ready`);
} else if (cmd === 'alias' && rest[0] === 'set') {
  const [, name, url, accessKey, secretKey] = rest;
  if (!name || !url || !accessKey || !secretKey) fail('alias set <alias> <url> <access key> <secret key>');
  const all = await aliases();
  all[name] = { url, accessKey, secretKey };
  await mkdir(path.dirname(configFile), { recursive: true });
  await writeFile(configFile, JSON.stringify({ aliases: all }), { mode: 0o600 });
  console.log(`Added \`${name}\` successfully.`);
} else if (cmd === 'mb') {
  const ignoreExisting = rest.includes('--ignore-existing') || rest.includes('-p');
  const target = rest.find((a) => !a.startsWith('-')) ?? fail('mb [--ignore-existing] <alias>/<bucket>');
  const [name, bucket] = target.split('/');
  const { url, accessKey, secretKey } = await alias(name);
  const s3 = new S3Client({
    endpoint: url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
  });
  const exists = await s3.send(new HeadBucketCommand({ Bucket: bucket })).then(
    () => true,
    (e) => (e.$metadata?.httpStatusCode === 404 ? false : fail(`${target}: ${e.name}: ${e.message}`)),
  );
  if (exists && !ignoreExisting)
    fail(
      `Unable to make bucket \`${target}\`. Your previous request to create the named bucket succeeded and you already own it.`,
    );
  if (!exists) await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((e) => fail(`${target}: ${e.message}`));
  console.log(`Bucket created successfully \`${target}\`.`);
} else {
  fail(`stand-in supports ready, alias set, mb; got ${JSON.stringify(args)}`);
}
