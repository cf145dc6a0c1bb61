/**
 * What this process handed to Redis lately. Redis answers a publish once it has appended the
 * message to the log and queued it for the subscribers, not once they have it: a Redis that dies
 * in between and comes back without its data (restarted empty, or flushed) has lost messages
 * that the outbox already let go of. So the publisher keeps what it handed over for `keepMs`
 * and, when it finds Redis's data new (the data id, `src/redis/link.ts`), sends it again;
 * receivers drop what they had already delivered (each origin's sequence numbers only grow).
 */
import { FrontQueue } from './front-queue.ts'
import type { OutboxMessage } from './outbox.ts'

export interface HandedBounds {
  /** How long a handed message is kept, in ms. */
  readonly keepMs: number
  /** Messages kept at most; past it the oldest go first (a fast stream keeps less time). */
  readonly maxEvents: number
  /** Bytes kept at most, as `maxEvents`. */
  readonly maxBytes: number
}

interface Handed {
  readonly message: OutboxMessage
  /** `performance.now()` when Redis took it. */
  readonly at: number
}

export class HandedRing {
  readonly #bounds: HandedBounds
  #entries = new FrontQueue<Handed>()
  #bytes = 0
  /** Messages evicted by the count or byte bound before `keepMs` was up. */
  evictedEarly = 0

  constructor(bounds: HandedBounds) {
    this.#bounds = bounds
  }

  /** Notes a batch Redis took at `now`, forgetting what is older than `keepMs` or past the bounds. */
  add(batch: readonly OutboxMessage[], now: number): void {
    for (const message of batch) {
      this.#entries.push({ message, at: now })
      this.#bytes += message.bytes
    }
    this.trim(now)
  }

  /** Forgets what is older than `keepMs` at `now`, or past the bounds. */
  trim(now: number): void {
    const { keepMs, maxEvents, maxBytes } = this.#bounds
    this.#entries.shiftWhile((oldest) => {
      const young = oldest.at >= now - keepMs
      if (young && this.#entries.length <= maxEvents && this.#bytes <= maxBytes) return false
      this.#bytes -= oldest.message.bytes
      if (young) this.evictedEarly++
      return true
    })
  }

  /** Takes every message Redis took at `from` or later, oldest first, and forgets them all. */
  takeSince(from: number): OutboxMessage[] {
    const taken = this.#entries
      .toArray()
      .filter((handed) => handed.at >= from)
      .map((handed) => handed.message)
    this.#entries = new FrontQueue()
    this.#bytes = 0
    return taken
  }

  get length(): number {
    return this.#entries.length
  }
}
