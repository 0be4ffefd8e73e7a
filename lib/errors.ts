/**
 * What a family's service refuses, and why, without knowing HTTP: each family's error extends this, and the
 * API renders any of them as its error envelope with the status of the kind (api/app.ts).
 */
export const SERVICE_ERROR_KINDS = [
  'not_found',
  'conflict',
  'unprocessable',
  'forbidden',
  'payload_too_large',
] as const;
export type ServiceErrorKind = (typeof SERVICE_ERROR_KINDS)[number];

export class ServiceError extends Error {
  constructor(
    readonly code: ServiceErrorKind,
    message: string,
    /** What a client may act on (the envelope's `details`): the running deploy's id, the field at fault. */
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
