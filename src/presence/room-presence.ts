/**
 * The presence of one room as this gateway's watchers see it (docs/architecture.md §13). The
 * registry is the truth (cluster-wide); this reads it and turns what changed since the last read
 * into events:
 *
 * - batched: a change anywhere only schedules a read, `batchMs` later; every change that came
 *   meanwhile is in it. Reads never overlap and are at least `batchMs` apart, so a room emits at
 *   most one event of each kind (JOIN, UPDATE, LEAVE, in that order) per `batchMs`;
 * - no flapping: a member whose last connection left stays (in `count`, in SYNC) for `graceMs`;
 *   it gets its LEAVE only if it is still away by then, and one that comes back meanwhile gets
 *   no event (an UPDATE if its connections or meta differ);
 * - faults: a read that fails (Redis out of reach) changes nothing and emits nothing; the next
 *   read (the periodic `refreshMs` one at the latest) catches up, with one diff.
 */
import { ServiceUnavailableError } from '../errors.ts'
import type { PresenceEntry, RoomRegistry } from '../rooms/registry.ts'
import {
  membersOf,
  sameMember,
  sortedMembers,
  type PresenceEvent,
  type PresenceKind,
  type PresenceMember,
} from './members.ts'

export interface RoomPresenceOptions {
  readonly registry: RoomRegistry
  /** Receives each event, in order. */
  readonly emit: (event: PresenceEvent) => void
  readonly graceMs: number
  readonly batchMs: number
  /** How often to read even when nothing announced a change (dead gateways, lost notifications); 0: never. */
  readonly refreshMs: number
  readonly onError: (error: unknown) => void
  /** Told what each successful read found, before its events are emitted. */
  readonly onRead?: (entries: readonly PresenceEntry[]) => void
}

export class RoomPresence {
  readonly room: string
  readonly #options: RoomPresenceOptions
  /** The members as the watchers know them (those in their grace included). */
  readonly #visible = new Map<string, PresenceMember>()
  /** Members no longer in the registry, since when (ms). */
  readonly #awaySince = new Map<string, number>()
  #seq = 0
  #readAt = 0
  #batch: NodeJS.Timeout | undefined
  #grace: NodeJS.Timeout | undefined
  #refresh: NodeJS.Timeout | undefined
  #reading: Promise<void> | undefined
  #again = false
  #closed = false

  constructor(room: string, options: RoomPresenceOptions) {
    this.room = room
    this.#options = options
  }

  /** Reads the room for the first time; rejects when the registry cannot answer. */
  async start(): Promise<void> {
    const members = membersOf(await this.#options.registry.presence(this.room))
    for (const [key, member] of members) this.#visible.set(key, member)
    this.#readAt = Date.now()
    if (this.#options.refreshMs > 0 && !this.#closed)
      this.#refresh = setInterval(() => this.changed(), this.#options.refreshMs).unref()
  }

  /** Every member the watchers know, as a SYNC event (numbered as the last event it includes). */
  sync(): PresenceEvent {
    return this.#event('SYNC', sortedMembers(this.#visible.values()), this.#seq)
  }

  /** Presence may have changed: read again, once the batch window is over. */
  changed(): void {
    if (this.#closed) return
    if (this.#reading) {
      this.#again = true
      return
    }
    if (this.#batch) return
    const wait = Math.max(0, this.#readAt + this.#options.batchMs - Date.now())
    this.#batch = setTimeout(
      () => {
        this.#batch = undefined
        this.#reading = this.#read().finally(() => {
          this.#reading = undefined
          if (this.#again) {
            this.#again = false
            this.changed()
          }
        })
      },
      Math.max(wait, this.#options.batchMs),
    )
  }

  close(): void {
    this.#closed = true
    clearTimeout(this.#batch)
    clearTimeout(this.#grace)
    clearInterval(this.#refresh)
  }

  async #read(): Promise<void> {
    let entries: readonly PresenceEntry[]
    try {
      entries = await this.#options.registry.presence(this.room)
    } catch (error) {
      // Nothing known changed: no event. The periodic read retries. The registry reports losing
      // Redis once; anything else is worth a line.
      if (!(error instanceof ServiceUnavailableError)) this.#options.onError(error)
      return
    } finally {
      this.#readAt = Date.now()
    }
    if (this.#closed) return
    this.#options.onRead?.(entries)
    const current = membersOf(entries)
    const now = Date.now()
    const joined: PresenceMember[] = []
    const updated: PresenceMember[] = []
    const left: PresenceMember[] = []
    for (const [key, member] of current) {
      this.#awaySince.delete(key)
      const known = this.#visible.get(key)
      this.#visible.set(key, member)
      if (!known) joined.push(member)
      else if (!sameMember(known, member)) updated.push(member)
    }
    for (const [key, member] of this.#visible) {
      if (current.has(key)) continue
      const since = this.#awaySince.get(key)
      if (since === undefined) this.#awaySince.set(key, now)
      else if (now - since >= this.#options.graceMs) {
        this.#visible.delete(key)
        this.#awaySince.delete(key)
        left.push({ ...member, connections: 0 })
      }
    }
    const emit = (kind: PresenceKind, members: PresenceMember[]) => {
      if (members.length) this.#options.emit(this.#event(kind, sortedMembers(members), ++this.#seq))
    }
    emit('JOIN', joined)
    emit('UPDATE', updated)
    emit('LEAVE', left)
    this.#armGrace(now)
  }

  /** Reads again when the earliest grace ends. */
  #armGrace(now: number): void {
    clearTimeout(this.#grace)
    this.#grace = undefined
    if (this.#awaySince.size === 0) return
    const earliest = Math.min(...this.#awaySince.values())
    this.#grace = setTimeout(() => this.changed(), Math.max(0, earliest + this.#options.graceMs - now)).unref()
  }

  #event(kind: PresenceKind, members: readonly PresenceMember[], seq: number): PresenceEvent {
    return { kind, room: this.room, members, count: this.#visible.size, at: new Date(), seq }
  }
}
