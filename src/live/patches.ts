/**
 * Live query patches (docs/live-queries.md, Patches): the `@n1ru4l/graphql-live-query-patch`
 * protocol for a client that asks for it with `extensions: { livePatch: "json-patch" }`. Its first
 * result is complete, `{ data, revision: 1 }`; each next one is `{ patch, revision: n + 1 }`, a
 * JSON patch (RFC 6902) from the result before, which `applyLiveQueryJSONPatch` (the package's
 * client side) applies. The patch is made once per group and result; only the revision is the
 * member's own. Should a member not hold the result a patch is made from, it receives the complete
 * result again as revision 1 (which the client side accepts at any time), never a revision gap.
 */
import type { ExecutionLivePatchResult } from '@n1ru4l/graphql-live-query-patch'
import type { LiveResult } from './result.ts'

/** One member's side of the protocol: the revision it is at and the result it holds. */
export class PatchingMember {
  #revision = 0
  #holds: LiveResult | undefined

  /** The message for `result`, as JSON (WebSocket). */
  json(result: LiveResult): string {
    return this.#advance(result) ? result.patchJson(this.#revision) : result.completeJson
  }

  /** The message for `result`, as an object that Yoga serialises and masks (SSE, multipart). */
  object(result: LiveResult): ExecutionLivePatchResult {
    const { data, errors, extensions } = result.result
    const message: ExecutionLivePatchResult = this.#advance(result)
      ? { patch: result.patch, revision: this.#revision }
      : { data, revision: 1 }
    if (errors) message.errors = errors
    if (extensions) message.extensions = extensions
    return message
  }

  /** Moves to `result`; true when it is sent as a patch, false when complete (revision 1). */
  #advance(result: LiveResult): boolean {
    const patchable = this.#holds !== undefined && result.previous === this.#holds
    this.#holds = result
    this.#revision = patchable ? this.#revision + 1 : 1
    return patchable
  }
}
