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
 */
import { randomBytes } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import { ConfigError } from '../errors.ts'
import {
  BusClosedError,
  HistoryUnavailableError,
  ResyncRequiredError,
  type Bus,
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
import { Outbox, resolveOutboxOptions, type OutboxMessage, type OutboxOptions } from './outbox.ts'
import { publishScript, readScript, tailScript } from './redis-scripts.ts'
import { RedisTopic, type LogEntry } from './redis-topic.ts'
import { HistoryResumption, type HistoryEntry } from './resumption.ts'
import { formatStreamId, parseStreamId, type StreamId } from './stream-id.ts'

export interface RedisBusOptions {
  /** `redis://…` or `rediss://…` (a database number may follow the host). */
  url: string
  /** Prefix of every Redis key and channel of the bus, to share one Redis between deployments. @default "mizzen:" */
  prefix?: string
  /** Told about what went wrong: a listener that threw, a message that could not be read, Redis errors, drops. */
  onError?: (error: unknown, context: string) => void
  /** Extra ioredis options (both connections). */
  redis?: RedisOptions
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
   * A Redis command, or the heartbeat each connection sends every `heartbeatMs`, unanswered for
   * this long makes the bus drop that connection and reconnect (a link that silently stopped
   * carrying data), in ms.
   * @default 5000
   */
  commandTimeoutMs?: number
  /** How often each connection checks that Redis answers, in ms. @default 1000 */
  heartbeatMs?: number
}

/** What the bus did, for metrics and tests. */
export interface RedisBusStats {
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
}

export interface RedisBus extends Bus {
  /** Listeners registered in this process. */
  listenerCount(): number
  stats(): RedisBusStats
}

/** Messages sent to Redis per script call, at most (and about this many bytes). */
const BATCH_COUNT = 256
const BATCH_BYTES = 1024 * 1024
/** Entries read per catch-up call. */
const CATCH_UP_PAGE = 1000
/** How long `close` lets the outbox drain while Redis answers, in ms. */
const CLOSE_DRAIN_MS = 2000

/** A publish the outbox had no room for; reported at most once a second with the count. */
export class OutboxFullError extends Error {
  override readonly name = 'OutboxFullError'
  constructor(readonly dropped: number) {
    super(`the bus outbox is full (Redis unreachable): ${dropped} message(s) reached only this process's subscribers`)
  }
}

type ScriptCommands = {
  mizzenPublish(...args: (string | number)[]): Promise<number>
  mizzenRead(...args: (string | number)[]): Promise<string[]>
  mizzenTail(...args: (string | number)[]): Promise<string>
}

function positive(setting: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(setting, `expected a positive integer, got ${value}`)
  return value
}

/** Parses `<id> <origin> <seq>\n<payload>`, the channel message the publish script sends. */
function parseWire(text: string): LogEntry | undefined {
  const newline = text.indexOf('\n')
  if (newline < 0) return undefined
  const [idText, origin, seqText] = text.slice(0, newline).split(' ')
  const id = idText ? parseStreamId(idText) : undefined
  const seq = Number(seqText)
  if (!id || !origin || !Number.isSafeInteger(seq)) return undefined
  return { id, origin, seq, text: text.slice(newline + 1) }
}

/** Entries from the read script's flat reply (id, origin, seq, payload, …). */
function parseEntries(reply: readonly string[]): LogEntry[] {
  const entries: LogEntry[] = []
  for (let i = 1; i + 3 < reply.length; i += 4) {
    const id = parseStreamId(reply[i]!)
    if (!id) throw new Error(`unexpected stream id from Redis: ${reply[i]}`)
    entries.push({ id, origin: reply[i + 1]!, seq: Number(reply[i + 2]), text: reply[i + 3]! })
  }
  return entries
}

const isTimeout = (error: unknown) => error instanceof Error && error.message === 'Command timed out'
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref())

export async function createRedisBus(options: RedisBusOptions): Promise<RedisBus> {
  const prefix = options.prefix ?? 'mizzen:'
  const onError = options.onError ?? (() => {})
  const history = resolveHistoryOptions(options.history)
  const outboxOptions = resolveOutboxOptions(options.outbox)
  const logMax = positive('logMaxEvents', options.logMaxEvents ?? Math.max(history.maxEvents, outboxOptions.maxEvents))
  const handoffTimeoutMs = positive('handoffTimeoutMs', options.handoffTimeoutMs ?? 1000)
  const commandTimeoutMs = positive('commandTimeoutMs', options.commandTimeoutMs ?? 5000)
  const heartbeatMs = positive('heartbeatMs', options.heartbeatMs ?? 1000)

  // Commands fail at once while a connection is down (the bus decides what waits), and nothing
  // is re-sent behind its back: a batch sent again is the bus's choice, made idempotent.
  const connect = () =>
    new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      commandTimeout: commandTimeoutMs,
      ...options.redis,
    })
  const publisher = connect()
  const subscriber = connect()
  for (const script of [
    ['mizzenPublish', publishScript],
    ['mizzenRead', readScript],
    ['mizzenTail', tailScript],
  ] as const) {
    publisher.defineCommand(script[0], { numberOfKeys: 0, lua: script[1] })
  }
  const commands = publisher as unknown as Redis & ScriptCommands
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

  const context: CursorContext & { tag: string } = { tag: '', origin: randomBytes(8).toString('base64url') }
  const topics = new Map<string, RedisTopic>()
  /** Topics whose channel the current subscriber connection has confirmed. */
  const subscribed = new Set<string>()
  /** Bumped on every subscriber reconnection: a sync that straddles one starts over. */
  let generation = 0
  const outbox = new Outbox(outboxOptions)
  /** Subscriptions and first syncs in flight: `ping` waits for them. */
  const pending = new Set<Promise<unknown>>()
  const counts = { published: 0, sent: 0, dropped: 0, gaps: 0 }
  let lastSeq = 0
  let closed = false
  let abandoned = false

  /** Reads Redis's run id: a restarted (or failed-over) Redis is a new history epoch. */
  async function refreshEpoch(connection: Redis): Promise<void> {
    const info = await connection.info('server')
    const runId = /run_id:(\w+)/.exec(info)?.[1]
    if (!runId) throw new Error('Redis INFO server reported no run_id')
    const tag = shortHash(`${prefix}\u0000${runId}`)
    if (context.tag && tag !== context.tag) {
      onError(new Error('Redis restarted or failed over: the history before it is gone, and cursors from before answer RESYNC_REQUIRED'), 'history')
    }
    context.tag = tag
  }
  await refreshEpoch(publisher)
  /** Whether the epoch of the current publisher connection is known (reads wait for it). */
  let epochKnown: Promise<boolean> = Promise.resolve(true)

  const track = (work: Promise<unknown>) => {
    const tracked = work.finally(() => pending.delete(tracked))
    pending.add(tracked)
  }

  // ---- Publishing: the outbox and its flush.

  let flushing = false
  let dropsUnreported = 0
  let lastDropReport = 0

  function kick(): void {
    if (!flushing && !abandoned && publisher.status === 'ready' && outbox.length) void flush()
  }

  async function flush(): Promise<void> {
    flushing = true
    let backoff = 50
    try {
      while (outbox.length && publisher.status === 'ready' && !abandoned) {
        const batch = outbox.peek(BATCH_COUNT, BATCH_BYTES)
        try {
          await commands.mizzenPublish(...publishArguments(batch))
        } catch (error) {
          onError(error, 'redis publish')
          if (isTimeout(error)) publisher.disconnect(true)
          if (publisher.status !== 'ready') return
          // Redis refused the batch (out of memory, say): try again, less and less often.
          await sleep(backoff)
          backoff = Math.min(backoff * 2, 5000)
          continue
        }
        backoff = 50
        outbox.shift(batch.length)
        counts.sent += batch.length
        for (const message of batch) message.settle('sent')
      }
    } finally {
      flushing = false
      if (outbox.length && publisher.status === 'ready' && !abandoned) queueMicrotask(kick)
    }
  }

  function publishArguments(batch: readonly OutboxMessage[]): (string | number)[] {
    const args: (string | number)[] = [prefix, context.origin, history.maxEvents, logMax, history.maxAgeMs, Math.ceil(history.metaTtlMs / 1000), batch.length]
    for (const message of batch) args.push(message.topic, message.seq, message.text, message.history.length, ...message.history)
    return args
  }

  function reportDrop(topic: string): void {
    dropsUnreported++
    const now = Date.now()
    if (now - lastDropReport < 1000) return
    lastDropReport = now
    onError(new OutboxFullError(dropsUnreported), topic)
    dropsUnreported = 0
  }

  // ---- Receiving: subscriptions, catch-up after a break.

  subscriber.on('message', (channel: string, text: string) => {
    const topic = topics.get(channel.slice(prefix.length))
    if (!topic) return
    const entry = parseWire(text)
    if (!entry) return onError(new Error('an unreadable message on the bus channel'), topic.name)
    topic.receive(entry)
  })

  const logName = (topic: string) => `log:${topic}`

  async function readLog(
    name: string,
    after: StreamId,
    upTo: string,
    count: number,
    seen: ReadonlyMap<string, number> = new Map(),
  ): Promise<{ entries: LogEntry[] } | { gap: StreamId | undefined } | 'future'> {
    const reply = await commands.mizzenRead(prefix, name, formatStreamId(after), upTo, count, history.metaTtlMs, ...[...seen].flat())
    if (reply[0] === 'future') return 'future'
    if (reply[0] === 'gap') return { gap: reply[1] ? parseStreamId(reply[1]) : undefined }
    return { entries: parseEntries(reply) }
  }

  /** Brings a topic up to date with its log, then lets pub/sub through; restarts when the subscriber reconnected meanwhile. */
  async function sync(topic: RedisTopic): Promise<void> {
    if (topic.syncRunning) {
      topic.syncAgain = true
      return topic.syncRunning
    }
    const run = (async () => {
      do {
        topic.syncAgain = false
        const started = generation
        if (closed || !subscribed.has(topic.name) || publisher.status !== 'ready') return
        try {
          if (!(await epochKnown)) return
          if (!topic.last) {
            const tail = parseStreamId(await commands.mizzenTail(prefix, logName(topic.name)))
            if (!tail) throw new Error('Redis answered the log tail with no stream id')
            topic.start(tail)
          } else {
            for (;;) {
              const page = await readLog(logName(topic.name), topic.last, '+', CATCH_UP_PAGE)
              if (page === 'future') throw new Error(`the log of ${topic.name} is behind this process: Redis's clock went back`)
              if ('gap' in page) {
                counts.gaps++
                const reason = 'this gateway lost its Redis connection for longer than the log covers: some messages are missing'
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
        if (started === generation && topics.get(topic.name) === topic && !topic.syncAgain) topic.finishSync()
      } while (topic.syncAgain)
    })().finally(() => (topic.syncRunning = undefined))
    topic.syncRunning = run
    return run
  }

  /** After the subscriber (re)connected: subscribe every topic again, then catch each up. */
  async function resubscribe(): Promise<void> {
    const current = ++generation
    subscribed.clear()
    try {
      await refreshEpoch(subscriber)
      const names = [...topics.keys()]
      if (names.length) await subscriber.subscribe(...names.map((name) => prefix + name))
      if (current !== generation) return
      for (const name of names) if (topics.has(name)) subscribed.add(name)
      await Promise.all([...topics.values()].map((topic) => sync(topic)))
    } catch (error) {
      onError(error, 'redis resubscribe')
      if (isTimeout(error)) subscriber.disconnect(true)
    }
  }

  function addTopic(name: string): RedisTopic {
    const topic = new RedisTopic(name, context, onError)
    topics.set(name, topic)
    if (subscriber.status === 'ready') {
      const current = generation
      track(
        subscriber.subscribe(prefix + name).then(
          () => {
            if (current !== generation || topics.get(name) !== topic) return
            subscribed.add(name)
            return sync(topic)
          },
          (error: unknown) => onError(error, `redis subscribe ${name}`),
        ),
      )
    }
    return topic
  }

  function removeTopic(topic: RedisTopic): void {
    if (topics.get(topic.name) !== topic) return
    topics.delete(topic.name)
    subscribed.delete(topic.name)
    if (!closed && subscriber.status === 'ready') subscriber.unsubscribe(prefix + topic.name).catch((error: unknown) => onError(error, `redis unsubscribe ${topic.name}`))
  }

  // ---- Connection events.

  subscriber.on('close', () => {
    subscribed.clear()
    generation++
    for (const topic of topics.values()) topic.startSync()
  })
  subscriber.on('ready', () => void resubscribe())
  publisher.on('close', () => {
    epochKnown = Promise.resolve(false)
    // Nothing waits on a connection that is gone: the publishers learn at once that it is queued.
    for (const message of outbox) message.settle('queued')
  })
  publisher.on('ready', () => {
    epochKnown = refreshEpoch(publisher).then(
      () => true,
      (error: unknown) => {
        onError(error, 'redis epoch')
        return false
      },
    )
    void epochKnown.then(() => {
      kick()
      for (const topic of topics.values()) if (topic.syncing) void sync(topic)
    })
  })

  const heartbeat = setInterval(() => {
    for (const connection of [publisher, subscriber]) {
      if (connection.status !== 'ready') continue
      connection.ping().catch((error: unknown) => {
        if (isTimeout(error)) {
          onError(new Error(`Redis did not answer a heartbeat within ${commandTimeoutMs} ms: reconnecting`), 'redis heartbeat')
          connection.disconnect(true)
        }
      })
    }
  }, heartbeatMs).unref()

  /** A history read for a resumption: entries, or the reason it cannot be served. */
  async function readHistory(name: string, after: StreamId, upTo: StreamId, count: number, tag: string, seen: ReadonlyMap<string, number>): Promise<HistoryEntry[]> {
    if (publisher.status !== 'ready' || !(await epochKnown)) throw new HistoryUnavailableError('Redis is unreachable: the history cannot be read now')
    if (context.tag !== tag) throw new ResyncRequiredError('other-epoch', 'Redis restarted during the replay: the history is gone')
    let page: Awaited<ReturnType<typeof readLog>>
    try {
      page = await readLog(name, after, formatStreamId(upTo), count, seen)
    } catch (error) {
      if (isTimeout(error)) publisher.disconnect(true)
      throw new HistoryUnavailableError(`reading the history from Redis failed: ${(error as Error).message}`, { cause: error })
    }
    if (page === 'future') throw new ResyncRequiredError('malformed', 'the cursor is malformed')
    if ('gap' in page) throw new ResyncRequiredError('trimmed', 'the history no longer reaches back to this cursor')
    return page.entries.map((entry) => ({ id: entry.id, origin: entry.origin, seq: entry.seq, payload: decode(entry.text) }))
  }

  return {
    async publish<T extends Topic>(topic: T, payload: TopicMap[T], publishOptions?: PublishOptions): Promise<PublishOutcome> {
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
        reportDrop(topic)
        message.settle('dropped')
      } else if (publisher.status !== 'ready') {
        message.settle('queued')
      } else {
        timer = setTimeout(() => message.settle('queued'), handoffTimeoutMs)
        kick()
      }
      return outcome
    },
    subscribe<T extends Topic>(name: T, listener: Listener<T>, subscribeOptions?: SubscribeOptions) {
      if (closed) throw new BusClosedError()
      const topic = topics.get(name) ?? addTopic(name)
      const entry = listener as unknown as (payload: unknown, mark: DeliveryMark) => void
      topic.listeners.add(entry)
      const onGap = subscribeOptions?.onGap
      if (onGap) topic.gapListeners.add(onGap)
      return () => {
        topic.listeners.delete(entry)
        if (onGap) topic.gapListeners.delete(onGap)
        if (topic.listeners.size === 0) removeTopic(topic)
      }
    },
    resume<T extends Topic>(name: T, text: string, key: string = name): Resumption<T> {
      const cursor = parseCursor(text)
      // A position far ahead of any clock is not one Redis gave.
      if (!cursor || cursor.position.ms > Date.now() + 60_000) throw new ResyncRequiredError('malformed', 'the cursor is malformed')
      if (cursor.tag !== context.tag) throw new ResyncRequiredError('other-epoch', 'the cursor is from another deployment, or from before Redis restarted')
      if (cursor.history !== historyHash(name, key)) throw new ResyncRequiredError('other-history', 'the cursor is from another topic')
      const topic = topics.get(name)
      const tag = context.tag
      const stream = key === name ? logName(name) : `hist:${name}:${key}`
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
              timer = setTimeout(() => reject(new HistoryUnavailableError('this gateway has not caught up with Redis yet: the history cannot be read now')), commandTimeoutMs)
            })
            await Promise.race([topic.positioned, timeout]).finally(() => clearTimeout(timer))
          }
          // One instant: the position, and which own messages the log has still not shown back.
          const pendingNow = new Set(topic.pending)
          return {
            upTo: topic.last!,
            ownPending: candidates.filter((message) => pendingNow.has(message)).map((message) => ({ seq: message.seq, payload: () => decode(message.text) })),
          }
        },
        seenInLog: (origin) => topic?.seenInLog(origin),
        currentPosition: () => topic?.last,
        read: (after, upTo, count) => readHistory(stream, after, upTo, count, tag, cursor.seen),
      })
    },
    /** Resolves when Redis answers on both connections and every subscription made so far is in place. */
    async ping() {
      if (closed) throw new BusClosedError()
      if (subscriber.status !== 'ready') throw new Error(`the Redis subscriber connection is ${subscriber.status}`)
      await Promise.all([publisher.ping(), ...pending])
    },
    async close() {
      if (closed) return
      closed = true
      clearInterval(heartbeat)
      // What is queued gets a moment to reach Redis, if it answers; the rest is given up.
      const deadline = Date.now() + CLOSE_DRAIN_MS
      while (outbox.length && publisher.status === 'ready' && Date.now() < deadline) {
        kick()
        await sleep(10)
      }
      abandoned = true
      const left = outbox.shift(outbox.length)
      for (const message of left) message.settle('dropped')
      if (left.length) {
        counts.dropped += left.length
        onError(new Error(`the bus closed with ${left.length} message(s) not handed to Redis: other processes never get them`), 'redis publish')
      }
      topics.clear()
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
