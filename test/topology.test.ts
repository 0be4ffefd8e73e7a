/**
 * The production files, checked by reading them (there is no Docker engine here): docker-compose.yml,
 * .env.example, temporal-config/, the Dockerfile, and the Temporal connection options built from env.
 */
import type { TLSConfig } from '@temporalio/client';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { envSchema, loadConfig } from '../lib/config.js';
import { allSearchAttributes } from '../lib/search-attributes.js';
import { temporalSettings } from '../lib/temporal.js';

interface Service {
  image?: string;
  build?: unknown;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: unknown };
  ports?: string[];
  restart?: string;
  deploy?: { replicas?: number };
}

const compose = async () =>
  parse(await readFile('docker-compose.yml', 'utf8'), { merge: true }) as { services: Record<string, Service> };

/** Keys that are not opsflow's but that a service legitimately passes (AWS SDK credential chain). */
const foreignKeys = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
const opsflowServices = ['worker', 'api'];
const oneShot = ['postgres-roles', 'temporal-schema', 'temporal-setup', 'minio-setup'];

describe('docker-compose.yml', () => {
  it('has every service of the topology, with pinned images', async () => {
    const { services } = await compose();
    for (const name of [
      'postgres',
      'postgres-roles',
      'temporal-schema',
      'temporal',
      'temporal-setup',
      'temporal-ui',
      'worker',
      'api',
      'mailpit',
      'minio',
      'minio-setup',
    ]) {
      expect(services[name], name).toBeDefined();
    }
    for (const [name, s] of Object.entries(services)) {
      if (s.build) continue;
      expect(s.image, name).toMatch(/^[\w./-]+:[\w.-]+$/);
      expect(s.image, `${name} is not pinned`).not.toMatch(/:(latest|stable|main)$/);
    }
    expect(services.temporal!.image).toBe('temporalio/server:1.29.1');
    expect(services.worker!.deploy?.replicas).toBe(2);
  });

  it('long-running services have health checks; every depends_on names a condition that exists', async () => {
    const { services } = await compose();
    for (const [name, s] of Object.entries(services)) {
      if (!oneShot.includes(name)) expect(s.healthcheck?.test, `${name} healthcheck`).toBeDefined();
      else expect(s.restart, `${name} is a one-shot job`).toBe('no');
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} depends on unknown ${dep}`).toBeDefined();
        expect(['service_healthy', 'service_started', 'service_completed_successfully']).toContain(condition);
        if (condition === 'service_healthy') expect(services[dep]!.healthcheck, `${dep} healthcheck`).toBeDefined();
        if (condition === 'service_completed_successfully') expect(oneShot).toContain(dep);
      }
    }
    // The order that matters: schema before server, setup before opsflow, bucket before workers.
    expect(services.temporal!.depends_on?.['temporal-schema']?.condition).toBe('service_completed_successfully');
    expect(services.worker!.depends_on?.['temporal-setup']?.condition).toBe('service_completed_successfully');
    expect(services.worker!.depends_on?.['minio-setup']?.condition).toBe('service_completed_successfully');
    expect(services.api!.depends_on?.['postgres']?.condition).toBe('service_healthy');
    // Backups run as the role postgres-roles makes, which needs Temporal's databases to exist to lock them away.
    expect(services['postgres-roles']!.depends_on?.['temporal-schema']?.condition).toBe(
      'service_completed_successfully',
    );
    for (const s of ['worker', 'api']) {
      expect(services[s]!.depends_on?.['postgres-roles']?.condition, s).toBe('service_completed_successfully');
    }
    expect(String(services.worker!.environment?.BACKUP_DATABASE_URLS)).toContain('postgres://opsflow_backup:');
    // The worker's health check probes the metrics endpoint the worker is told to serve, not a no-op.
    const metricsPort = String(services.worker!.environment?.WORKER_METRICS_ADDRESS).split(':').at(-1);
    expect(JSON.stringify(services.worker!.healthcheck?.test)).toContain(`127.0.0.1:${metricsPort}/metrics`);
  });

  it('opsflow services set only variables lib/config.ts knows, and the config they describe is valid', async () => {
    const { services } = await compose();
    const known = new Set(Object.keys(envSchema.shape));
    for (const name of opsflowServices) {
      const env = services[name]!.environment ?? {};
      for (const key of Object.keys(env)) {
        expect(known.has(key) || foreignKeys.has(key), `${name}: ${key} is not read by lib/config.ts`).toBe(true);
      }
      // Substitute compose defaults (${VAR:?msg} → a sample, then ${VAR:-default}, which may hold the former) and
      // parse as opsflow would.
      const resolved = Object.fromEntries(
        Object.entries(env)
          .filter(([k]) => !foreignKeys.has(k))
          .map(([k, v]) => [
            k,
            String(v)
              .replace(/\$\{(\w+):\?[^}]*\}/g, (_m, n: string) =>
                n === 'OPSFLOW_ENCRYPTION_KEY'
                  ? Buffer.alloc(32, 1).toString('base64')
                  : 'compose-check-key-0123456789abcdef-0123456789',
              )
              .replace(/\$\{(\w+):-([^}]*)\}/g, (_m, _n, d: string) => d),
          ]),
      );
      expect(() => loadConfig(resolved), name).not.toThrow();
    }
  });

  it('published host ports do not clash', async () => {
    const { services } = await compose();
    const published = Object.entries(services).flatMap(([name, s]) =>
      (s.ports ?? []).map((p) => ({ name, host: String(p).split(':').at(-2) })),
    );
    const seen = new Map<string, string>();
    for (const { name, host } of published) {
      expect(seen.get(host!), `port ${host} published by ${seen.get(host!)} and ${name}`).toBeUndefined();
      seen.set(host!, name);
    }
    expect(seen.size).toBeGreaterThanOrEqual(5);
  });

  it('only the API listens on every interface; the Temporal frontend, UIs and MinIO console on 127.0.0.1', async () => {
    const { services } = await compose();
    for (const [name, s] of Object.entries(services)) {
      for (const p of s.ports ?? []) {
        const parts = String(p).split(':');
        if (name === 'api') expect(parts, `${name} ${p}`).toHaveLength(2);
        else expect(parts[0], `${name} publishes ${p} beyond loopback`).toBe('127.0.0.1');
      }
    }
    for (const name of ['temporal', 'temporal-ui', 'minio', 'mailpit', 'prometheus', 'grafana']) {
      expect(services[name]!.ports).toBeDefined();
    }
    // The API listens on every interface of its container, so its metrics need a token.
    expect(services.api!.environment?.HOST).toBe('0.0.0.0');
    expect(services.api!.environment?.METRICS_TOKEN).toMatch(/^\$\{METRICS_TOKEN:\?/);
  });

  it('holds no credential: every secret comes from .env, which must set it', async () => {
    const text = await readFile('docker-compose.yml', 'utf8');
    const secrets = [
      'POSTGRES_PASSWORD',
      'BACKUP_DB_PASSWORD',
      'MINIO_ROOT_USER',
      'MINIO_ROOT_PASSWORD',
      'OPSFLOW_ENCRYPTION_KEY',
      'OPSFLOW_API_KEYS',
      'METRICS_TOKEN',
    ];
    for (const name of secrets) {
      const uses = [...text.matchAll(new RegExp(`\\$\\{${name}(:[-?][^}]*)?\\}`, 'g'))];
      expect(uses.length, name).toBeGreaterThan(0);
      // ${NAME:?message}: compose refuses to start without it; never ${NAME:-default} or ${NAME}.
      for (const u of uses) expect(u[1], `${name} in ${u[0]}`).toMatch(/^:\?/);
    }
    const { services } = await compose();
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (/PASSWORD__?FILE$/.test(key)) {
          // A secret read from a compose secret's file.
          expect(String(value), `${name}.${key}`).toMatch(/^\/run\/secrets\/\w+$/);
        } else if (/PASSWORD|SECRET|TOKEN|API_KEYS?$|ACCESS_KEY/.test(key)) {
          expect(String(value), `${name}.${key} is a literal`).toMatch(/^\$\{\w+:\?/);
        }
        // Passwords inside URLs come from .env too.
        expect(String(value), `${name}.${key}`).not.toMatch(/:\/\/[^:/@]+:[^$@][^@]*@/);
      }
    }
    // .env.example says how to make the secrets and ships none.
    const example = await readFile('.env.example', 'utf8');
    expect(example).toMatch(/openssl rand/);
    for (const name of [
      'POSTGRES_PASSWORD',
      'BACKUP_DB_PASSWORD',
      'MINIO_ROOT_PASSWORD',
      'OPSFLOW_API_KEYS',
      'OPSFLOW_ENCRYPTION_KEY',
      'METRICS_TOKEN',
    ]) {
      expect(example, name).toMatch(new RegExp(`^${name}=$`, 'm'));
    }
  });
});

describe('monitoring profile: Prometheus and Grafana', () => {
  it('Prometheus scrapes the API with the metrics token and every worker, and loads the alert rules', async () => {
    const { services } = await compose();
    const prom = services.prometheus as Service & { profiles?: string[]; volumes?: string[]; secrets?: string[] };
    const grafana = services.grafana as Service & { profiles?: string[]; volumes?: string[] };
    expect(prom.profiles).toEqual(['monitoring']);
    expect(grafana.profiles).toEqual(['monitoring']);
    const config = parse(await readFile('monitoring/prometheus.yml', 'utf8')) as {
      rule_files: string[];
      scrape_configs: {
        job_name: string;
        authorization?: { credentials_file: string };
        static_configs?: { targets: string[] }[];
        dns_sd_configs?: { names: string[]; port: number }[];
      }[];
    };
    const jobs = Object.fromEntries(config.scrape_configs.map((j) => [j.job_name, j]));
    // The job names the alert rules use.
    expect(await readFile('monitoring/alerts.yml', 'utf8')).toContain('job="opsflow-api"');
    expect(jobs['opsflow-api']?.static_configs?.[0]?.targets).toEqual([`api:${services.api!.environment?.PORT}`]);
    expect(jobs['opsflow-api']?.authorization?.credentials_file).toBe('/run/secrets/metrics_token');
    expect(prom.secrets).toContain('metrics_token');
    const workerPort = Number(String(services.worker!.environment?.WORKER_METRICS_ADDRESS).split(':').at(-1));
    expect(jobs['opsflow-worker']?.dns_sd_configs?.[0]).toMatchObject({ names: ['worker'], port: workerPort });
    // What the config names is mounted where it says.
    expect(prom.volumes).toEqual(
      expect.arrayContaining([
        './monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro',
        `./monitoring/alerts.yml:${config.rule_files[0]}:ro`,
      ]),
    );
    expect(grafana.volumes).toEqual(
      expect.arrayContaining([
        './monitoring/grafana/provisioning:/etc/grafana/provisioning:ro',
        './monitoring/grafana/dashboards:/var/lib/grafana/dashboards:ro',
      ]),
    );
  });

  it('Grafana provisions the Prometheus datasource the dashboard names, and the dashboard from its folder', async () => {
    const ds = parse(await readFile('monitoring/grafana/provisioning/datasources/prometheus.yml', 'utf8')) as {
      datasources: { uid: string; url: string }[];
    };
    const providers = parse(await readFile('monitoring/grafana/provisioning/dashboards/opsflow.yml', 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    expect(providers.providers[0]?.options.path).toBe('/var/lib/grafana/dashboards');
    expect(ds.datasources[0]?.url).toBe('http://prometheus:9090');
    const dash = JSON.parse(await readFile('monitoring/grafana/dashboards/opsflow.json', 'utf8')) as {
      panels: { title: string; datasource: { uid: string }; targets: { expr: string }[] }[];
    };
    expect(dash.panels.length).toBeGreaterThanOrEqual(10);
    for (const p of dash.panels) {
      expect(p.datasource.uid, p.title).toBe(ds.datasources[0]?.uid);
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
  });
});

describe('.env.example and temporal-config/', () => {
  it('.env.example lists every variable lib/config.ts reads', async () => {
    const text = await readFile('.env.example', 'utf8');
    const listed = new Set([...text.matchAll(/^([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    for (const key of Object.keys(envSchema.shape)) expect(listed.has(key), key).toBe(true);
  });

  it('setup.sh registers exactly the search attributes opsflow uses, with their types', async () => {
    const text = await readFile('temporal-config/setup.sh', 'utf8');
    const registered = [...text.matchAll(/^\s+(\w+)=(\w+)(?: \\|; do)$/gm)].map((m) => `${m[1]}=${m[2]}`);
    const names: Record<string, string> = { KEYWORD: 'Keyword', DATETIME: 'Datetime', TEXT: 'Text', INT: 'Int' };
    expect(registered.sort()).toEqual(allSearchAttributes.map((k) => `${k.name}=${names[k.type]}`).sort());
  });

  it('the server config renders against PostgreSQL and the dynamic config enables what opsflow needs', async () => {
    const server = await readFile('temporal-config/postgres.yaml', 'utf8');
    expect(server.slice(0, 1024)).toContain('enable-template');
    expect(server).toMatch(/pluginName: postgres12/);
    const dynamic = parse(await readFile('temporal-config/dynamicconfig.yaml', 'utf8')) as Record<
      string,
      [{ value: unknown }]
    >;
    expect(dynamic['frontend.enableExecuteMultiOperation']?.[0]?.value).toBe(true);
    expect(dynamic['frontend.enableUpdateWorkflowExecution']?.[0]?.value).toBe(true);
  });

  it('the Dockerfile is multi-stage on Node 24 LTS, runs as non-root under tini, and checks /health', async () => {
    const text = await readFile('Dockerfile', 'utf8');
    expect(text.match(/^FROM node:24\.\d+-bookworm-slim/gm)?.length).toBe(2);
    // Reachable from outside the container, hence (the API refuses to start otherwise) a metrics token.
    expect(text).toMatch(/^ENV .*HOST=0\.0\.0\.0/m);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/ENTRYPOINT \["\/usr\/bin\/tini", "--"\]/);
    expect(text).toMatch(/HEALTHCHECK[\s\S]*\/health/);
    expect(text).toMatch(/npm run build/);
  });
});

describe('Temporal connection options from env', () => {
  const settings = (env: Record<string, string>) =>
    temporalSettings(loadConfig({ DATABASE_URL: 'postgres://u@h:5432/db', ...env }));

  it('a local server: plain gRPC on the given address', () => {
    expect(settings({ TEMPORAL_ADDRESS: 'temporal:7233' })).toEqual({
      address: 'temporal:7233',
      namespace: 'default',
      tls: undefined,
      apiKey: undefined,
      metadata: undefined,
    });
  });

  it('Temporal Cloud with an API key: TLS on, key passed', () => {
    expect(
      settings({
        TEMPORAL_ADDRESS: 'eu-west-1.aws.api.temporal.io:7233',
        TEMPORAL_NAMESPACE: 'ops.acct',
        TEMPORAL_API_KEY: 'k',
      }),
    ).toEqual({
      address: 'eu-west-1.aws.api.temporal.io:7233',
      namespace: 'ops.acct',
      tls: true,
      apiKey: 'k',
      metadata: undefined,
    });
  });

  it('mTLS: the certificate pair and CA are read from the files, server name overridden', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tls-'));
    const f = (n: string) => path.join(dir, n);
    await Promise.all([writeFile(f('c.pem'), 'CERT'), writeFile(f('k.pem'), 'KEY'), writeFile(f('ca.pem'), 'CA')]);
    const s = settings({
      TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
      TEMPORAL_TLS_CLIENT_CERT_PATH: f('c.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: f('k.pem'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: f('ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    const tls = s.tls as TLSConfig;
    expect(tls.clientCertPair?.crt.toString()).toBe('CERT'); // Buffers, as the native connection wants
    expect(tls.clientCertPair?.key.toString()).toBe('KEY');
    expect(tls.serverRootCACertificate?.toString()).toBe('CA');
    expect(tls.serverNameOverride).toBe('temporal.internal');
    await rm(dir, { recursive: true });
  });

  it('TEMPORAL_TLS=false wins over the implication; a lone certificate is refused', () => {
    expect(settings({ TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' }).tls).toBe(false);
    expect(() => settings({ TEMPORAL_TLS_CLIENT_CERT_PATH: '/x.pem' })).toThrow(/must be set together/);
  });

  it("a profile of the temporal CLI's TOML file, the variables overriding it; an unknown profile is refused", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'temporal-toml-'));
    const file = path.join(dir, 'temporal.toml');
    await writeFile(
      file,
      [
        '[profile.default]',
        'address = "localhost:7233"',
        '[profile.prod]',
        'address = "prod.acct.tmprl.cloud:7233"',
        'namespace = "prod.acct"',
        'api_key = "from-the-profile"',
        '[profile.prod.grpc_meta]',
        'x-team = "ops"',
      ].join('\n'),
    );
    expect(settings({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' })).toEqual({
      address: 'prod.acct.tmprl.cloud:7233',
      namespace: 'prod.acct',
      tls: true,
      apiKey: 'from-the-profile',
      metadata: { 'x-team': 'ops' },
    });
    expect(
      settings({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod', TEMPORAL_NAMESPACE: 'other' }).namespace,
    ).toBe('other');
    // The default profile when none is named; with it, `npm start` uses that server instead of a dev server.
    expect(loadConfig({ DATABASE_URL: 'postgres://u@h:5432/db', TEMPORAL_CONFIG_FILE: file }).temporal.address).toBe(
      'localhost:7233',
    );
    expect(() => settings({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'nope' })).toThrow(
      /Profile 'nope' not found/,
    );
    await rm(dir, { recursive: true });
  });
});
