/**
 * The kinds of failure mizzen's own layers throw, each with one client form. The layers (the
 * bus, the rooms registry) throw subclasses of their own, named for what failed; the error
 * module maps the kinds to client errors without importing those layers, which sit above it
 * (docs/architecture.md §2, §10).
 */

/** A part of this gateway was closed (it is shutting down): what was asked reached nobody. Client: UNAVAILABLE, retry on another. */
export class ClosedError extends Error {
  override readonly name: string = 'ClosedError'
}

/** What the client named does not exist. Client: NOT_FOUND, with `details` as extensions (`{ connectionId }`). */
export class UnknownTargetError extends Error {
  override readonly name: string = 'UnknownTargetError'
  constructor(
    message: string,
    readonly details: Readonly<Record<string, unknown>>,
  ) {
    super(message)
  }
}

/** A subscription cannot resume from its cursor, for `reason`. Client: RESYNC_REQUIRED, saying what to do. */
export class ResyncError extends Error {
  override readonly name: string = 'ResyncError'
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message)
  }
}
