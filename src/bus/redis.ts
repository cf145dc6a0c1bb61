/**
 * The Redis bus: several processes (gateways and backend services) on one Redis behave as one.
 *
 * - A publish reaches this process's listeners at once, without waiting on Redis. Its
 *   cross-process part goes through the outbox: a bounded, ordered queue flushed by one script
 *   per batch that appends each message to its topic's log (a Redis stream) and its histories,
 *   and publishes it on the topic's channel, so pub/sub order is log order. While Redis is
 *   unreachable the outbox keeps what it can and sends it, in order, when Redis returns.
 * - Each process delivers the other processes' messages from pub/sub in log order. After a
 *   break in its connection it reads what it missed from the logs (catch-up) before going on.
 * - Cursors are positions in those logs (see `mark.ts`); `resume` replays a history from one.
 *
 * This module holds the options, the two connections and their events, and the `Bus` methods;
 * the sending side is `redis-publisher.ts`, the receiving side (topics, subscriptions,
 * catch-up) `redis-receiver.ts`, and what is said to Redis and read back `redis-wire.ts`.
 */
import { randomBytes } from 'node:crypto'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { positiveSetting } from '../errors.ts'
import { openRedis, redisTarget } from '../redis/connection.ts'
import { RedisLink, readDataId, type RedisSignal } from '../redis/link.ts'
import type { SharedRedis } from '../redis/shared.ts'
import {
  BusClosedError,
  HistoryUnavailableError,
  ResyncRequiredError,
  type Bus,
  type BusStats,
  type Listener,
  type PublishOptions,
  type PublishOutcome,
  type Resumption,
  type SubscribeOptions,
  type Topic,
  type TopicMap,
} from './bus.ts'
import { decode, encode } from './codec.ts'
import { historyHash, parseCursor, shortHash } from './cursor.ts'
import { resolveHistoryOptions, type HistoryOptions } from './history-options.ts'
import type { CursorContext, DeliveryMark } from './mark.ts'
import { resolveOutboxOptions, type OutboxMessage, type OutboxOptions } from './outbox.ts'
import { RedisPublisher } from './redis-publisher.ts'
import { RedisReceiver } from './redis-receiver.ts'
import { publishScript, readScript, tailScript } from './redis-scripts.ts'
import { isTimeout, readLog, topicKeys, type LogPage, type LogSource, type ScriptConnection } from './redis-wire.ts'
import { HistoryResumption, type HistoryEntry } from './resumption.ts'
import { formatStreamId, type StreamId } from './stream-id.ts'

export { OutboxFullError } from './redis-publisher.ts'

export interface RedisBusOptions {
  /** `redis://…` or `rediss://…` (a database number may follow the host). Give this or `cluster`. */
  url?: string
  /**
   * Seed nodes (`host:port`) of a Redis Cluster to run on instead of one Redis: each topic's keys
   * and channel share a slot, and channels go through sharded pub/sub. Give this or `url`.
   */
  cluster?: readonly string[]
  /** Prefix of every Redis key and channel of the bus, to share one Redis between deployments (no `{` or `}`). @default "mizzen:" */
  prefix?: string
  /** Told about what went wrong: a listener that threw, a message that could not be read, Redis errors, drops. */
  onError?: (error: unknown, context: string) => void
  /** Extra ioredis options (both connections; on a cluster, each node's). */
  redis?: RedisOptions
  /**
   * The gateway's Redis connections, shared with the rooms registry (src/redis/shared.ts), instead
   * of two of the bus's own (`url`/`cluster`, `redis`, `redisTimeoutMs` and `heartbeatMs` are then
   * the shared ones'). Its epoch key must be `<prefix>epoch`.
   */
  shared?: SharedRedis
  /** How much history each topic and room keeps. @default see HistoryOptions */
  history?: HistoryOptions
  /** Bounds of the outbox that holds messages while Redis is unreachable. @default see OutboxOptions */
  outbox?: OutboxOptions
  /**
   * Entries each topic's log keeps (about), for a process that lost its connection to catch up
   * on; for model topics it is also their history. A positive integer.
   * @default the larger of history.maxEvents and outbox.maxEvents
   */
  logMaxEvents?: number
  /**
   * How long `publish` waits for Redis to take a message before answering `queued` (it stays in
   * the outbox and is sent later), in ms.
   * @default 1000
   */
  handoffTimeoutMs?: number
  /**
   * How long one Redis command may take, in ms (the name the rooms registry uses for the same
   * bound): a command, or the heartbeat each connection sends every `heartbeatMs`, unanswered for
   * this long makes the bus drop that connection and reconnect (a link that silently stopped
   * carrying data).
   * @default 5000
   */
  redisTimeoutMs?: number
  /** How often each connection checks that Redis answers, in ms. @default 1000 */
  heartbeatMs?: number
  /**
   * How long a break in the connection to a Redis that comes back without its data (restarted
   * empty, or flushed) may last without losing messages, in ms. Each process keeps what Redis
   * took from it for this long (plus `redisTimeoutMs` and `heartbeatMs`; at most the outbox's
   * bytes and ten times its count, past which a warning says how much) and sends it again to the
   * new Redis; the others drop what they already delivered. A process away from Redis for
   * longer tells its subscribers that some messages may be missing (RESYNC_REQUIRED). Give every
   * process the same value. A positive integer.
   * @default 30000
   */
  replayWindowMs?: number
}

/** What the bus did, for metrics and tests. */
export interface RedisBusStats extends BusStats {
  /** Messages this process published (all delivered to its own listeners). */
  readonly published: number
  /** Of those, handed to Redis. */
  readonly sent: number
  /** Of those, refused by a full outbox (or given up on close): other processes never get them. */
  readonly dropped: number
  /** Waiting in the outbox now. */
  readonly queued: number
  readonly queuedBytes: number
  /** Catch-ups that found the log no longer reached back to where this process was. */
  readonly gaps: number
  /** Messages sent again to a Redis that came back without its data. */
  readonly replayed: number
}

export interface RedisBus extends Bus {
  /** Listeners registered in this process. */
  listenerCount(): number
  stats(): RedisBusStats
}

/** How long `close` lets the outbox drain while Redis answers, in ms. */
const CLOSE_DRAIN_MS = 2000

export async function createRedisBus(options: RedisBusOptions): Promise<RedisBus> {
  const { shared } = options
  const target = shared ? shared.target : redisTarget(options)
  const sharded = 'cluster' in target
  const prefix = options.prefix ?? 'mizzen:'
  // A brace would move the hash tag (see redis-scripts.ts): a topic's keys would leave its slot.
  if (/[{}]/.test(prefix)) throw new Error(`prefix must not contain { or }, got ${JSON.stringify(prefix)}`)
  const onError = options.onError ?? (() => {})
  const history = resolveHistoryOptions(options.history)
  const outboxOptions = resolveOutboxOptions(options.outbox)
  const logMax = positiveSetting(
    'logMaxEvents',
    options.logMaxEvents ?? Math.max(history.maxEvents, outboxOptions.maxEvents),
  )
  const handoffTimeoutMs = positiveSetting('handoffTimeoutMs', options.handoffTimeoutMs ?? 1000)
  const redisTimeoutMs = shared?.redisTimeoutMs ?? positiveSetting('redisTimeoutMs', options.redisTimeoutMs ?? 5000)
  const heartbeatMs = shared?.heartbeatMs ?? positiveSetting('heartbeatMs', options.heartbeatMs ?? 1000)
  const replayWindowMs = positiveSetting('replayWindowMs', options.replayWindowMs ?? 30_000)

  // Commands fail at once while a connection is down (the bus decides what waits), and nothing
  // is re-sent behind its back: a batch sent again is the bus's choice, made idempotent.
  const connect = (role: 'commands' | 'subscriber') =>
    openRedis(target, role, {
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      commandTimeout: redisTimeoutMs,
      ...options.redis,
    })
  const publisher = shared ? shared.commands : connect('commands')
  const subscriber = shared ? shared.subscriber : connect('subscriber')
  for (const script of [
    ['mizzenPublish', publishScript],
    ['mizzenRead', readScript],
    ['mizzenTail', tailScript],
  ] as const) {
    publisher.defineCommand(script[0], { numberOfKeys: 1, lua: script[1] })
  }
  const commands = publisher as ScriptConnection
  // Shared connections are connected, and their errors reported, by their owner.
  if (!shared) {
    for (const [connection, name] of [
      [publisher, 'publisher'],
      [subscriber, 'subscriber'],
    ] as const) {
      connection.on('error', (error: unknown) => onError(error, `redis ${name} connection`))
    }
    try {
      await Promise.all([publisher.connect(), subscriber.connect()])
    } catch (error) {
      publisher.disconnect()
      subscriber.disconnect()
      throw error
    }
  }
  const release = shared?.use()

  const context: CursorContext & { tag: string } = { tag: '', origin: randomBytes(8).toString('base64url') }
  const counts = { published: 0, sent: 0, dropped: 0, gaps: 0, replayed: 0 }
  let lastSeq = 0
  let closed = false

  /**
   * The id of the data Redis holds (`<prefix>epoch`, see `src/redis/link.ts`) is the history
   * epoch: cursors carry its hash, so they stay valid exactly as long as the logs they point
   * into (a restart on its persistence, a replica promoted with the data), and a Redis that lost
   * its data (restarted empty, flushed) refuses them.
   */
  const epochKey = `${prefix}epoch`
  if (shared && shared.epochKey !== epochKey)
    throw new Error(`the shared Redis connections read the data id from ${shared.epochKey}, the bus from ${epochKey}`)
  function adoptData(data: string): void {
    const tag = shortHash(`${prefix}\u0000${data}`)
    if (context.tag && tag !== context.tag) {
      onError(
        new Error(
          'Redis came back without its data (restarted empty, flushed, or failed over to a replica without it): the history before it is gone, and cursors from before answer RESYNC_REQUIRED',
        ),
        'history',
      )
    }
    context.tag = tag
  }
  /** Reads the data id over `connection` into the context's tag. */
  async function readData(connection: Redis | Cluster): Promise<void> {
    adoptData(await readDataId(connection, epochKey))
  }
  // Each connection's heartbeat and lost/back signal (src/redis/link.ts): a command, or a
  // heartbeat, unanswered for redisTimeoutMs drops the connection and it reconnects.
  const linkOptions = { epochKey, heartbeatMs, timeoutMs: redisTimeoutMs, onError }
  const [publisherLink, subscriberLink] = shared
    ? [shared.commandsLink, shared.subscriberLink]
    : await Promise.all([
        RedisLink.open({ ...linkOptions, connection: publisher, name: 'publisher' }),
        RedisLink.open({ ...linkOptions, connection: subscriber, name: 'subscriber' }),
      ])
  adoptData(publisherLink.data)

  // How long a link may carry nothing before a heartbeat times out and the bus notices.
  const detectionMs = redisTimeoutMs + heartbeatMs
  const outgoing = new RedisPublisher({
    connection: commands,
    prefix,
    publishCommand: sharded ? 'SPUBLISH' : 'PUBLISH',
    origin: context.origin,
    history,
    logMax,
    outbox: outboxOptions,
    // Up to the outbox's bytes (the messages' text), and ten times its count (a fast stream of
    // small messages): what a restart within the window would otherwise lose.
    handed: {
      keepMs: replayWindowMs + detectionMs,
      maxEvents: outboxOptions.maxEvents * 10,
      maxBytes: outboxOptions.maxBytes,
    },
    data: publisherLink.data,
    counts,
    onError,
  })
  const log: LogSource = { commands, metaTtlMs: history.metaTtlMs }
  const incoming = new RedisReceiver({
    subscriber,
    sharded,
    retryMs: heartbeatMs,
    publisher: commands,
    prefix,
    context,
    log,
    counts,
    onError,
    closed: () => closed,
    epochKnown: () => publisherLink.known,
    // On one Redis, over the subscriber connection: the epoch is the one of the Redis it is on.
    refreshEpoch: () => readData(sharded ? publisher : subscriber),
    data: () => publisherLink.data,
    replayWindowMs,
    detectionMs,
  })
  const { outbox } = outgoing
  const { topics } = incoming

  // ---- Connection events.

  // Named, so that a bus on shared connections takes exactly its own listeners off on close.
  const onMessage = (channel: string, text: string) => incoming.message(channel, text)
  const onSubscriberSignal = (signal: RedisSignal) => {
    if (signal.kind === 'lost') incoming.connectionLost()
    else void incoming.resubscribe()
  }
  const onShardLost = () => incoming.connectionLost()
  const onShardsReady = () => {
    incoming.connectionLost()
    void incoming.resubscribe()
  }
  const onPublisherSignal = (signal: RedisSignal) => {
    if (signal.kind === 'lost') return outgoing.connectionLost()
    adoptData(signal.data)
    // Before anything else is sent: what a Redis that lost it took goes first, in order.
    outgoing.connected(signal.data)
    incoming.resumeSyncs()
  }
  const onBeat = () => outgoing.forgetOld()
  subscriber.on(sharded ? 'smessage' : 'message', onMessage)
  subscriberLink.follow(onSubscriberSignal)
  if (sharded) {
    // A shard's subscriber lost (its primary died, or its slots moved): every topic catches up
    // from its log once the subscribers follow the new slot map.
    subscriber.on('-subscriber', onShardLost)
    subscriber.on('subscribersReady', onShardsReady)
  }
  publisherLink.follow(onPublisherSignal, onBeat)

  // ---- History reads for resumption.

  /** A history read for a resumption: entries, or the reason it cannot be served. */
  async function readHistory(
    name: string,
    after: StreamId,
    upTo: StreamId,
    count: number,
    tag: string,
    seen: ReadonlyMap<string, number>,
  ): Promise<HistoryEntry[]> {
    if (publisher.status !== 'ready' || !(await publisherLink.known))
      throw new HistoryUnavailableError('Redis is unreachable: the history cannot be read now')
    if (context.tag !== tag)
      throw new ResyncRequiredError('other-epoch', 'Redis lost its data during the replay: the history is gone')
    let page: LogPage
    try {
      page = await readLog(log, name, after, formatStreamId(upTo), count, seen)
    } catch (error) {
      if (isTimeout(error)) publisher.disconnect(true)
      throw new HistoryUnavailableError(`reading the history from Redis failed: ${(error as Error).message}`, {
        cause: error,
      })
    }
    if (page === 'future') throw new ResyncRequiredError('malformed', 'the cursor is malformed')
    if ('gap' in page) throw new ResyncRequiredError('trimmed', 'the history no longer reaches back to this cursor')
    return page.entries.map((entry) => ({
      id: entry.id,
      origin: entry.origin,
      seq: entry.seq,
      payload: decode(entry.text),
    }))
  }

  return {
    async publish<T extends Topic>(
      topic: T,
      payload: TopicMap[T],
      publishOptions?: PublishOptions,
    ): Promise<PublishOutcome> {
      if (closed) throw new BusClosedError()
      const text = encode(payload)
      let resolve!: (outcome: PublishOutcome) => void
      const outcome = new Promise<PublishOutcome>((done) => (resolve = done))
      let timer: NodeJS.Timeout | undefined
      let settled = false
      const message: OutboxMessage = {
        topic,
        seq: ++lastSeq,
        text,
        history: publishOptions?.history?.length ? [...new Set(publishOptions.history)] : [],
        bytes: Buffer.byteLength(text),
        settle(result) {
          if (settled) return
          settled = true
          if (timer) clearTimeout(timer)
          resolve(result)
        },
      }
      // Queued before the local delivery, so that a listener publishing in turn is queued after.
      const queued = outbox.push(message)
      counts.published++
      topics.get(topic)?.publishOwn(payload, message, queued)
      if (!queued) {
        counts.dropped++
        outgoing.reportDrop(topic)
        message.settle('dropped')
      } else if (!outgoing.live) {
        message.settle('queued')
      } else {
        timer = setTimeout(() => message.settle('queued'), handoffTimeoutMs)
        outgoing.kick()
      }
      return outcome
    },
    subscribe<T extends Topic>(name: T, listener: Listener<T>, subscribeOptions?: SubscribeOptions) {
      if (closed) throw new BusClosedError()
      const topic = topics.get(name) ?? incoming.addTopic(name)
      const entry = listener as unknown as (payload: unknown, mark: DeliveryMark) => void
      topic.listeners.add(entry)
      const onGap = subscribeOptions?.onGap
      if (onGap) topic.gapListeners.add(onGap)
      return () => {
        topic.listeners.delete(entry)
        if (onGap) topic.gapListeners.delete(onGap)
        if (topic.listeners.size === 0) incoming.removeTopic(topic)
      }
    },
    resume<T extends Topic>(name: T, text: string, key: string = name): Resumption<T> {
      const cursor = parseCursor(text)
      // A position far ahead of any clock is not one Redis gave.
      if (!cursor || cursor.position.ms > Date.now() + 60_000)
        throw new ResyncRequiredError('malformed', 'the cursor is malformed')
      if (cursor.tag !== context.tag)
        throw new ResyncRequiredError(
          'other-epoch',
          'the cursor is from another deployment, or from before Redis lost its data',
        )
      if (cursor.history !== historyHash(name, key))
        throw new ResyncRequiredError('other-history', 'the cursor is from another topic')
      const topic = topics.get(name)
      const tag = context.tag
      const keys = topicKeys(prefix, name)
      const stream = key === name ? keys.log : keys.history(key)
      const candidates = (topic?.pending ?? []).filter((message) => key === name || message.history.includes(key))
      return new HistoryResumption<T>({
        context,
        topic: name,
        key,
        cursor,
        ownSeqAtStart: lastSeq,
        position: async () => {
          if (!topic || topics.get(name) !== topic) throw new Error(`resume ${name} needs a listener on it first`)
          if (!topic.last) {
            let timer: NodeJS.Timeout | undefined
            const timeout = new Promise<never>((_, reject) => {
              timer = setTimeout(
                () =>
                  reject(
                    new HistoryUnavailableError(
                      'this gateway has not caught up with Redis yet: the history cannot be read now',
                    ),
                  ),
                redisTimeoutMs,
              )
            })
            await Promise.race([topic.positioned, timeout]).finally(() => clearTimeout(timer))
          }
          // One instant: the position, and which own messages the log has still not shown back.
          const pendingNow = new Set(topic.pending)
          return {
            upTo: topic.last!,
            ownPending: candidates
              .filter((message) => pendingNow.has(message))
              .map((message) => ({ seq: message.seq, payload: () => decode(message.text) })),
          }
        },
        seenInLog: (origin) => topic?.seenInLog(origin),
        currentPosition: () => topic?.last,
        read: (after, upTo, count) => readHistory(stream, after, upTo, count, tag, cursor.seen),
      })
    },
    async latest<T extends Topic>(name: T): Promise<TopicMap[T] | undefined> {
      if (closed) throw new BusClosedError()
      const entries = (await publisher.xrevrange(topicKeys(prefix, name).log, '+', '-', 'COUNT', 1)) as [
        string,
        string[],
      ][]
      const fields = entries[0]?.[1]
      if (!fields) return undefined
      const at = fields.indexOf('p')
      return at >= 0 && at % 2 === 0 ? (decode(fields[at + 1]!) as TopicMap[T]) : undefined
    },
    /** Resolves when Redis answers on both connections and every subscription made so far is in place. */
    async ping() {
      if (closed) throw new BusClosedError()
      if (subscriber.status !== 'ready') throw new Error(`the Redis subscriber connection is ${subscriber.status}`)
      await Promise.all([publisher.ping(), ...incoming.pending])
    },
    async close() {
      if (closed) return
      closed = true
      if (release) {
        publisherLink.unfollow(onPublisherSignal, onBeat)
        subscriberLink.unfollow(onSubscriberSignal)
      } else {
        publisherLink.close()
        subscriberLink.close()
      }
      await outgoing.close(CLOSE_DRAIN_MS)
      // Its topics' channels: a shared connection goes on for the registry (by name: ioredis#2133).
      const channels = [...incoming.subscribedChannels()]
      topics.clear()
      if (release) {
        subscriber.off(sharded ? 'smessage' : 'message', onMessage)
        subscriber.off('-subscriber', onShardLost)
        subscriber.off('subscribersReady', onShardsReady)
        await Promise.allSettled(
          channels.map((channel) => (sharded ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel))),
        )
        return release()
      }
      await Promise.allSettled(
        [publisher, subscriber].map(async (connection) => {
          if (connection.status === 'ready') await connection.quit()
          else connection.disconnect()
        }),
      )
    },
    listenerCount: () => [...topics.values()].reduce((sum, topic) => sum + topic.listeners.size, 0),
    stats: () => ({ ...counts, queued: outbox.length, queuedBytes: outbox.bytes }),
  }
}
