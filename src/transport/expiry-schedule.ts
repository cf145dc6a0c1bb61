/**
 * When each connection's credentials expire, kept for all of them with one timer. A JWT
 * connection used to hold a Node `Timeout` of its own (some 150 bytes with its share of the
 * timer list) for its whole life; here it costs one map entry, and the times due are kept in a
 * binary heap of numbers (docs/performance.md, What an idle connection holds).
 *
 * Entries are keyed by the exact expiry time in ms, so nothing closes before or after its time
 * by more than Node's timer resolution. A removed entry leaves its time in the heap; it is skipped
 * when it comes up, and the heap is rebuilt from the live times once stale ones outnumber them.
 */

/** What the schedule expires: told once, when its time has come. */
export interface Expiring {
  expire(): void
}

/** setTimeout takes at most 2^31-1 ms: a later time is reached in several waits. */
const MAX_WAIT_MS = 2 ** 31 - 1

export class ExpirySchedule<T extends Expiring> {
  /** Expiry time (ms since the epoch) → what expires then: one, or several. */
  readonly #due = new Map<number, T | Set<T>>()
  /** The times of `#due`, and stale ones, as a min-heap. */
  readonly #times: number[] = []
  #timer: NodeJS.Timeout | undefined
  /** The time the timer is set for. */
  #timerAt = Number.POSITIVE_INFINITY

  /** How many entries are scheduled. */
  get size(): number {
    let size = 0
    for (const due of this.#due.values()) size += due instanceof Set ? due.size : 1
    return size
  }

  /** Expires `item` once `time` (ms since the epoch) has come; at once (synchronously) if it has. */
  add(item: T, time: number): void {
    if (time <= Date.now()) {
      item.expire()
      return
    }
    const due = this.#due.get(time)
    if (due === undefined) {
      this.#due.set(time, item)
      this.#push(time)
    } else if (due instanceof Set) due.add(item)
    else if (due !== item) this.#due.set(time, new Set([due, item]))
    if (time < this.#timerAt) this.#arm(time)
  }

  /** Forgets `item`, scheduled at `time` (a connection that closed). */
  delete(item: T, time: number): void {
    const due = this.#due.get(time)
    if (due === item) this.#due.delete(time)
    else if (due instanceof Set && due.delete(item) && due.size === 0) this.#due.delete(time)
    if (this.#due.size === 0) this.#stop()
    else if (this.#times.length > 2 * this.#due.size + 64) this.#rebuild()
  }

  /** Stops the timer and forgets everything (the server closes). */
  clear(): void {
    this.#due.clear()
    this.#times.length = 0
    this.#stop()
  }

  #fire(): void {
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    const now = Date.now()
    const expired: T[] = []
    while (this.#times.length > 0 && this.#times[0]! <= now) {
      const time = this.#pop()
      const due = this.#due.get(time)
      if (due === undefined) continue
      this.#due.delete(time)
      if (due instanceof Set) expired.push(...due)
      else expired.push(due)
    }
    // Re-armed before anything expires, so that an `expire` that adds or deletes sees a
    // consistent schedule.
    if (this.#times.length > 0) this.#arm(this.#times[0]!)
    for (const item of expired) item.expire()
  }

  #arm(time: number): void {
    clearTimeout(this.#timer)
    this.#timerAt = time
    this.#timer = setTimeout(() => this.#fire(), Math.min(Math.max(time - Date.now(), 0), MAX_WAIT_MS))
    // The schedule never keeps the process alive: the connections' sockets do.
    this.#timer.unref()
  }

  #stop(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerAt = Number.POSITIVE_INFINITY
    this.#times.length = 0
  }

  #rebuild(): void {
    this.#times.length = 0
    for (const time of this.#due.keys()) this.#push(time)
  }

  #push(time: number): void {
    const heap = this.#times
    let i = heap.push(time) - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]! <= time) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = time
  }

  #pop(): number {
    const heap = this.#times
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      let i = 0
      for (;;) {
        const left = 2 * i + 1
        if (left >= heap.length) break
        const right = left + 1
        const child = right < heap.length && heap[right]! < heap[left]! ? right : left
        if (heap[child]! >= last) break
        heap[i] = heap[child]!
        i = child
      }
      heap[i] = last
    }
    return top
  }
}
