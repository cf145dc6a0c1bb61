/**
 * The Redis bus's sending side: the outbox and its flush to Redis, one publish script call per
 * batch, in order, while the publisher connection is ready; what a full outbox refused is
 * reported, and what is left on close is given up.
 */
import type { ResolvedHistoryOptions } from './history-options.ts'
import { Outbox, type OutboxMessage, type ResolvedOutboxOptions } from './outbox.ts'
import { isTimeout, type ScriptConnection } from './redis-wire.ts'

/** Messages sent to Redis per script call, at most (and about this many bytes). */
const BATCH_COUNT = 256
const BATCH_BYTES = 1024 * 1024

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref())

/** A publish the outbox had no room for; reported at most once a second with the count. */
export class OutboxFullError extends Error {
  override readonly name = 'OutboxFullError'
  constructor(readonly dropped: number) {
    super(`the bus outbox is full (Redis unreachable): ${dropped} message(s) reached only this process's subscribers`)
  }
}

export interface RedisPublisherOptions {
  /** The publisher connection (the publish script is defined on it). */
  readonly connection: ScriptConnection
  readonly prefix: string
  /** This process's origin id, sent with every batch. */
  readonly origin: string
  readonly history: ResolvedHistoryOptions
  /** Entries each topic's log keeps (about). */
  readonly logMax: number
  readonly outbox: ResolvedOutboxOptions
  /** The bus's counts this side adds to. */
  readonly counts: { sent: number; dropped: number }
  readonly onError: (error: unknown, context: string) => void
}

export class RedisPublisher {
  readonly outbox: Outbox
  readonly #options: RedisPublisherOptions
  #flushing = false
  /** Set on close, once the outbox had its chance to drain: nothing is sent after it. */
  #abandoned = false
  #dropsUnreported = 0
  #lastDropReport = 0

  constructor(options: RedisPublisherOptions) {
    this.#options = options
    this.outbox = new Outbox(options.outbox)
  }

  /** Starts a flush if there is something to send and nothing is flushing already. */
  kick(): void {
    if (!this.#flushing && !this.#abandoned && this.#options.connection.status === 'ready' && this.outbox.length) void this.#flush()
  }

  async #flush(): Promise<void> {
    const { connection, counts, onError } = this.#options
    this.#flushing = true
    let backoff = 50
    try {
      while (this.outbox.length && connection.status === 'ready' && !this.#abandoned) {
        const batch = this.outbox.peek(BATCH_COUNT, BATCH_BYTES)
        try {
          await connection.mizzenPublish(...this.#publishArguments(batch))
        } catch (error) {
          onError(error, 'redis publish')
          if (isTimeout(error)) connection.disconnect(true)
          if (connection.status !== 'ready') return
          // Redis refused the batch (out of memory, say): try again, less and less often.
          await sleep(backoff)
          backoff = Math.min(backoff * 2, 5000)
          continue
        }
        backoff = 50
        this.outbox.shift(batch.length)
        counts.sent += batch.length
        for (const message of batch) message.settle('sent')
      }
    } finally {
      this.#flushing = false
      if (this.outbox.length && connection.status === 'ready' && !this.#abandoned) queueMicrotask(() => this.kick())
    }
  }

  #publishArguments(batch: readonly OutboxMessage[]): (string | number)[] {
    const { prefix, origin, history, logMax } = this.#options
    const args: (string | number)[] = [prefix, origin, history.maxEvents, logMax, history.maxAgeMs, Math.ceil(history.metaTtlMs / 1000), batch.length]
    for (const message of batch) args.push(message.topic, message.seq, message.text, message.history.length, ...message.history)
    return args
  }

  /** Notes a publish the outbox refused; the drops are reported at most once a second, with their count. */
  reportDrop(topic: string): void {
    this.#dropsUnreported++
    const now = Date.now()
    if (now - this.#lastDropReport < 1000) return
    this.#lastDropReport = now
    this.#options.onError(new OutboxFullError(this.#dropsUnreported), topic)
    this.#dropsUnreported = 0
  }

  /** The publisher connection closed. */
  connectionLost(): void {
    // Nothing waits on a connection that is gone: the publishers learn at once that it is queued.
    for (const message of this.outbox) message.settle('queued')
  }

  /** On close: what is queued gets `drainMs` to reach Redis, if it answers; the rest is given up. */
  async close(drainMs: number): Promise<void> {
    const { connection, counts, onError } = this.#options
    const deadline = Date.now() + drainMs
    while (this.outbox.length && connection.status === 'ready' && Date.now() < deadline) {
      this.kick()
      await sleep(10)
    }
    this.#abandoned = true
    const left = this.outbox.shift(this.outbox.length)
    for (const message of left) message.settle('dropped')
    if (left.length) {
      counts.dropped += left.length
      onError(new Error(`the bus closed with ${left.length} message(s) not handed to Redis: other processes never get them`), 'redis publish')
    }
  }
}
