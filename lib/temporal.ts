/**
 * Temporal connection settings: a local dev server, a self-hosted cluster (optionally mTLS), or Temporal
 * Cloud (mTLS or API key), resolved by Temporal's own env-config (@temporalio/envconfig) — the same
 * TEMPORAL_* variables and TOML profiles (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE) the `temporal` CLI reads,
 * so one profile serves the CLI and opsflow. An API key or a client certificate turns TLS on unless
 * TEMPORAL_TLS=false.
 */
import { Client, Connection } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/client';
import { toClientOptions } from '@temporalio/envconfig';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from './config.js';

export const DEFAULT_TEMPORAL_ADDRESS = 'localhost:7233';

export interface TemporalSettings {
  address: string;
  namespace: string;
  tls: TLSConfig | boolean | undefined;
  apiKey: string | undefined;
  metadata: Record<string, string> | undefined;
}

export function temporalSettings(config: Config, addressOverride?: string): TemporalSettings {
  const t = config.temporal;
  const { connectionOptions: o } = toClientOptions({
    ...t.profile,
    address: addressOverride ?? t.address ?? DEFAULT_TEMPORAL_ADDRESS,
  });
  // env-config reads certificates as Uint8Array; the SDK's native connection wants Buffers.
  const buf = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b));
  const tls =
    typeof o.tls === 'object' && o.tls !== null
      ? {
          serverNameOverride: o.tls.serverNameOverride,
          serverRootCACertificate: buf(o.tls.serverRootCACertificate),
          clientCertPair: o.tls.clientCertPair && {
            crt: buf(o.tls.clientCertPair.crt)!,
            key: buf(o.tls.clientCertPair.key)!,
          },
        }
      : (o.tls ?? undefined);
  return {
    address: o.address!,
    namespace: t.namespace,
    tls,
    apiKey: typeof o.apiKey === 'string' ? o.apiKey : undefined,
    metadata: t.profile.grpcMeta,
  };
}

export async function connectClient(s: TemporalSettings): Promise<Client> {
  const connection = await Connection.connect({
    address: s.address,
    tls: s.tls,
    apiKey: s.apiKey,
    metadata: s.metadata,
  });
  return new Client({ connection, namespace: s.namespace });
}

export async function connectWorker(s: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect({ address: s.address, tls: s.tls, apiKey: s.apiKey, metadata: s.metadata });
}
