/**
 * One viewer for the open WebSocket connections of a user that presented the same claims (the
 * same token, in several tabs or clients): a connection keeps its viewer for its life, and a JWT
 * viewer with its claims is some 150 bytes (docs/performance.md, What an idle connection holds).
 *
 * Only `UserViewer`s are shared: frozen with their claims, so that no policy or resolver of one
 * connection can change what another's sees; and only when every claim is the same, so that a
 * connection's viewer is equal in every field to the one it authenticated with. Viewers of one
 * user with other claims (another token) are kept as they are.
 */
import { UserViewer, type Viewer } from './viewer.ts'

/** A shared viewer and how many open connections hold it. */
class Share {
  count = 1
  constructor(readonly viewer: UserViewer) {}
}

/** Whether two JSON values (verified claims) are the same. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const keys = Object.keys(a)
  if (keys.length !== Object.keys(b).length) return false
  return keys.every(
    (key) =>
      Object.hasOwn(b, key) && sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]),
  )
}

export class SharedViewers {
  /** User id → the viewer its connections share (keyed by the viewer's own id string). */
  readonly #byUser = new Map<string, Share>()

  /** Users with a shared viewer (for tests). */
  get size(): number {
    return this.#byUser.size
  }

  /**
   * The viewer a connection that authenticated as `viewer` keeps: an equal one already held by
   * another open connection, else `viewer` itself. Each acquired viewer is released once, when its
   * connection closes.
   */
  acquire(viewer: Viewer): Viewer {
    if (!(viewer instanceof UserViewer)) return viewer
    const share = this.#byUser.get(viewer.id)
    if (share === undefined) {
      this.#byUser.set(viewer.id, new Share(viewer))
      return viewer
    }
    if (share.viewer !== viewer && !sameJson(share.viewer.claims, viewer.claims)) return viewer
    share.count++
    return share.viewer
  }

  /** A connection that acquired `viewer` closed. */
  release(viewer: Viewer): void {
    if (!(viewer instanceof UserViewer)) return
    const share = this.#byUser.get(viewer.id)
    if (share?.viewer === viewer && --share.count === 0) this.#byUser.delete(viewer.id)
  }
}
