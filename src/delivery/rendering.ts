/**
 * The result of executing one group's selection set on one root value, serialised once: the
 * JSON of a `next` payload, which the transport splices into the frame of every subscription of
 * the group. Ready at once when every resolver is synchronous; later when some are not (a
 * relation read from the database), in which case the subscriptions' connections wait for it
 * in their queues, so that each connection still sends in delivery order.
 */

/** Told once a rendering it waited for is ready (a connection flushing its queue). */
export interface RenderingWaiter {
  rendered(): void
}

export class Rendering {
  /** `{"data":…}` (with `errors` when resolvers failed), once ready. */
  json: string | undefined
  /**
   * The JSON array of errors for an `error` message, when executing failed as a whole (not a
   * resolver error, which is part of `json`): the subscriptions that receive it end.
   */
  failure: string | undefined
  #waiters: RenderingWaiter[] | undefined
  #bytes: Buffer | undefined

  private constructor(json?: string) {
    this.json = json
  }

  /** `json` as UTF-8, encoded once for every frame it goes into (only once it is ready). */
  get bytes(): Buffer {
    return (this.#bytes ??= Buffer.from(this.json!))
  }

  /** A rendering that is ready now. */
  static of(json: string): Rendering {
    return new Rendering(json)
  }

  /** A rendering that a promise fills in; `onError` turns a rejection into the errors JSON. */
  static later(result: Promise<string>, onError: (error: unknown) => string): Rendering {
    const rendering = new Rendering()
    result.then(
      (json) => rendering.#settle(json, undefined),
      (error: unknown) => rendering.#settle(undefined, onError(error)),
    )
    return rendering
  }

  /** A rendering that failed at once. */
  static failed(errorsJson: string): Rendering {
    const rendering = new Rendering()
    rendering.failure = errorsJson
    return rendering
  }

  get ready(): boolean {
    return this.json !== undefined || this.failure !== undefined
  }

  /** Calls `waiter.rendered()` once this is ready (never when it already is: check `ready`). */
  wait(waiter: RenderingWaiter): void {
    ;(this.#waiters ??= []).push(waiter)
  }

  #settle(json: string | undefined, failure: string | undefined): void {
    this.json = json
    this.failure = failure
    const waiters = this.#waiters
    this.#waiters = undefined
    if (waiters) for (const waiter of waiters) waiter.rendered()
  }
}

/**
 * Where one subscription's results go: the transport's end of the fast path, one per
 * subscription. Calls come in delivery order; the sink sends in that order.
 */
export interface SubscriptionSink {
  /** Sends `rendering` as the subscription's next result (waiting for it if it is not ready). */
  next(rendering: Rendering): void
  /** The server ended the subscription: `complete`, after what was queued before. */
  complete(): void
}
