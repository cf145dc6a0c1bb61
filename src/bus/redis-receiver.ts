/**
 * The Redis bus's receiving side: the topics this process listens to, their channel
 * subscriptions, and catch-up. Each topic is brought up to date with its log (`sync`) before
 * pub/sub goes through to its listeners, after its first subscription and after every break in
 * the subscriber connection.
 *
 * A break that ends on a Redis that lost its data (restarted empty, or flushed) cannot be
 * caught up from the old log: it is gone. Publishers send again into the new log what the old
 * Redis took in the replay window before their own break (`handed.ts`), so a topic whose break
 * was shorter than that window catches up as usual (the new log's ids come after the old one's)
 * and drops what it already delivered; after a longer break what it missed may be lost, and its
 * listeners are told (a gap).
 */
import { performance } from 'node:perf_hooks'
import type { Cluster, Redis } from 'ioredis'
import type { CursorContext } from './mark.ts'
import { RedisTopic } from './redis-topic.ts'
import {
  channelTopic,
  isTimeout,
  parseWire,
  readLog,
  topicKeys,
  type LogSource,
  type ScriptConnection,
} from './redis-wire.ts'
import { parseStreamId } from './stream-id.ts'

/** Entries read per catch-up call. */
const CATCH_UP_PAGE = 1000

export interface RedisReceiverOptions {
  readonly subscriber: Redis | Cluster
  /**
   * Sharded pub/sub (SSUBSCRIBE, one channel per call: each may be on another shard), on Redis
   * Cluster. A resubscription that fails there (a shard's subscriber not yet following a
   * failover) is tried again after `retryMs`, the slot map refreshed first.
   */
  readonly sharded: boolean
  readonly retryMs: number
  /** The publisher connection: catch-up reads go through its scripts. */
  readonly publisher: ScriptConnection
  readonly prefix: string
  readonly context: CursorContext
  /** Where catch-up reads the topics' logs (the publisher connection's scripts). */
  readonly log: LogSource
  /** The bus's counts this side adds to. */
  readonly counts: { gaps: number }
  readonly onError: (error: unknown, context: string) => void
  /** Whether the bus is closed. */
  readonly closed: () => boolean
  /** Whether the epoch and data of the current publisher connection are known (reads wait for them). */
  readonly epochKnown: () => Promise<boolean>
  /** Reads the id of the data Redis holds over `connection` into the context's tag (the history epoch). */
  readonly refreshEpoch: () => Promise<unknown>
  /** The id of the data the publisher connection's Redis holds (known once `epochKnown` is). */
  readonly data: () => string
  /**
   * The longest break in the subscriber connection after which a Redis that came back without
   * its data loses nothing (publishers send again what it took), counted from when the link may
   * have stopped carrying messages (`detectionMs` before the break was noticed), in ms.
   */
  readonly replayWindowMs: number
  /** How long a link may carry nothing before the bus notices (command timeout and heartbeat), in ms. */
  readonly detectionMs: number
}

export class RedisReceiver {
  readonly topics = new Map<string, RedisTopic>()
  /** Subscriptions and first syncs in flight: `ping` waits for them. */
  readonly pending = new Set<Promise<unknown>>()
  /** Topics whose channel the current subscriber connection has confirmed. */
  readonly #subscribed = new Set<string>()
  /** Bumped on every subscriber reconnection: a sync that straddles one starts over. */
  #generation = 0
  /** A resubscription tried again later (sharded pub/sub). */
  #retry: NodeJS.Timeout | undefined
  readonly #options: RedisReceiverOptions

  constructor(options: RedisReceiverOptions) {
    this.#options = options
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.finally(() => this.pending.delete(tracked))
    this.pending.add(tracked)
  }

  /** A message on a topic's channel. */
  message(channel: string, text: string): void {
    const name = channelTopic(this.#options.prefix, channel)
    const topic = name === undefined ? undefined : this.topics.get(name)
    if (!topic) return
    const entry = parseWire(text)
    if (!entry) return this.#options.onError(new Error('an unreadable message on the bus channel'), topic.name)
    topic.receive(entry)
  }

  /** Brings a topic up to date with its log, then lets pub/sub through; restarts when the subscriber reconnected meanwhile. */
  async sync(topic: RedisTopic): Promise<void> {
    if (topic.syncRunning) {
      topic.syncAgain = true
      return topic.syncRunning
    }
    const { publisher, counts, onError } = this.#options
    const run = (async () => {
      do {
        topic.syncAgain = false
        const started = this.#generation
        if (this.#options.closed() || !this.#subscribed.has(topic.name) || publisher.status !== 'ready') return
        try {
          if (!(await this.#options.epochKnown())) return
          const data = this.#options.data()
          let catchUp = true
          if (!topic.last) {
            await this.#startAtTail(topic, data)
            catchUp = false
          } else if (topic.data !== data) {
            // Redis came back without the log this process was reading.
            const awayMs = performance.now() - (topic.brokeAt ?? performance.now()) + this.#options.detectionMs
            if (awayMs <= this.#options.replayWindowMs) topic.data = data
            else {
              await this.#startAtTail(topic, data)
              catchUp = false
              counts.gaps++
              const reason = `Redis came back without its data after this gateway was away from it for ${Math.round(awayMs / 1000)} s, longer than the replay window: some messages may be missing`
              onError(new Error(`${topic.name}: ${reason}`), 'redis catch-up')
              topic.gap(reason, undefined)
            }
          }
          if (catchUp) {
            for (;;) {
              const page = await readLog(
                this.#options.log,
                topicKeys(this.#options.prefix, topic.name).log,
                topic.last!,
                '+',
                CATCH_UP_PAGE,
              )
              if (page === 'future')
                throw new Error(`the log of ${topic.name} is behind this process: Redis's clock went back`)
              if ('gap' in page) {
                counts.gaps++
                const reason =
                  'this gateway lost its Redis connection for longer than the log covers: some messages are missing'
                onError(new Error(`${topic.name}: ${reason}`), 'redis catch-up')
                topic.gap(reason, page.gap)
                break
              }
              for (const entry of page.entries) topic.apply(entry)
              if (page.entries.length < CATCH_UP_PAGE) break
            }
          }
        } catch (error) {
          // The connection broke again: its next 'ready' starts the sync over.
          onError(error, `redis catch-up of ${topic.name}`)
          if (isTimeout(error)) publisher.disconnect(true)
          return
        }
        if (started === this.#generation && this.topics.get(topic.name) === topic && !topic.syncAgain)
          topic.finishSync()
      } while (topic.syncAgain)
    })().finally(() => (topic.syncRunning = undefined))
    topic.syncRunning = run
    return run
  }

  /** Positions `topic` at the end of its log: it has seen everything there. */
  async #startAtTail(topic: RedisTopic, data: string): Promise<void> {
    const { publisher, prefix } = this.#options
    const tail = parseStreamId(await publisher.mizzenTail(topicKeys(prefix, topic.name).log))
    if (!tail) throw new Error('Redis answered the log tail with no stream id')
    topic.start(tail, data)
  }

  /** Subscribes to the topics' channels; resolves once Redis confirmed them all. */
  async #subscribe(names: readonly string[]): Promise<void> {
    const { subscriber, prefix, sharded } = this.#options
    if (!names.length) return
    const channels = names.map((name) => topicKeys(prefix, name).channel)
    if (!sharded) await subscriber.subscribe(...channels)
    // Each channel may live on another shard: one SSUBSCRIBE each (one with several would be CROSSSLOT).
    else await Promise.all(channels.map((channel) => subscriber.ssubscribe(channel)))
  }

  /** After the subscriber (re)connected: subscribe every topic again, then catch each up. */
  async resubscribe(): Promise<void> {
    const { subscriber, onError } = this.#options
    const current = ++this.#generation
    this.#subscribed.clear()
    try {
      await this.#options.refreshEpoch()
      const names = [...this.topics.keys()]
      await this.#subscribe(names)
      if (current !== this.#generation) return
      for (const name of names) if (this.topics.has(name)) this.#subscribed.add(name)
      await Promise.all([...this.topics.values()].map((topic) => this.sync(topic)))
    } catch (error) {
      onError(error, 'redis resubscribe')
      if (this.#options.sharded) this.#resubscribeLater(current)
      else if (isTimeout(error)) subscriber.disconnect(true)
    }
  }

  /** Tries a failed sharded resubscription again, unless a newer one started meanwhile. */
  #resubscribeLater(failed: number): void {
    if (this.#retry || this.#options.closed()) return
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      if (failed !== this.#generation || this.#options.closed()) return
      const subscriber = this.#options.subscriber as Cluster
      // The slot map may be stale (a failover): fetching it again re-creates the shard subscribers.
      subscriber.refreshSlotsCache?.()
      void this.resubscribe()
    }, this.#options.retryMs)
    this.#retry.unref()
  }

  /** The subscriber connection closed: every topic waits for a catch-up before delivering again. */
  connectionLost(): void {
    this.#subscribed.clear()
    this.#generation++
    const now = performance.now()
    for (const topic of this.topics.values()) topic.startSync(now)
  }

  /** The publisher connection is back: resume the catch-ups it interrupted. */
  resumeSyncs(): void {
    for (const topic of this.topics.values()) if (topic.syncing) void this.sync(topic)
  }

  /** The channels of the topics followed now. */
  *subscribedChannels(): Iterable<string> {
    for (const name of this.topics.keys()) yield topicKeys(this.#options.prefix, name).channel
  }

  addTopic(name: string): RedisTopic {
    const { subscriber, context, onError } = this.#options
    const topic = new RedisTopic(name, context, onError)
    this.topics.set(name, topic)
    if (subscriber.status === 'ready') {
      const current = this.#generation
      this.#track(
        this.#subscribe([name]).then(
          () => {
            if (current !== this.#generation || this.topics.get(name) !== topic) return
            this.#subscribed.add(name)
            return this.sync(topic)
          },
          (error: unknown) => onError(error, `redis subscribe ${name}`),
        ),
      )
    }
    return topic
  }

  removeTopic(topic: RedisTopic): void {
    const { subscriber, prefix, onError } = this.#options
    if (this.topics.get(topic.name) !== topic) return
    this.topics.delete(topic.name)
    this.#subscribed.delete(topic.name)
    if (!this.#options.closed() && subscriber.status === 'ready')
      (this.#options.sharded
        ? subscriber.sunsubscribe(topicKeys(prefix, topic.name).channel)
        : subscriber.unsubscribe(topicKeys(prefix, topic.name).channel)
      ).catch((error: unknown) => onError(error, `redis unsubscribe ${topic.name}`))
  }
}
