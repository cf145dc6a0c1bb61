/**
 * The bus history's failures (`after:` cursors) as client errors. Its own file, in the bus layer
 * (docs/architecture.md §2): the delivery layer maps them, and must not import the rooms layer.
 */
import { HistoryUnavailableError, ResyncRequiredError } from '../bus/bus.ts'
import { resyncRequired, unavailable } from './client.ts'

/** The client error for a history that cannot be resumed from (RESYNC_REQUIRED) or read now (UNAVAILABLE). */
export function historyClientError(error: unknown): unknown {
  if (error instanceof ResyncRequiredError) return resyncRequired(error.message, { reason: error.reason })
  if (error instanceof HistoryUnavailableError) return unavailable('redis', error.message)
  return error
}
