/**
 * A live query over mizzen's graphql-transport-ws server: the operation is a member of its
 * group, and each new result of the group goes into the operation's `next` frames as one shared
 * rendering (serialised once per group, spliced into each frame, as subscription events are).
 * It counts as a subscription for the connection's limit (connection.ts). A member that asked for
 * patches gets its own frames (its revision), the patch itself still made once per group.
 */
import { Rendering } from '../delivery/rendering.ts'
import { badInput } from '../errors.ts'
import type { OperationSink } from '../transport/execution.ts'
import { errorsJson, type MaskError } from '../transport/frames.ts'
import type { LiveOperation, LiveQueries } from './live-queries.ts'
import { PatchingMember } from './patches.ts'

export function runLiveOverWebSocket(
  live: LiveQueries,
  operation: LiveOperation,
  mask: MaskError,
  sink: OperationSink,
): void {
  if (sink.cancelled) return
  if (operation.request.invalid) return sink.error(errorsJson([badInput(operation.request.invalid)], mask))
  // Patches: one revision counter per member; complete results: the group's shared rendering.
  const patching = operation.request.patches ? new PatchingMember() : undefined
  const leave = live.join(operation, mask, {
    deliver: (result) => sink.next(patching ? Rendering.of(patching.json(result)) : result.rendering),
    complete: () => sink.complete(),
    fail: (errorsJson) => sink.error(errorsJson),
  })
  sink.stopWith({ cancel: async () => leave() })
}
