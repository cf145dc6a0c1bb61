/**
 * The bus carries events between the writers (the realtime Prisma extension, room mutations)
 * and every gateway instance, and keeps each topic's recent history so that a client can resume
 * where it left off. In memory by default; other backends implement the same contract
 * (test/bus.contract.test.ts runs it over each).
 */
import { ClosedError, ResyncError, ServiceUnavailableError } from '../errors.ts'
import type { ModelEvent } from '../events.ts'
import type { RoomEnvelope } from '../rooms/messages.ts'
import type { StreamId } from './stream-id.ts'

/**
 * The typed topic map: topic name → payload. Model events travel on `model:<Model>`; other
 * features add their topics here.
 */
export interface TopicMap {
  [topic: `model:${string}`]: ModelEvent
  /** Room broadcasts and blasts: every instance delivers them to its own connections. */
  'rooms:message': RoomEnvelope
  /** Rooms whose presence changed on the publishing instance: watchers read them again (docs/rooms.md, Presence). */
  'presence:changed': { readonly rooms: readonly string[] }
}

export type Topic = keyof TopicMap & string

/**
 * Where a message stands in its topic, as this process delivers it: what its cursors are made
 * of. Hand `cursor()` to the clients that receive the message.
 */
export interface Mark {
  /** The message's position in the topic's log; undefined for this process's own messages (delivered before the log placed them). */
  readonly id: StreamId | undefined
  /** The process that published it. */
  readonly origin: string
  /** Its number among that process's publishes (increasing). */
  readonly seq: number
  /**
   * The cursor of this message in history `key`: the topic itself (the default; model topics),
   * or one of the keys it was published with (`PublishOptions.history`: the rooms of a broadcast).
   */
  cursor(key?: string): string
}

export type Listener<T extends Topic> = (payload: TopicMap[T], mark: Mark) => void

/** Why a process could not deliver everything of a topic to its listeners. */
export interface Gap {
  readonly topic: string
  readonly reason: string
}

export interface SubscribeOptions {
  /**
   * Told when this process missed messages of the topic that it cannot deliver any more (after a
   * lost Redis connection, the history no longer reached back far enough): its subscribers
   * should be told to resynchronise (RESYNC_REQUIRED).
   */
  onGap?: (gap: Gap) => void
}

export interface PublishOptions {
  /**
   * Histories this message is kept in besides its topic's own log, each resumable on its own
   * (`Bus.resume(topic, cursor, key)`): the rooms a broadcast is for. Empty or absent: the
   * topic's own history.
   */
  readonly history?: readonly string[]
}

/**
 * What became of the cross-process part of a publish (local listeners always got it at once):
 * - `sent`: handed to every other process (Redis took it), or there is no other process;
 * - `queued`: waiting in the bounded outbox for Redis to return; it will be sent in order;
 * - `dropped`: the outbox was full; other processes will never receive it (counted and logged).
 */
export type PublishOutcome = 'sent' | 'queued' | 'dropped'

/** A message read back from history, with the mark to deliver it with. */
export interface Replayed<T extends Topic> {
  readonly payload: TopicMap[T]
  readonly mark: Mark
}

/**
 * A subscription resuming from a cursor: its replay, then the rules its live messages follow.
 * Made by `Bus.resume` right after the subscription started receiving live messages (into a
 * buffer), so that replay and live meet with no gap and no duplicate.
 */
export interface Resumption<T extends Topic> {
  /**
   * The next page of the replay, in order; an empty page once it is complete. Rejects with
   * `ResyncRequiredError` when the history no longer reaches back to the cursor (even mid-way),
   * or `HistoryUnavailableError` when it cannot be read now.
   */
  next(): Promise<readonly Replayed<T>[]>
  /** False for a live message this subscription already has (replayed, or seen before the cursor). */
  wants(mark: Mark): boolean
  /**
   * The cursor to hand the client with a live message (call it while delivering). The same
   * string as `mark.cursor(key)` unless this subscription knows more than the process does.
   */
  cursor(mark: Mark): string
  /**
   * True once the replay is read and, from now on, every live message is wanted and takes its
   * standard cursor (`mark.cursor(key)`): the subscription can share the work of others. False
   * while this process lags behind the cursor or has not yet seen in the log messages the
   * cursor says the client has (their publisher is cut off from Redis). It never turns false again.
   */
  settled(): boolean
}

export interface Bus {
  /**
   * Sends `payload` to every listener of `topic`, in every process on this bus, and keeps it in
   * the topic's history. Listeners in this process are called before `publish` returns and
   * never wait on the network. Resolves with what became of the cross-process part; rejects
   * only when the bus is closed.
   */
  publish<T extends Topic>(topic: T, payload: TopicMap[T], options?: PublishOptions): Promise<PublishOutcome>
  /** Calls `listener` for every payload published on `topic` from now on; returns the unsubscribe function. */
  subscribe<T extends Topic>(topic: T, listener: Listener<T>, options?: SubscribeOptions): () => void
  /**
   * Resumes history `key` of `topic` (default: the topic itself) after `cursor`. Call it once the
   * subscription receives live messages. Throws `ResyncRequiredError` at once for a cursor that
   * is malformed or belongs to another history, deployment or epoch.
   */
  resume<T extends Topic>(topic: T, cursor: string, key?: string): Resumption<T>
  /**
   * The newest message the topic's log holds, as every process has been or will be given it;
   * undefined when it holds none. For a publisher taking over from one that died (change
   * capture) to tell what was published already. Buses without a shared log leave it out.
   */
  latest?<T extends Topic>(topic: T): Promise<TopicMap[T] | undefined>
  /** Resolves when the bus can carry messages (for `/ready`). */
  ping(): Promise<void>
  /** Stops delivery and releases connections; later publishes reject. */
  close(): Promise<void>
  /**
   * What the bus counted of its faults (docs/architecture.md §9), read by /metrics at each
   * scrape. Optional: a bus without an outbox or a log to lose (the memory bus) has none.
   */
  stats?(): BusStats
}

/** A bus's fault counters: now for the outbox, since the bus was made for the rest. */
export interface BusStats {
  /** Messages waiting in the outbox for Redis now. */
  readonly queued: number
  /** Bytes of those messages' payloads. */
  readonly queuedBytes: number
  /** Times this process found it missed messages of a topic it can no longer deliver (`onGap`). */
  readonly gaps: number
  /** Messages sent again to a Redis that came back without its data. */
  readonly replayed: number
}

/** The bus was closed (the gateway is shutting down). */
export class BusClosedError extends ClosedError {
  override readonly name = 'BusClosedError'
  constructor() {
    super('the bus is closed')
  }
}

/** Why a cursor cannot be resumed from. */
export const resyncReasons = ['malformed', 'other-history', 'other-epoch', 'trimmed'] as const
export type ResyncReason = (typeof resyncReasons)[number]

/** The history no longer reaches back to a cursor: the client must reload and subscribe again. */
export class ResyncRequiredError extends ResyncError {
  override readonly name = 'ResyncRequiredError'
  constructor(
    override readonly reason: ResyncReason,
    message: string,
  ) {
    super(reason, message)
  }
}

/** The history could not be read (Redis unreachable); resuming may succeed later. */
export class HistoryUnavailableError extends ServiceUnavailableError {
  override readonly name = 'HistoryUnavailableError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('redis', message, options)
  }
}
