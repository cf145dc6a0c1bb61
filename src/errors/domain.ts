/**
 * Failures of the gateway's own layers as client errors, by kind (`failures.ts`): the rooms
 * registry's and the bus's (room mutations and subscriptions), and the history's (`after:`
 * cursors). Infrastructure failures under them (Redis, the database, another instance) are
 * UNAVAILABLE, by `toUnavailable`.
 */
import { gatewayShuttingDown, notFound, resyncRequired, unavailable } from './client.ts'
import { ClosedError, ResyncError, UnknownTargetError } from './failures.ts'
import { toUnavailable } from './infrastructure.ts'
import { ServiceUnavailableError } from './service.ts'

/** The client error for a failed room operation; unexpected errors unchanged, for Yoga to mask. */
export function roomClientError(error: unknown): unknown {
  // A connection that does not exist (UnknownConnectionError).
  if (error instanceof UnknownTargetError) return notFound(error.message, error.details)
  // The registry or the bus closed on shutdown: nobody, here or elsewhere, was reached.
  if (error instanceof ClosedError) return gatewayShuttingDown()
  // Not masked as an internal error: the client can retry, and should know it may have applied.
  return toUnavailable(error) ?? error
}

/** The client error for a history that cannot be resumed from (RESYNC_REQUIRED) or read now (UNAVAILABLE). */
export function historyClientError(error: unknown): unknown {
  if (error instanceof ResyncError) return resyncRequired(error.message, { reason: error.reason })
  // HistoryUnavailableError: its message, written for the client, as it is.
  if (error instanceof ServiceUnavailableError) return unavailable(error.service, error.message)
  return error
}
