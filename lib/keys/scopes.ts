/**
 * What an API key may do. Every route names one scope; a key holds a set of scopes, given by name or by
 * preset when the key is made. Presets are expanded when a key is made, so a key's power never changes
 * after it was shown to its holder.
 */
export const SCOPES = [
  'read',
  'events:publish',
  'endpoints:write',
  'deliveries:redrive',
  'subscriptions:write',
  'schedules:write',
  'backups:run',
  'backups:restore',
  'deploys:run',
  'deploys:approve',
  'keys:admin',
  'audit:read',
] as const;
export type Scope = (typeof SCOPES)[number];

export const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
  read: 'read every list and detail (endpoints, deliveries, subscriptions, backups, deploys, schedules, keys excluded)',
  'events:publish': 'publish events (POST /v1/events)',
  'endpoints:write': 'create, change, delete webhook endpoints and rotate their secrets; write the event catalogue',
  'deliveries:redrive': 'retry deliveries, redrive and discard dead letters, recover an endpoint since a time',
  'subscriptions:write': 'create, renew and cancel subscriptions',
  'schedules:write': 'pause, unpause, trigger and backfill schedules; system checks of any URL',
  'backups:run': 'start backups',
  'backups:restore': 'restore a backup into a database (can overwrite it)',
  'deploys:run': 'start deploys, dry runs and rollbacks to a version that once succeeded; cancel deploys',
  'deploys:approve': 'approve or reject deploys waiting for approval',
  'keys:admin': 'create, list and revoke API keys (never with more scopes than its own)',
  'audit:read': 'read the audit log: who did what through the API and the console (GET /v1/audit)',
};

export const PRESETS = {
  publisher: ['events:publish'],
  operator: ['read', 'endpoints:write', 'deliveries:redrive', 'subscriptions:write', 'schedules:write', 'backups:run'],
  deployer: ['read', 'deploys:run'],
  approver: ['read', 'deploys:approve'],
  admin: [...SCOPES],
} as const satisfies Record<string, readonly Scope[]>;
export type Preset = keyof typeof PRESETS;

export const isScope = (s: string): s is Scope => (SCOPES as readonly string[]).includes(s);
export const isPreset = (s: string): s is Preset => Object.hasOwn(PRESETS, s);

/** Scope and preset names → the sorted, distinct scopes; unknown names are returned apart. */
export function expandScopes(names: readonly string[]): { scopes: Scope[]; unknown: string[] } {
  const scopes = new Set<Scope>();
  const unknown: string[] = [];
  for (const n of names) {
    if (isScope(n)) scopes.add(n);
    else if (isPreset(n)) for (const s of PRESETS[n]) scopes.add(s);
    else unknown.push(n);
  }
  return { scopes: SCOPES.filter((s) => scopes.has(s)), unknown };
}

/** Who acted: an API key, recorded by its name and id (never by what a caller typed). */
export interface Actor {
  keyId: string;
  keyName: string;
}

/** How records show an actor in one string: `ops-bot (key_3f…)`. */
export const actorLabel = (a: Actor) => `${a.keyName} (${a.keyId})`;
