/**
 * The Redis bus's sending side: the outbox and its flush to Redis, one publish script call per
 * batch, in order, while the publisher connection is ready and the Redis behind it known; what a
 * full outbox refused is reported, and what is left on close is given up. What Redis took is
 * kept a while (`handed.ts`) and sent again to a Redis that came back without it.
 */
import { performance } from 'node:perf_hooks'
import { HandedRing, type HandedBounds } from './handed.ts'
import type { ResolvedHistoryOptions } from './history-options.ts'
import { Outbox, type OutboxMessage, type ResolvedOutboxOptions } from './outbox.ts'
import { isTimeout, topicKeys, type ScriptConnection } from './redis-wire.ts'

/** Messages sent to Redis per script call, at most (and about this many bytes). */
const BATCH_COUNT = 256
const BATCH_BYTES = 1024 * 1024

/** A batch's messages by topic, each topic's in order, topics in the order they first appear. */
function byTopic(batch: readonly OutboxMessage[]): Map<string, OutboxMessage[]> {
  const topics = new Map<string, OutboxMessage[]>()
  for (const message of batch) {
    const messages = topics.get(message.topic)
    if (messages) messages.push(message)
    else topics.set(message.topic, [message])
  }
  return topics
}

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
  /** `PUBLISH` on one Redis, `SPUBLISH` (sharded pub/sub) on Redis Cluster. */
  readonly publishCommand: 'PUBLISH' | 'SPUBLISH'
  /** This process's origin id, sent with every batch. */
  readonly origin: string
  readonly history: ResolvedHistoryOptions
  /** Entries each topic's log keeps (about). */
  readonly logMax: number
  readonly outbox: ResolvedOutboxOptions
  /** How long, and how much of, what Redis took is kept to send again to a Redis that lost it. */
  readonly handed: HandedBounds
  /** The id of the data (see `src/redis/link.ts`) of the Redis the connection is on at start. */
  readonly data: string
  /** The bus's counts this side adds to. */
  readonly counts: { sent: number; dropped: number; replayed: number }
  readonly onError: (error: unknown, context: string) => void
}

export class RedisPublisher {
  readonly outbox: Outbox
  readonly #options: RedisPublisherOptions
  readonly #handed: HandedRing
  /** The data id of the Redis the connection is on; undefined from a break until it is known again. */
  #data: string | undefined
  /** The data id of the Redis that took the messages in `#handed`. */
  #handedData: string
  /** `performance.now()` when the connection last closed. */
  #lostAt = 0
  #flushing = false
  /** Set on close, once the outbox had its chance to drain: nothing is sent after it. */
  #abandoned = false
  #dropsUnreported = 0
  #lastDropReport = 0

  constructor(options: RedisPublisherOptions) {
    this.#options = options
    this.outbox = new Outbox(options.outbox)
    this.#handed = new HandedRing(options.handed)
    this.#data = this.#handedData = options.data
  }

  /** Whether messages go to Redis now (the connection is ready and the Redis behind it known). */
  get live(): boolean {
    return this.#data !== undefined && this.#options.connection.status === 'ready'
  }

  /** Starts a flush if there is something to send and nothing is flushing already. */
  kick(): void {
    if (!this.#flushing && !this.#abandoned && this.live && this.outbox.length) void this.#flush()
  }

  /**
   * The connection is ready again, on a Redis holding the data `data`. New data is a Redis that
   * lost what it took: what it took in the last `keepMs` before the break goes in front of the
   * outbox, in order (the publish script applies it again, since the new data has no record of
   * this origin's sequence numbers).
   */
  connected(data: string): void {
    if (data !== this.#handedData) {
      const again = this.#handed.takeSince(this.#lostAt - this.#options.handed.keepMs)
      this.outbox.unshift(again)
      this.#options.counts.replayed += again.length
      if (again.length) {
        const seconds = Math.round(this.#options.handed.keepMs / 1000)
        this.#options.onError(
          new Error(
            `Redis came back without its data: sending again the ${again.length} message(s) it took in the last ${seconds} s before the break; other processes drop those they already have`,
          ),
          'redis publish',
        )
      }
      if (this.#handed.evictedEarly) {
        this.#options.onError(
          new Error(
            `${this.#handed.evictedEarly} message(s) Redis took shortly before the break were past the bounds kept to send again: other processes may miss them`,
          ),
          'redis publish',
        )
      }
      this.#handed.evictedEarly = 0
      this.#handedData = data
    }
    this.#data = data
    this.kick()
  }

  async #flush(): Promise<void> {
    const { connection, onError } = this.#options
    this.#flushing = true
    let backoff = 50
    try {
      while (this.outbox.length && this.live && !this.#abandoned) {
        const batch = this.outbox.peek(BATCH_COUNT, BATCH_BYTES)
        // One script call per topic (each touches one topic's slot), all at once; what follows
        // the first topic Redis refused is sent again, and each topic's script skips what it
        // applied already (see the publish script).
        const results = await Promise.allSettled(
          [...byTopic(batch)].map(([topic, messages]) =>
            connection.mizzenPublish(...this.#publishArguments(topic, messages)),
          ),
        )
        const failed = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []))
        if (failed.length) {
          const topics = [...byTopic(batch).keys()]
          const refused = new Set(topics.filter((_, i) => results[i]!.status === 'rejected'))
          const taken = batch.findIndex((message) => refused.has(message.topic))
          this.#taken(batch.slice(0, taken))
          const error = failed[0]
          onError(error, 'redis publish')
          if (failed.some(isTimeout)) connection.disconnect(true)
          if (connection.status !== 'ready') return
          // Redis refused the batch (out of memory, say): try again, less and less often.
          await sleep(backoff)
          backoff = Math.min(backoff * 2, 5000)
          continue
        }
        backoff = 50
        this.#taken(batch)
      }
    } finally {
      this.#flushing = false
      if (this.outbox.length && this.live && !this.#abandoned) queueMicrotask(() => this.kick())
    }
  }

  /** The front of the outbox, up to `taken.length`, is in Redis. */
  #taken(taken: readonly OutboxMessage[]): void {
    if (!taken.length) return
    this.outbox.shift(taken.length)
    this.#handed.add(taken, performance.now())
    this.#options.counts.sent += taken.length
    for (const message of taken) message.settle('sent')
  }

  #publishArguments(topic: string, messages: readonly OutboxMessage[]): (string | number)[] {
    const { prefix, origin, history, logMax, publishCommand } = this.#options
    const args: (string | number)[] = [
      topicKeys(prefix, topic).log,
      prefix,
      origin,
      history.maxEvents,
      logMax,
      history.maxAgeMs,
      Math.ceil(history.metaTtlMs / 1000),
      publishCommand,
      topic,
      messages.length,
    ]
    for (const message of messages) args.push(message.seq, message.text, message.history.length, ...message.history)
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

  /** Forgets what Redis took longer ago than it is kept for (while connected: after a break it is what may go again). */
  forgetOld(): void {
    if (this.live) this.#handed.trim(performance.now())
  }

  /** The publisher connection closed. */
  connectionLost(): void {
    if (this.#data !== undefined) this.#lostAt = performance.now()
    this.#data = undefined
    // Nothing waits on a connection that is gone: the publishers learn at once that it is queued.
    for (const message of this.outbox) message.settle('queued')
  }

  /** On close: what is queued gets `drainMs` to reach Redis, if it answers; the rest is given up. */
  async close(drainMs: number): Promise<void> {
    const { counts, onError } = this.#options
    const deadline = Date.now() + drainMs
    while (this.outbox.length && this.live && Date.now() < deadline) {
      this.kick()
      await sleep(10)
    }
    this.#abandoned = true
    const left = this.outbox.shift(this.outbox.length)
    for (const message of left) message.settle('dropped')
    if (left.length) {
      counts.dropped += left.length
      onError(
        new Error(`the bus closed with ${left.length} message(s) not handed to Redis: other processes never get them`),
        'redis publish',
      )
    }
  }
}
