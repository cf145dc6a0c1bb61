/**
 * One result of a live query's group, made once per execution and shared by every member: the
 * JSON its WebSocket members' `next` frames splice in (errors masked, as over HTTP), and the
 * execution result itself for the members Yoga serialises (SSE, multipart), which masks it there.
 */
import { generateJSONPatch } from '@n1ru4l/graphql-live-query-patch-json-patch'
import type { ExecutionResult } from 'graphql'
import { Rendering } from '../delivery/rendering.ts'
import { resultJson, withoutInternals, type MaskError } from '../transport/frames.ts'

export class LiveResult {
  readonly json: string
  #rendering: Rendering | undefined
  /**
   * The result the group sent before this one, while this is the group's latest: what its
   * patch is made from (cleared once a newer result comes, so results do not chain up).
   */
  previous: LiveResult | undefined
  #patch: unknown[] | undefined
  #patchJsonHead: string | undefined

  constructor(
    readonly result: ExecutionResult,
    private readonly mask: MaskError,
  ) {
    this.json = resultJson(result, mask)
  }

  /** The JSON patch (RFC 6902) from `previous`'s data to this one's, made once for the group. */
  get patch(): unknown[] {
    if (!this.#patch) {
      const patch = generateJSONPatch(this.previous?.result.data ?? {}, this.result.data ?? {})
      this.#patch = Array.isArray(patch) ? patch : []
    }
    return this.#patch
  }

  /** This result as a patch from `previous` at `revision`, as JSON (the patch and errors serialised once). */
  patchJson(revision: number): string {
    if (this.#patchJsonHead === undefined) {
      const { errors, extensions } = this.result
      let head = `{"patch":${JSON.stringify(this.patch)}`
      if (errors?.length)
        head += `,"errors":${JSON.stringify(errors.map((error) => withoutInternals(this.mask(error))))}`
      if (extensions) head += `,"extensions":${JSON.stringify(extensions)}`
      this.#patchJsonHead = `${head},"revision":`
    }
    return `${this.#patchJsonHead}${revision}}`
  }

  /** This result whole, as revision 1 of the patch protocol, as JSON. */
  get completeJson(): string {
    return `${this.json.slice(0, -1)},"revision":1}`
  }

  /** The rendering every WebSocket member's frame takes its bytes from (encoded once). */
  get rendering(): Rendering {
    return (this.#rendering ??= Rendering.of(this.json))
  }

  /**
   * The query was refused as a whole: every root field failed (FORBIDDEN, BAD_USER_INPUT), as
   * opposed to a result with some errors inside (a relation the viewer may not read). Such a
   * result is answered once and the operation completes, exactly as without `@live`.
   */
  get refused(): boolean {
    const { data, errors } = this.result
    if (!errors?.length) return false
    if (data == null) return true
    const failedRoots = new Set(errors.filter((error) => error.path?.length === 1).map((error) => error.path![0]))
    return Object.keys(data).every((key) => failedRoots.has(key))
  }
}
