/**
 * The rooms registry's failures (room mutations and subscriptions) as client errors; in the rooms
 * layer (docs/architecture.md §2). Infrastructure failures under it (Redis, another instance) are
 * UNAVAILABLE, by `toUnavailable`.
 */
import { BusClosedError } from '../bus/bus.ts'
import { RegistryClosedError, UnknownConnectionError } from '../rooms/registry.ts'
import { gatewayShuttingDown, notFound } from './client.ts'
import { toUnavailable } from './infrastructure.ts'

/** The client error for a failed room operation; unexpected errors unchanged, for Yoga to mask. */
export function roomClientError(error: unknown): unknown {
  if (error instanceof UnknownConnectionError) return notFound(error.message, { connectionId: error.connectionId })
  // Closed on shutdown: nobody, here or elsewhere, was reached.
  if (error instanceof RegistryClosedError || error instanceof BusClosedError) return gatewayShuttingDown()
  // Not masked as an internal error: the client can retry, and should know it may have applied.
  return toUnavailable(error) ?? error
}
