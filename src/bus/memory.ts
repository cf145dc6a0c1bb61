/**
 * The in-memory bus: one process, no service. Listeners run synchronously in publish order;
 * a listener that throws is reported and does not stop the others. Each topic keeps its history
 * in memory (bounded by count and age), and cursors carry the bus's random epoch, so a cursor
 * from before a restart answers RESYNC_REQUIRED.
 */
import { randomBytes } from 'node:crypto'
import {
  BusClosedError,
  ResyncRequiredError,
  type Bus,
  type Listener,
  type PublishOptions,
  type PublishOutcome,
  type Resumption,
  type Topic,
  type TopicMap,
} from './bus.ts'
import { historyHash, parseCursor } from './cursor.ts'
import { resolveHistoryOptions, type HistoryOptions } from './history-options.ts'
import { DeliveryMark, type CursorContext } from './mark.ts'
import { MemoryHistory } from './memory-history.ts'
import { HistoryResumption } from './resumption.ts'
import { compareStreamIds, type StreamId } from './stream-id.ts'

export interface MemoryBusOptions {
  /** Told about a listener that threw. @default logs nothing */
  onListenerError?: (error: unknown, topic: string) => void
  /** How much history each topic keeps. @default see HistoryOptions */
  history?: HistoryOptions
}

export interface MemoryBus extends Bus {
  listenerCount(): number
  /** Histories held, for diagnostics. */
  historyCount(): number
}

const ORIGIN = 'local'

export function createMemoryBus(options: MemoryBusOptions = {}): MemoryBus {
  const listeners = new Map<string, Set<(payload: unknown, mark: DeliveryMark) => void>>()
  const historyOptions = resolveHistoryOptions(options.history)
  const history = new MemoryHistory(historyOptions)
  const context: CursorContext = { tag: randomBytes(8).toString('base64url'), origin: ORIGIN }
  let last: StreamId = { ms: 0, seq: 0 }
  let seq = 0
  let closed = false
  // Ages out quiet histories; unref'd, so it never keeps the process alive.
  const sweeper = setInterval(() => history.sweep(Date.now()), Math.min(60_000, historyOptions.maxAgeMs)).unref()

  /** The next position: the clock, kept increasing. */
  const nextId = (): StreamId => {
    const now = Date.now()
    last = now > last.ms ? { ms: now, seq: 0 } : { ms: last.ms, seq: last.seq + 1 }
    return last
  }

  const name = (topic: string, key: string) => `${topic}\u0000${key}`

  return {
    async publish<T extends Topic>(
      topic: T,
      payload: TopicMap[T],
      publishOptions?: PublishOptions,
    ): Promise<PublishOutcome> {
      if (closed) throw new BusClosedError()
      const id = nextId()
      const entry = { id, origin: ORIGIN, seq: ++seq, payload }
      const keys = publishOptions?.history?.length ? new Set(publishOptions.history) : [topic]
      for (const key of keys) history.append(name(topic, key), entry)
      const mark = new DeliveryMark(context, topic, id, ORIGIN, entry.seq, id, undefined)
      for (const listener of [...(listeners.get(topic) ?? [])]) {
        try {
          listener(payload, mark)
        } catch (error) {
          options.onListenerError?.(error, topic)
        }
      }
      return 'sent'
    },
    subscribe<T extends Topic>(topic: T, listener: Listener<T>) {
      let set = listeners.get(topic)
      if (!set) listeners.set(topic, (set = new Set()))
      const entry = listener as unknown as (payload: unknown, mark: DeliveryMark) => void
      set.add(entry)
      return () => {
        set.delete(entry)
        if (set.size === 0 && listeners.get(topic) === set) listeners.delete(topic)
      }
    },
    resume<T extends Topic>(topic: T, text: string, key: string = topic): Resumption<T> {
      const cursor = parseCursor(text)
      if (!cursor) throw new ResyncRequiredError('malformed', 'the cursor is malformed')
      if (cursor.tag !== context.tag)
        throw new ResyncRequiredError(
          'other-epoch',
          'the cursor is from another deployment or from before the gateway restarted',
        )
      if (compareStreamIds(cursor.position, last) > 0)
        throw new ResyncRequiredError('malformed', 'the cursor is malformed')
      if (cursor.history !== historyHash(topic, key))
        throw new ResyncRequiredError('other-history', 'the cursor is from another topic')
      return new HistoryResumption<T>({
        context,
        topic,
        key,
        cursor,
        ownSeqAtStart: seq,
        position: async () => ({ upTo: last, ownPending: [] }),
        seenInLog: () => seq,
        currentPosition: () => last,
        read: async (after, until, count) => history.read(name(topic, key), after, until, count, Date.now()),
      })
    },
    async ping() {
      if (closed) throw new BusClosedError()
    },
    async close() {
      closed = true
      listeners.clear()
      clearInterval(sweeper)
    },
    listenerCount: () => [...listeners.values()].reduce((sum, set) => sum + set.size, 0),
    historyCount: () => history.size,
  }
}
