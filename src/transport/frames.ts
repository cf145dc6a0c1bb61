/**
 * The text of graphql-transport-ws messages the server sends. A `next` frame is built by
 * splicing a payload serialised once (for a whole group) between a per-subscription prefix and a
 * closing brace, so that a fan-out costs one string concatenation per subscription.
 */
import { GraphQLError, type ExecutionResult, type GraphQLFormattedError } from 'graphql'
import { MessageType } from 'graphql-ws'

/** Yoga's error masking: unexpected errors become "Unexpected error." (and are logged). */
export type MaskError = (error: unknown) => GraphQLError

/** `{"id":"…","type":"next","payload":` : the payload JSON and `}` complete it. */
export const nextPrefix = (id: string) => `{"id":${JSON.stringify(id)},"type":"${MessageType.Next}","payload":`

const CLOSING_BRACE = 0x7d

/**
 * A `next` frame as bytes: the subscription's prefix, the group's payload (both encoded once),
 * and a closing brace, copied into one buffer. Sent as bytes, a frame skips the per-socket
 * UTF-8 sizing and encoding a string would cost, and the socket writes buffers only.
 */
export function nextFrame(prefix: Buffer, payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(prefix.length + payload.length + 1)
  prefix.copy(frame, 0)
  payload.copy(frame, prefix.length)
  frame[frame.length - 1] = CLOSING_BRACE
  return frame
}

export const completeFrame = (id: string) => `{"id":${JSON.stringify(id)},"type":"${MessageType.Complete}"}`

export const errorFrame = (id: string, errorsJson: string) =>
  `{"id":${JSON.stringify(id)},"type":"${MessageType.Error}","payload":${errorsJson}}`

/**
 * An error as Yoga serialises it over HTTP: without its internal extensions (`http`, the status
 * and headers of an HTTP response; `unexpected`, the mark of a masked error).
 */
export function withoutInternals(error: GraphQLError | GraphQLFormattedError): GraphQLFormattedError {
  const formatted = error instanceof GraphQLError ? error.toJSON() : error
  if (!formatted.extensions || !('http' in formatted.extensions || 'unexpected' in formatted.extensions))
    return formatted
  const { http: _http, unexpected: _unexpected, ...extensions } = formatted.extensions
  const { extensions: _all, ...rest } = formatted
  return Object.keys(extensions).length ? { ...rest, extensions } : rest
}

/** Errors as the JSON array of an `error` message (or of a result's `errors`), masked. */
export function errorsJson(errors: readonly unknown[], mask: MaskError): string {
  return JSON.stringify(errors.map((error) => withoutInternals(mask(error))))
}

/** A result as the JSON of a `next` payload: `data`, masked `errors` when any, `extensions` when any. */
export function resultJson(result: ExecutionResult, mask: MaskError): string {
  const payload: Record<string, unknown> = { data: result.data }
  if (result.errors?.length) payload.errors = result.errors.map((error) => withoutInternals(mask(error)))
  if (result.extensions) payload.extensions = result.extensions
  return JSON.stringify(payload)
}
