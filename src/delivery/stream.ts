/**
 * The async iterator one subscription reads from: a queue the delivery hub pushes into. It is
 * what graphql-js iterates for a subscription; its `return()` (the client completed, or the
 * socket closed) detaches it from the hub at once.
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
    this.#onReturn()
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

  return(): Promise<IteratorResult<T>> {
    this.#queue.length = 0
    this.end()
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
