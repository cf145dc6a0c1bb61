/**
 * Failures of the gateway's own layers as client errors: the rooms registry's (room mutations
 * and subscriptions) and the bus history's (`after:` cursors). Infrastructure failures under
 * them (Redis, the database, another instance) are UNAVAILABLE, by `toUnavailable`.
 */
import { BusClosedError, HistoryUnavailableError, ResyncRequiredError } from '../bus/bus.ts'
import { RegistryClosedError, UnknownConnectionError } from '../rooms/registry.ts'
import { gatewayShuttingDown, notFound, resyncRequired, unavailable } from './client.ts'
import { toUnavailable } from './infrastructure.ts'

/** The client error for a failed room operation; unexpected errors unchanged, for Yoga to mask. */
export function roomClientError(error: unknown): unknown {
  if (error instanceof UnknownConnectionError) return notFound(error.message, { connectionId: error.connectionId })
  // Closed on shutdown: nobody, here or elsewhere, was reached.
  if (error instanceof RegistryClosedError || error instanceof BusClosedError) return gatewayShuttingDown()
  // Not masked as an internal error: the client can retry, and should know it may have applied.
  return toUnavailable(error) ?? error
}

/** The client error for a history that cannot be resumed from (RESYNC_REQUIRED) or read now (UNAVAILABLE). */
export function historyClientError(error: unknown): unknown {
  if (error instanceof ResyncRequiredError) return resyncRequired(error.message, { reason: error.reason })
  if (error instanceof HistoryUnavailableError) return unavailable('redis', error.message)
  return error
}
