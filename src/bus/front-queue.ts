/**
 * A first-in first-out queue on an array and a head index: taking from the front moves the head
 * instead of shifting every element, and the array is copied only once its consumed front is
 * worth it (all of it, or past 1,024 entries and half the array). The outbox, the messages Redis
 * took lately and a topic's own messages waiting for the log are such queues.
 */
export class FrontQueue<T> implements Iterable<T> {
  #items: T[] = []
  #head = 0

  get length(): number {
    return this.#items.length - this.#head
  }

  push(item: T): void {
    this.#items.push(item)
  }

  /** Puts `items` in front, in their order. */
  unshift(items: readonly T[]): void {
    if (items.length) {
      this.#items = [...items, ...this.#items.slice(this.#head)]
      this.#head = 0
    }
  }

  /** Removes and returns the `count` oldest items (fewer if there are not as many). */
  shift(count: number): T[] {
    const removed = this.#items.slice(this.#head, this.#head + count)
    this.#head += removed.length
    this.#compact()
    return removed
  }

  /** Removes the oldest items as long as `test` holds for them; returns how many. */
  shiftWhile(test: (item: T) => boolean): number {
    const from = this.#head
    while (this.#head < this.#items.length && test(this.#items[this.#head]!)) this.#head++
    const removed = this.#head - from
    this.#compact()
    return removed
  }

  /** The items, oldest first (a copy). */
  toArray(): T[] {
    return this.#items.slice(this.#head)
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i]!
  }

  #compact(): void {
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
  }
}
