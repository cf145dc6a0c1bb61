/**
 * The async iterator a subscription is read through when something iterates it (Yoga over SSE,
 * graphql-js): a queue its hub subscription pushes values into. Its `return()` (the client went
 * away) tells the subscription at once.
 */

export class SubscriptionStream<T> implements AsyncIterableIterator<T> {
  readonly #queue: T[] = []
  #waiting: ((result: IteratorResult<T>) => void) | undefined
  #done = false
  readonly #onReturn: () => void

  constructor(onReturn: () => void) {
    this.#onReturn = onReturn
  }

  get done(): boolean {
    return this.#done
  }

  /** How many values wait to be read. */
  get buffered(): number {
    return this.#queue.length
  }

  /** Queues a value for the reader; ignored once the stream has ended. */
  push(value: T): void {
    if (this.#done) return
    const waiting = this.#waiting
    if (waiting) {
      this.#waiting = undefined
      waiting({ value, done: false })
    } else {
      this.#queue.push(value)
    }
  }

  /** Ends the stream after the values already queued: the subscription completes. */
  end(): void {
    if (this.#done) return
    this.#done = true
    if (this.#waiting && this.#queue.length === 0) {
      const waiting = this.#waiting
      this.#waiting = undefined
      waiting({ value: undefined, done: true })
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#queue.length > 0) return Promise.resolve({ value: this.#queue.shift()!, done: false })
    if (this.#done) return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve) => (this.#waiting = resolve))
  }

  /** The reader stops: what is queued is dropped, and the subscription is told. */
  return(): Promise<IteratorResult<T>> {
    this.#queue.length = 0
    const wasDone = this.#done
    this.end()
    if (!wasDone) this.#onReturn()
    return Promise.resolve({ value: undefined, done: true })
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.return()
    return Promise.reject(error)
  }

  [Symbol.asyncIterator](): this {
    return this
  }
}
