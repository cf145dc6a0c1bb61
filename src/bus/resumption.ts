/**
 * Resuming one history from a cursor, for either bus.
 *
 * The subscription already receives live messages (into a buffer) when the resumption is made.
 * At its first page the resumption takes, in one instant, the process's position `A` in the
 * topic's log (everything up to it was delivered here) and its own messages the log has not
 * shown back yet (all after `A`). With `P` the cursor's position:
 * - the replay is the entries in (P, A], then those own messages, less what the cursor says the
 *   client has seen (its `seen` origins). When the cursor is ahead of this process (P > A), the
 *   entries in (A, P] are read only to learn which of its own messages the client already has;
 * - a live message is wanted when it is after max(P, A) in the log, or, for this process's own
 *   messages (live before the log places them), when it was published after the resumption and
 *   the replay did not carry it; and in both cases when the cursor does not cover it.
 * Replay and live therefore neither overlap nor leave a gap, whatever is published meanwhile.
 *
 * Cursors handed out on the resumed subscription keep what the cursor said the client saw from
 * other processes until this process has seen those messages in the log itself (a client that
 * resumes again elsewhere while their publisher is cut off from Redis must not get them twice).
 */
import type { Mark, Replayed, Resumption, Topic, TopicMap } from './bus.ts'
import { formatCursor, historyHash, type Cursor } from './cursor.ts'
import { FixedMark, type CursorContext, type DeliveryMark } from './mark.ts'
import { compareStreamIds, laterStreamId, type StreamId } from './stream-id.ts'

/** One entry of a history, decoded. */
export interface HistoryEntry {
  readonly id: StreamId
  readonly origin: string
  readonly seq: number
  readonly payload: unknown
}

/** One of this process's own messages that the log has not shown back yet. */
export interface PendingOwn {
  readonly seq: number
  readonly payload: () => unknown
}

/** Where the process stands, taken in one instant. */
export interface ProcessPosition {
  /** Its position in the topic's log: every entry up to it was delivered here. */
  readonly upTo: StreamId
  /** Its own messages in this history, published before the resumption, that the log has not shown back. */
  readonly ownPending: readonly PendingOwn[]
}

export interface ResumptionSource {
  readonly context: CursorContext
  readonly topic: string
  readonly key: string
  readonly cursor: Cursor
  /** This process's last own sequence number when the resumption was made. */
  readonly ownSeqAtStart: number
  /** The process's position (waits, briefly, for a process that has none yet); rejects when it cannot have one now. */
  position(): Promise<ProcessPosition>
  /** The highest sequence number of `origin` this process has seen in the topic's log (live). */
  seenInLog(origin: string): number | undefined
  /** The process's position in the topic's log now (live). */
  currentPosition(): StreamId | undefined
  /** Entries after `after` up to `upTo`, at most `count`; rejects when the history cannot serve them. */
  read(after: StreamId, upTo: StreamId, count: number): Promise<readonly HistoryEntry[]>
}

/** Entries read per page of a replay. */
export const REPLAY_PAGE = 256

export class HistoryResumption<T extends Topic> implements Resumption<T> {
  readonly #source: ResumptionSource
  readonly #history: string
  readonly #self: string
  /** Known at the first page: live messages at or before it are covered. */
  #floor: StreamId | undefined
  #after: StreamId
  #ownPending: readonly PendingOwn[] = []
  #phase: 'start' | 'history' | 'own' | 'done' = 'start'
  /** Highest sequence number per origin among the entries read (the replay, and what the cursor was ahead by). */
  readonly #read = new Map<string, number>()

  constructor(source: ResumptionSource) {
    this.#source = source
    this.#history = historyHash(source.topic, source.key)
    this.#self = source.context.origin
    this.#after = source.cursor.position
  }

  async next(): Promise<readonly Replayed<T>[]> {
    const source = this.#source
    const position = source.cursor.position
    if (this.#phase === 'start') {
      const { upTo, ownPending } = await source.position()
      this.#ownPending = ownPending
      this.#floor = laterStreamId(position, upTo)
      // Ahead of this process, the cursor's client has entries this process has not delivered yet: read from here.
      if (compareStreamIds(upTo, position) < 0) this.#after = upTo
      this.#phase = 'history'
    }
    while (this.#phase === 'history') {
      if (compareStreamIds(this.#after, this.#floor!) >= 0) {
        this.#phase = 'own'
        break
      }
      const entries = await source.read(this.#after, this.#floor!, REPLAY_PAGE)
      if (entries.length < REPLAY_PAGE) this.#phase = 'own'
      const page: Replayed<T>[] = []
      for (const entry of entries) {
        this.#after = entry.id
        if (entry.seq > (this.#read.get(entry.origin) ?? 0)) this.#read.set(entry.origin, entry.seq)
        if (compareStreamIds(entry.id, position) <= 0 || this.#covered(entry.origin, entry.seq)) continue
        const id = entry.id
        page.push({
          payload: entry.payload as TopicMap[T],
          mark: new FixedMark(id, entry.origin, entry.seq, () => this.#format(id, undefined, false)),
        })
      }
      if (page.length) return page
    }
    if (this.#phase === 'own') {
      this.#phase = 'done'
      const page = this.#ownPending
        .filter((own) => !this.#replayed(own.seq) && !this.#covered(this.#self, own.seq))
        .map(
          (own): Replayed<T> => ({
            payload: own.payload() as TopicMap[T],
            mark: new FixedMark(undefined, this.#self, own.seq, () => this.#format(this.#floor!, own.seq, false)),
          }),
        )
      if (page.length) return page
    }
    return []
  }

  wants(mark: Mark): boolean {
    if (!this.#floor) throw new Error('Resumption.wants() before the replay started')
    if (mark.id) {
      if (compareStreamIds(mark.id, this.#floor) <= 0) return false
    } else if (mark.seq <= this.#source.ownSeqAtStart || this.#replayed(mark.seq)) {
      return false
    }
    return !this.#covered(mark.origin, mark.seq)
  }

  cursor(mark: Mark): string {
    const live = mark as DeliveryMark
    const floor = this.#floor ?? this.#source.cursor.position
    if (compareStreamIds(live.position, floor) >= 0 && !this.#pendingExclusions()) return live.cursor(this.#source.key)
    return this.#format(laterStreamId(live.position, floor), live.ownSeen, true)
  }

  settled(): boolean {
    const position = this.#source.currentPosition()
    return (
      this.#phase === 'done' &&
      position !== undefined &&
      compareStreamIds(position, this.#floor!) >= 0 &&
      !this.#pendingExclusions()
    )
  }

  /** Whether the cursor says the client has this message of `origin`. */
  #covered(origin: string, seq: number): boolean {
    const seen = this.#source.cursor.seen.get(origin)
    return seen !== undefined && seq <= seen
  }

  /** Whether this process's own message `seq` is in the log at or before the floor (the log keeps each process's order). */
  #replayed(seq: number): boolean {
    return seq <= (this.#read.get(this.#self) ?? 0)
  }

  /** Whether some origin's messages the client has seen are not in the log yet, as far as this process knows. */
  #pendingExclusions(): boolean {
    for (const [origin, seq] of this.#source.cursor.seen) if (!this.#inLog(origin, seq)) return true
    return false
  }

  #inLog(origin: string, seq: number): boolean {
    return (this.#source.seenInLog(origin) ?? 0) >= seq || (this.#read.get(origin) ?? 0) >= seq
  }

  /**
   * A cursor at `position` that keeps what the resumed cursor said the client saw. `prune` drops
   * the origins whose messages the log already holds at or before `position`; only live
   * deliveries know that (this process's view of the log is at their position), so replayed
   * messages keep them all, which is never wrong, only longer.
   */
  #format(position: StreamId, ownSeen: number | undefined, prune: boolean): string {
    const seen = new Map<string, number>()
    if (ownSeen !== undefined) seen.set(this.#self, ownSeen)
    for (const [origin, seq] of this.#source.cursor.seen) {
      if (prune && this.#inLog(origin, seq)) continue
      seen.set(origin, Math.max(seen.get(origin) ?? 0, seq))
    }
    return formatCursor({ tag: this.#source.context.tag, history: this.#history, position, seen })
  }
}
