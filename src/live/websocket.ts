/**
 * A live query over mizzen's graphql-transport-ws server: the operation is a member of its
 * group, and each new result of the group goes into the operation's `next` frames as one shared
 * rendering (serialised once per group, spliced into each frame, as subscription events are).
 * It counts as a subscription for the connection's limit (connection.ts).
 */
import type { OperationSink } from '../transport/execution.ts'
import type { MaskError } from '../transport/frames.ts'
import type { LiveOperation, LiveQueries } from './live-queries.ts'

export function runLiveOverWebSocket(
  live: LiveQueries,
  operation: LiveOperation,
  mask: MaskError,
  sink: OperationSink,
): void {
  if (sink.cancelled) return
  const leave = live.join(operation, mask, {
    deliver: (result) => sink.next(result.rendering),
    complete: () => sink.complete(),
    fail: (errorsJson) => sink.error(errorsJson),
  })
  sink.stopWith({ cancel: async () => leave() })
}
