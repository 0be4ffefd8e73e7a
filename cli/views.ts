/**
 * The shapes of the API answers the CLI reads whose OpenAPI schema is still open (`any`): deliveries. Only the fields the CLI prints; the API sends more.
 */
export interface DeliveryView {
  id: string;
  status: string;
  eventType: string;
  endpointId: string;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
}
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
