/**
 * Temporal connection settings from config: a local dev server, a self-hosted cluster (optionally mTLS),
 * or Temporal Cloud (mTLS or API key). The variable names follow Temporal's own env-config convention.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from './config.js';

export const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';

export interface TemporalSettings {
  address: string;
  namespace: string;
  tls: TLSConfig | undefined;
  apiKey: string | undefined;
}

export function temporalSettings(config: Config, addressOverride?: string): TemporalSettings {
  const t = config.temporal;
  const address = addressOverride ?? t.address ?? DEFAULT_TEMPORAL_ADDRESS;
  // An API key or a client certificate implies TLS unless TEMPORAL_TLS=false says otherwise.
  const wantTls = t.tls ?? (t.apiKey !== undefined || t.clientCertPath !== undefined);
  let tls: TLSConfig | undefined;
  if (wantTls) {
    tls = {};
    if (t.serverName) tls.serverNameOverride = t.serverName;
    if (t.serverCaCertPath) tls.serverRootCACertificate = readFileSync(t.serverCaCertPath);
    if (t.clientCertPath && t.clientKeyPath) {
      tls.clientCertPair = { crt: readFileSync(t.clientCertPath), key: readFileSync(t.clientKeyPath) };
    }
  }
  return { address, namespace: t.namespace, tls, apiKey: t.apiKey };
}

export async function connectClient(s: TemporalSettings): Promise<Client> {
  const connection = await Connection.connect({ address: s.address, tls: s.tls, apiKey: s.apiKey });
  return new Client({ connection, namespace: s.namespace });
}

export async function connectWorker(s: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect({ address: s.address, tls: s.tls, apiKey: s.apiKey });
}
