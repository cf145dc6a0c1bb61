/**
 * One topic as a Redis bus process sees it: its listeners, its position in the topic's log
 * (`last`: every entry up to it was delivered here, or came before this process subscribed),
 * what it has seen of each publisher, and its own messages the log has not shown back yet.
 *
 * Entries reach it in log order, from pub/sub or, after a break, from a catch-up read of the log;
 * while it catches up (`syncing`) pub/sub messages wait in a buffer, and the ones the read
 * already covered are skipped, so each entry is delivered once, in order. A message another
 * process sends again to a Redis that lost its data (see `handed.ts`) is delivered only if it
 * was not already: each origin's sequence numbers only grow along a topic's log.
 */
import type { Gap } from './bus.ts'
import { decode } from './codec.ts'
import { FrontQueue } from './front-queue.ts'
import { DeliveryMark, type CursorContext } from './mark.ts'
import type { OutboxMessage } from './outbox.ts'
import { compareStreamIds, type StreamId } from './stream-id.ts'

/** An entry of the log as pub/sub or a read brings it. */
export interface LogEntry {
  readonly id: StreamId
  readonly origin: string
  readonly seq: number
  /** The payload as the publisher encoded it. */
  readonly text: string
}

type RawListener = (payload: unknown, mark: DeliveryMark) => void

/** Origins remembered per topic; the oldest are forgotten past it (cursors then keep them). */
const MAX_ORIGINS = 4096
/** Pub/sub messages buffered while catching up; past it they are dropped, since the catch-up reads them from the log. */
const MAX_BUFFERED = 10_000

const ZERO: StreamId = { ms: 0, seq: 0 }

export class RedisTopic {
  readonly listeners = new Set<RawListener>()
  readonly gapListeners = new Set<(gap: Gap) => void>()
  /** This process's position in the topic's log; undefined until the first sync. */
  last: StreamId | undefined
  /** The id of the Redis data (see `src/redis/link.ts`) whose log `last` is a position in. */
  data: string | undefined
  /** `performance.now()` when the topic stopped receiving (its subscriber connection broke) and has not caught up since. */
  brokeAt: number | undefined
  /** Catching up: pub/sub messages wait in the buffer. */
  syncing = true
  /** The catch-up in progress, if any, and whether another must follow it (the connection broke meanwhile). */
  syncRunning: Promise<void> | undefined
  syncAgain = false
  /** The last sequence number this process published on the topic. */
  ownSeq = 0
  /** The highest of this process's own sequence numbers seen in the log. */
  #ownInLog = 0
  /** Other origins: the highest sequence number seen in the log. */
  readonly #seen = new Map<string, number>()
  /** Own messages published on the topic that the log has not shown back yet, oldest first. */
  readonly #pending = new FrontQueue<OutboxMessage>()
  #buffer: LogEntry[] = []

  /** Resolves once the topic has a position in the log (after its first sync). */
  readonly positioned: Promise<void>
  #onPositioned!: () => void

  constructor(
    readonly name: string,
    readonly context: CursorContext,
    readonly report: (error: unknown, topic: string) => void,
  ) {
    this.positioned = new Promise((resolve) => (this.#onPositioned = resolve))
  }

  /** Where a sync found the end of the log in the Redis data `data`: the process has seen everything up to it. */
  start(position: StreamId, data: string): void {
    this.last = position
    this.data = data
    this.#onPositioned()
  }

  /** A message from pub/sub. */
  receive(entry: LogEntry): void {
    if (!this.syncing) return this.apply(entry)
    // The catch-up that ends this sync reads everything published until it ends: what does not
    // fit here is read from the log instead.
    if (this.#buffer.length >= MAX_BUFFERED) this.#buffer = []
    this.#buffer.push(entry)
  }

  /** Takes an entry of the log, in order; one already passed is only noted. */
  apply(entry: LogEntry): void {
    const delivered = this.#seen.get(entry.origin)
    this.#note(entry.origin, entry.seq)
    if (this.last && compareStreamIds(entry.id, this.last) <= 0) return
    this.last = entry.id
    if (entry.origin === this.context.origin) return
    // Sent again to a Redis that lost its data, and delivered here before.
    if (delivered !== undefined && entry.seq <= delivered) return
    let payload: unknown
    try {
      payload = decode(entry.text)
    } catch (error) {
      this.report(error, this.name)
      return
    }
    this.#deliver(
      payload,
      new DeliveryMark(this.context, this.name, entry.id, entry.origin, entry.seq, entry.id, this.#ownUnseen()),
    )
  }

  /** This process's own message: delivered at once, before Redis places it. `queued` when it is on its way to the log. */
  publishOwn(payload: unknown, message: OutboxMessage, queued: boolean): void {
    this.ownSeq = message.seq
    if (queued) this.#pending.push(message)
    this.#deliver(
      payload,
      new DeliveryMark(
        this.context,
        this.name,
        undefined,
        this.context.origin,
        message.seq,
        this.last ?? ZERO,
        message.seq,
      ),
    )
  }

  /** Own messages the log has not shown back yet, oldest first. */
  get pending(): readonly OutboxMessage[] {
    return this.#pending.toArray()
  }

  /** The highest sequence number of `origin` seen in the log. */
  seenInLog(origin: string): number | undefined {
    return origin === this.context.origin ? this.#ownInLog : this.#seen.get(origin)
  }

  /** A break in the connection at `now`: buffer until the next sync. */
  startSync(now: number): void {
    this.syncing = true
    this.brokeAt ??= now
  }

  /** The catch-up read everything up to `last`: the buffered messages follow. */
  finishSync(): void {
    const buffered = this.#buffer
    this.#buffer = []
    this.syncing = false
    this.brokeAt = undefined
    for (const entry of buffered) this.apply(entry)
  }

  /** Some entries after `last` are gone: the subscribers must resynchronise; the process moves on to `to`. */
  gap(reason: string, to: StreamId | undefined): void {
    if (to && (!this.last || compareStreamIds(to, this.last) > 0)) this.last = to
    for (const listener of [...this.gapListeners]) {
      try {
        listener({ topic: this.name, reason })
      } catch (error) {
        this.report(error, this.name)
      }
    }
  }

  #note(origin: string, seq: number): void {
    if (origin === this.context.origin) {
      if (seq <= this.#ownInLog) return
      this.#ownInLog = seq
      this.#pending.shiftWhile((message) => message.seq <= seq)
      return
    }
    const seen = this.#seen.get(origin)
    if (seen !== undefined && seq <= seen) return
    if (seen === undefined && this.#seen.size >= MAX_ORIGINS) this.#seen.delete(this.#seen.keys().next().value!)
    this.#seen.set(origin, seq)
  }

  #ownUnseen(): number | undefined {
    return this.ownSeq > this.#ownInLog ? this.ownSeq : undefined
  }

  #deliver(payload: unknown, mark: DeliveryMark): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(payload, mark)
      } catch (error) {
        this.report(error, this.name)
      }
    }
  }
}
