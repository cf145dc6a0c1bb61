/**
 * One result of a live query's group, made once per execution and shared by every member: the
 * JSON its WebSocket members' `next` frames splice in (errors masked, as over HTTP), and the
 * execution result itself for the members Yoga serialises (SSE, multipart), which masks it there.
 */
import type { ExecutionResult } from 'graphql'
import { Rendering } from '../delivery/rendering.ts'
import { resultJson, type MaskError } from '../transport/frames.ts'

export class LiveResult {
  readonly json: string
  #rendering: Rendering | undefined

  constructor(
    readonly result: ExecutionResult,
    mask: MaskError,
  ) {
    this.json = resultJson(result, mask)
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
