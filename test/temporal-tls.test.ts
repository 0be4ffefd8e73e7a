/**
 * The Temporal connection over real TLS and mTLS: a CA and certificates generated with openssl, a TLS
 * listener in front of the run's Temporal server (it forwards the decrypted HTTP/2), and opsflow's own
 * settings (env-config: variables and a TOML profile) connecting a client and a worker through it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../lib/config.js';
import { connectClient, connectWorker, temporalSettings } from '../lib/temporal.js';

const openssl = (...args: string[]) => promisify(execFile)('openssl', args);

/** A TLS listener on loopback that forwards each connection to `upstream` (host:port). */
async function tlsFront(
  upstream: string,
  options: tls.TlsOptions,
): Promise<{ address: string; close(): Promise<void> }> {
  const [host, port] = upstream.split(':') as [string, string];
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ ...options, ALPNProtocols: ['h2'] }, (client) => {
    const up = net.connect(Number(port), host === 'localhost' ? '127.0.0.1' : host);
    sockets.add(client).add(up);
    client.pipe(up).pipe(client);
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: p } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${p}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('Temporal over TLS and mTLS', () => {
  let dir: string;
  const f = (name: string) => path.join(dir, name);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'opsflow-tls-'));
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    const ca = async (name: string) =>
      openssl(
        'req',
        '-x509',
        ...ec,
        '-keyout',
        f(`${name}.key`),
        '-out',
        f(`${name}.pem`),
        '-days',
        '2',
        '-subj',
        `/CN=${name}`,
      );
    const leaf = async (name: string, signer: string, ext: string) => {
      await writeFile(f(`${name}.ext`), ext);
      await openssl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${name}`);
      await openssl(
        'x509',
        '-req',
        '-in',
        f(`${name}.csr`),
        '-CA',
        f(`${signer}.pem`),
        '-CAkey',
        f(`${signer}.key`),
        '-CAcreateserial',
        '-out',
        f(`${name}.pem`),
        '-days',
        '2',
        '-extfile',
        f(`${name}.ext`),
      );
    };
    await ca('test-ca');
    await ca('other-ca');
    await leaf('server', 'test-ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    await leaf('client', 'test-ca', 'extendedKeyUsage=clientAuth\n');
    await leaf('stranger', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const serverTls = async () => ({ key: await readFile(f('server.key')), cert: await readFile(f('server.pem')) });

  it('TLS: a client and a worker connect with the configured CA; a server the CA did not sign is refused', async () => {
    const front = await tlsFront(inject('temporalAddress'), await serverTls());
    try {
      const config = loadConfig({
        TEMPORAL_ADDRESS: front.address,
        TEMPORAL_TLS: 'true',
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: f('test-ca.pem'),
      });
      const client = await connectClient(temporalSettings(config));
      const info = await client.workflowService.getSystemInfo({});
      expect(info.capabilities).toBeTruthy();
      await client.connection.close();
      const worker = await connectWorker(temporalSettings(config));
      await worker.close();

      // Another CA: the server's certificate does not verify, nothing connects.
      const wrongCa = temporalSettings(
        loadConfig({
          TEMPORAL_ADDRESS: front.address,
          TEMPORAL_TLS: 'true',
          TEMPORAL_TLS_SERVER_CA_CERT_PATH: f('other-ca.pem'),
        }),
      );
      await expect(
        Connection.connect({ address: wrongCa.address, tls: wrongCa.tls, connectTimeout: 3000 }),
      ).rejects.toThrow();
    } finally {
      await front.close();
    }
  });

  it('mTLS through a TOML profile: the client certificate opens it, none or a stranger is refused', async () => {
    const front = await tlsFront(inject('temporalAddress'), {
      ...(await serverTls()),
      ca: await readFile(f('test-ca.pem')),
      requestCert: true,
      rejectUnauthorized: true,
    });
    try {
      const profile = (cert: string) =>
        [
          '[profile.secure]',
          `address = "${front.address}"`,
          '[profile.secure.tls]',
          `server_ca_cert_path = "${f('test-ca.pem')}"`,
          `client_cert_path = "${f(`${cert}.pem`)}"`,
          `client_key_path = "${f(`${cert}.key`)}"`,
        ].join('\n');
      await writeFile(f('good.toml'), profile('client'));
      await writeFile(f('stranger.toml'), profile('stranger'));
      const settings = (file: string) =>
        temporalSettings(loadConfig({ TEMPORAL_CONFIG_FILE: f(file), TEMPORAL_PROFILE: 'secure' }));

      const good = settings('good.toml');
      expect(good.address).toBe(front.address);
      const client = await connectClient(good);
      expect((await client.workflowService.getSystemInfo({})).capabilities).toBeTruthy();
      await client.connection.close();
      const worker = await connectWorker(good);
      await worker.close();

      const stranger = settings('stranger.toml');
      await expect(
        Connection.connect({ address: stranger.address, tls: stranger.tls, connectTimeout: 3000 }),
      ).rejects.toThrow();
      const none = temporalSettings(
        loadConfig({
          TEMPORAL_ADDRESS: front.address,
          TEMPORAL_TLS: 'true',
          TEMPORAL_TLS_SERVER_CA_CERT_PATH: f('test-ca.pem'),
        }),
      );
      await expect(
        Connection.connect({ address: none.address, tls: none.tls, connectTimeout: 3000 }),
      ).rejects.toThrow();
    } finally {
      await front.close();
    }
  });
});
