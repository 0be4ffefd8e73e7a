/**
 * `docker compose --profile monitoring`: Prometheus scrapes the API (with the METRICS_TOKEN secret) and every
 * worker replica, with opsflow's alert rules loaded; Grafana has the opsflow dashboard and the Prometheus
 * datasource provisioned, and every panel's query runs through that datasource.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { waitFor } from '../helpers/wait.js';
import { GRAFANA, PROMETHEUS, containers, env } from './stack.js';

interface Target {
  labels: { job: string; instance: string };
  health: string;
  lastError: string;
}

describe('the monitoring profile', () => {
  it("Prometheus has opsflow's targets up: the API and each worker replica", async () => {
    const workers = (await containers('worker')).length;
    expect(workers).toBe(2);
    const targets = await waitFor(
      async () =>
        ((await (await fetch(`${PROMETHEUS}/api/v1/targets`)).json()) as { data: { activeTargets: Target[] } }).data
          .activeTargets,
      (t) => t.filter((x) => x.health === 'up').length === 1 + workers,
      90_000,
      1000,
    );
    expect(targets.filter((t) => t.labels.job === 'opsflow-api').map((t) => t.health)).toEqual(['up']);
    expect(targets.filter((t) => t.labels.job === 'opsflow-worker').map((t) => t.health)).toEqual(['up', 'up']);
    // The API's series arrive with the token (a refused scrape would have no samples).
    const q = await fetch(`${PROMETHEUS}/api/v1/query?query=${encodeURIComponent('up{job="opsflow-api"}')}`);
    expect(((await q.json()) as { data: { result: { value: [number, string] }[] } }).data.result[0]!.value[1]).toBe(
      '1',
    );
  });

  it("Prometheus has opsflow's alert rules loaded", async () => {
    const declared = (
      parse(await readFile('monitoring/alerts.yml', 'utf8')) as { groups: { rules: { alert?: string }[] }[] }
    ).groups.flatMap((g) => g.rules.map((r) => r.alert).filter(Boolean));
    expect(declared.length).toBeGreaterThan(5);
    const rules = (await (await fetch(`${PROMETHEUS}/api/v1/rules?type=alert`)).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    expect(loaded.map((r) => r.name).sort()).toEqual([...declared].sort());
    await waitFor(
      async () =>
        (
          (await (await fetch(`${PROMETHEUS}/api/v1/rules?type=alert`)).json()) as {
            data: { groups: { rules: { health: string }[] }[] };
          }
        ).data.groups.flatMap((g) => g.rules),
      (r) => r.every((x) => x.health === 'ok'),
      60_000,
      1000,
    );
  });

  it('Grafana has the opsflow dashboard and the Prometheus datasource provisioned; every panel query runs', async () => {
    expect((await fetch(`${GRAFANA}/api/health`)).status).toBe(200);
    expect((await fetch(`${GRAFANA}/api/search`)).status).toBe(401);
    const auth = { authorization: `Basic ${Buffer.from(`admin:${env.GRAFANA_ADMIN_PASSWORD}`).toString('base64')}` };
    const wrong = { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` };
    expect((await fetch(`${GRAFANA}/api/search`, { headers: wrong })).status).toBe(401);
    const file = JSON.parse(await readFile('monitoring/grafana/dashboards/opsflow.json', 'utf8')) as {
      uid: string;
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const found = (await (await fetch(`${GRAFANA}/api/search`, { headers: auth })).json()) as {
      uid: string;
      folderTitle: string;
    }[];
    expect(found).toEqual([expect.objectContaining({ uid: file.uid, folderTitle: 'opsflow' })]);
    const ds = (await (await fetch(`${GRAFANA}/api/datasources`, { headers: auth })).json()) as {
      uid: string;
      url: string;
    }[];
    expect(ds).toEqual([expect.objectContaining({ uid: 'opsflow-prometheus', url: 'http://prometheus:9090' })]);
    const exprs = file.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThan(5);
    for (const { panel, expr } of exprs) {
      const res = await fetch(
        `${GRAFANA}/api/datasources/proxy/uid/opsflow-prometheus/api/v1/query?query=${encodeURIComponent(expr)}`,
        { headers: auth },
      );
      const body = (await res.json()) as { status: string; error?: string };
      expect(body, `${panel}: ${expr}`).toMatchObject({ status: 'success' });
    }
  });
});
