/**
 * The event catalogue (opsflow.event_types): the types an operator documents for its customers — a description,
 * an optional JSON Schema (draft 2020-12 or 07, checked with Ajv, a kept validator, when the type is written), and
 * a deprecation flag. A publish of a catalogued type is validated against its schema (422 naming the first problem)
 * and a deprecated one answers with a warning; types not in the catalogue publish as before. Compiled validators
 * are cached per type and version (its updated_at), so a change takes effect on the next publish in every process.
 */
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { Pool } from '../db.js';
import { isReservedEventType } from './ops-events.js';
import { WebhookError } from './service.js';

/** A schema larger than this (as JSON) is refused: it is compiled and kept in every API process. */
export const MAX_SCHEMA_BYTES = 64 * 1024;

interface EventTypeRow {
  name: string;
  description: string;
  schema: Record<string, unknown> | null;
  deprecated: boolean;
  deprecation_note: string | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

export interface EventTypeView {
  name: string;
  description: string;
  schema: Record<string, unknown> | null;
  deprecated: boolean;
  deprecationNote: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
}

const view = (r: EventTypeRow): EventTypeView => ({
  name: r.name,
  description: r.description,
  schema: r.schema,
  deprecated: r.deprecated,
  deprecationNote: r.deprecation_note,
  createdBy: r.created_by,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

const newAjv = () => {
  // strict: a schema with unknown keywords or ambiguous types is refused when written, not silently half-applied.
  const ajv = new Ajv2020.default({ strict: true, allErrors: false, validateFormats: true });
  addFormats.default(ajv);
  return ajv;
};

/** `/total: must be number` — Ajv's first problem, as a 422 names it. */
const problem = (e: ErrorObject) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`;

/** Refuses a schema that is too large or that Ajv cannot compile; returns it compiled. */
function compile(schema: Record<string, unknown>): ValidateFunction {
  if (Buffer.byteLength(JSON.stringify(schema)) > MAX_SCHEMA_BYTES) {
    throw new WebhookError('unprocessable', `schema larger than ${MAX_SCHEMA_BYTES} bytes`, [
      { path: 'schema', message: 'too large' },
    ]);
  }
  try {
    return newAjv().compile(schema);
  } catch (err) {
    const message = (err as Error).message;
    throw new WebhookError('unprocessable', `schema is not a JSON Schema Ajv accepts: ${message}`, [
      { path: 'schema', message },
    ]);
  }
}

function checkName(name: string) {
  if (isReservedEventType(name)) {
    throw new WebhookError('forbidden', `event type ${name} is reserved: opsflow documents its own events`, [
      { path: 'name', message: 'reserved for opsflow' },
    ]);
  }
}

export interface NewEventType {
  name: string;
  description: string;
  schema?: Record<string, unknown>;
  deprecated?: boolean;
  deprecationNote?: string;
}

export interface EventTypeChange {
  description?: string;
  schema?: Record<string, unknown> | null;
  deprecated?: boolean;
  deprecationNote?: string | null;
}

export function createEventCatalogue(pool: Pool) {
  /** Compiled validators by type, with the version they were compiled from. */
  const validators = new Map<string, { version: number; validate: ValidateFunction }>();

  return {
    async create(input: NewEventType, by: string): Promise<EventTypeView> {
      checkName(input.name);
      if (input.schema) compile(input.schema);
      const { rows } = await pool.query<EventTypeRow>(
        `INSERT INTO opsflow.event_types (name, description, schema, deprecated, deprecation_note, created_by)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING RETURNING *`,
        [
          input.name,
          input.description,
          input.schema ? JSON.stringify(input.schema) : null,
          input.deprecated ?? false,
          input.deprecationNote ?? null,
          by,
        ],
      );
      if (!rows[0])
        throw new WebhookError('conflict', `event type ${input.name} is already in the catalogue: PATCH it`);
      return view(rows[0]);
    },

    async update(name: string, change: EventTypeChange): Promise<EventTypeView> {
      if (change.schema) compile(change.schema);
      const { rows } = await pool.query<EventTypeRow>(
        `UPDATE opsflow.event_types SET
           description = coalesce($2, description),
           schema = CASE WHEN $3 THEN $4::jsonb ELSE schema END,
           deprecated = coalesce($5, deprecated),
           deprecation_note = CASE WHEN $6 THEN $7 ELSE deprecation_note END,
           updated_at = clock_timestamp()
         WHERE name = $1 RETURNING *`,
        [
          name,
          change.description ?? null,
          change.schema !== undefined,
          change.schema ? JSON.stringify(change.schema) : null,
          change.deprecated ?? null,
          change.deprecationNote !== undefined,
          change.deprecationNote ?? null,
        ],
      );
      if (!rows[0]) throw new WebhookError('not_found', `event type ${name} is not in the catalogue`);
      return view(rows[0]);
    },

    async get(name: string): Promise<EventTypeView> {
      const { rows } = await pool.query<EventTypeRow>('SELECT * FROM opsflow.event_types WHERE name = $1', [name]);
      if (!rows[0]) throw new WebhookError('not_found', `event type ${name} is not in the catalogue`);
      return view(rows[0]);
    },

    /** By name; `deprecated: false` leaves the deprecated ones out. */
    async list(f: { deprecated?: boolean }, q: { after?: string; limit: number }) {
      const { rows } = await pool.query<EventTypeRow>(
        `SELECT * FROM opsflow.event_types
         WHERE ($1::boolean IS NULL OR deprecated = $1) AND ($2::text IS NULL OR name > $2)
         ORDER BY name LIMIT $3`,
        [f.deprecated ?? null, q.after ?? null, q.limit + 1],
      );
      const more = rows.length > q.limit;
      const items = rows.slice(0, q.limit).map(view);
      return { items, nextCursor: more ? (items.at(-1)?.name ?? null) : null };
    },

    /**
     * A publish's check: refused (422, the first problem) when the type has a schema the payload does not meet;
     * the warnings to answer with (a deprecated type). No row: nothing to check.
     */
    async check(type: string, payload: unknown): Promise<{ warnings: string[] }> {
      const { rows } = await pool.query<{
        schema: Record<string, unknown> | null;
        deprecated: boolean;
        deprecation_note: string | null;
        version: number;
      }>(
        `SELECT schema, deprecated, deprecation_note, (extract(epoch FROM updated_at) * 1000000)::float8 AS version
         FROM opsflow.event_types WHERE name = $1`,
        [type],
      );
      const t = rows[0];
      if (!t) return { warnings: [] };
      if (t.schema) {
        let cached = validators.get(type);
        if (cached?.version !== t.version) {
          cached = { version: t.version, validate: compile(t.schema) };
          validators.set(type, cached);
        }
        if (!cached.validate(payload)) {
          const first = cached.validate.errors?.[0];
          throw new WebhookError(
            'unprocessable',
            `payload does not match the schema of ${type}: ${first ? problem(first) : 'invalid'}`,
            (cached.validate.errors ?? [])
              .slice(0, 10)
              .map((e) => ({ path: `payload${e.instancePath}`, message: e.message })),
          );
        }
      }
      return {
        warnings: t.deprecated
          ? [`event type ${type} is deprecated${t.deprecation_note ? `: ${t.deprecation_note}` : ''}`]
          : [],
      };
    },
  };
}

export type EventCatalogue = ReturnType<typeof createEventCatalogue>;
