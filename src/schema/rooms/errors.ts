/** Registry errors as client errors: the same mapping for room mutations and subscriptions. */
import { ErrorCode, MizzenError, notFound } from '../../errors.ts'
import { RoomCommandTimeoutError } from '../../rooms/redis-commands.ts'
import { UnknownConnectionError } from '../../rooms/registry.ts'

export function toRoomClientError(error: unknown): unknown {
  if (error instanceof UnknownConnectionError) return notFound(error.message, { connectionId: error.connectionId })
  // Not masked as an internal error: the client can retry, and should know it may have applied.
  if (error instanceof RoomCommandTimeoutError) return new MizzenError(ErrorCode.Unavailable, error.message)
  return error
}
