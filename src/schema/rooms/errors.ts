/** Registry errors as client errors: the same mapping for room mutations and subscriptions. */
import { notFound, unavailable } from '../../errors.ts'
import { RegistryClosedError, UnknownConnectionError } from '../../rooms/registry.ts'
import { toUnavailable } from '../../unavailable.ts'

export function toRoomClientError(error: unknown): unknown {
  if (error instanceof UnknownConnectionError) return notFound(error.message, { connectionId: error.connectionId })
  if (error instanceof RegistryClosedError)
    return unavailable('gateway', 'this gateway is shutting down; retry on another')
  // Not masked as an internal error: the client can retry, and should know it may have applied.
  return toUnavailable(error) ?? error
}
