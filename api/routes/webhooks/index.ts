/** The webhook family's API: endpoints, events (fan-out), deliveries, dead letters and recovers, a file each. */
import type { SecretBox } from '../../../lib/secret-box.js';
import type { ApiDeps } from '../../deps.js';
import { newRouter } from '../../router.js';
import { deadLetterRoutes } from './dead-letters.js';
import { deliveryRoutes } from './deliveries.js';
import { endpointRoutes } from './endpoints.js';
import { createEndpointService } from '../../../lib/webhooks/endpoints.js';
import { webhookServiceDeps } from '../../../lib/webhooks/service.js';
import { eventRoutes } from './events.js';
import { recoverRoutes } from './recovers.js';
import { eventTypeRoutes } from './event-types.js';
import { createEventCatalogue } from '../../../lib/webhooks/event-catalogue.js';

export function webhookRoutes(deps: ApiDeps & { secrets: SecretBox }) {
  const catalogue = createEventCatalogue(deps.pool);
  return newRouter()
    .route(
      '/',
      endpointRoutes(
        createEndpointService({
          ...deps,
          events: webhookServiceDeps(deps.config, deps.pool, deps.temporal, deps.queues),
        }),
      ),
    )
    .route('/', eventRoutes(deps, catalogue))
    .route('/', eventTypeRoutes(catalogue))
    .route('/', deliveryRoutes(deps))
    .route('/', deadLetterRoutes(deps))
    .route('/', recoverRoutes(deps));
}
