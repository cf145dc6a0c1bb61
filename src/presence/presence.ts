/**
 * Presence on one gateway instance (docs/architecture.md §13): who is in a room, and who came and
 * went, from the rooms registry (cluster-wide).
 *
 * How a change reaches every gateway: the registry tells the instance holding a connection that
 * its presence may have changed (a join, a leave, a close, new meta); that instance publishes the
 * names of the rooms concerned on the bus (`presence:changed`, batched), and every instance
 * watching one of them reads it again from the registry (room-presence.ts). The registry, not
 * the notification, carries the state, so a lost notification costs only latency: each watched
 * room is also read every `refreshMs`, which is also how a dead gateway's members leave.
 */
import type { Viewer } from '../auth/viewer.ts'
import type { Bus } from '../bus/bus.ts'
import { clientErrorsJson, ConfigError, forbidden, positiveSetting } from '../errors.ts'
import type { DeliveryHub, HubSubscription } from '../delivery/hub.ts'
import type { Selection } from '../delivery/selection.ts'
import type { PresenceEntry, RoomRegistry } from '../rooms/registry.ts'
import { membersOf, sortedMembers, type PresenceEvent, type PresenceMember } from './members.ts'
import { RoomPresence } from './room-presence.ts'

export interface PresenceOptions {
  /**
   * How long a member whose last connection left stays present before its `LEAVE`, in ms; a
   * connection back within it sends neither `LEAVE` nor `JOIN`. (`MIZZEN_PRESENCE_LEAVE_GRACE_MS`)
   * @default 5000
   */
  leaveGraceMs?: number
  /**
   * The batch window of a room's presence events, in ms: at most one event of each kind per room
   * per window, carrying every change in it. (`MIZZEN_PRESENCE_BATCH_MS`)
   * @default 50
   */
  batchMs?: number
  /**
   * Largest meta a connection may show in a room (`room(presence:)`, `updatePresence`), in bytes
   * of its JSON text; bigger is refused with BAD_USER_INPUT. (`MIZZEN_PRESENCE_META_MAX_BYTES`)
   * @default 1024
   */
  maxMetaBytes?: number
  /**
   * How often a watched room is read even when no change was announced, in ms: the bound on how
   * long a dead gateway's members, or a change whose notification was lost, take to show. 0
   * turns it off (one process: every change is announced).
   * @default 1000 with a registry shared between processes, 0 with the in-memory one
   */
  refreshMs?: number
}

export interface PresenceDependencies {
  readonly registry: RoomRegistry
  readonly bus: Bus
  readonly hub: DeliveryHub
  /** Whether the registry is shared between processes (the periodic read is then on by default). */
  readonly shared: boolean
  readonly onError: (error: unknown, context: string) => void
}

/** The hub topic of a room's presence events on this gateway. */
const presenceTopic = (room: string) => `presence:${room}`

/** A presence subscription receives every event of its room as it is. */
class PresenceSelection implements Selection<PresenceEvent, PresenceEvent, PresenceEvent> {
  readonly kind = 'presence'
  see(event: PresenceEvent): PresenceEvent {
    return event
  }
}
const selection = new PresenceSelection()

/**
 * A watcher that may read a room's presence only for being one of its members
 * (`Access.assertReadMembers`): its own connection, or (a user) any connection of its user.
 */
export interface MemberWatcher {
  readonly connectionId: string | undefined
  readonly userId: string | undefined
}

interface Watched {
  readonly presence: RoomPresence
  readonly started: Promise<void>
  watchers: number
  /** The subscriptions of member watchers, ended (FORBIDDEN) at the first read that no longer has them in. */
  readonly members: Map<HubSubscription<PresenceEvent, PresenceEvent>, MemberWatcher>
}

export class Presence {
  readonly leaveGraceMs: number
  readonly batchMs: number
  readonly maxMetaBytes: number
  readonly refreshMs: number
  readonly #dependencies: PresenceDependencies
  readonly #watched = new Map<string, Watched>()
  /** Rooms whose presence changed on this instance, to announce at the end of the batch window. */
  readonly #changed = new Set<string>()
  #announce: NodeJS.Timeout | undefined
  /** Joins of `room(name)` subscriptions in flight, by connection then room (see `isMember`). */
  readonly #joining = new Map<string, Map<string, Promise<unknown>>>()
  readonly #detach: (() => void)[]

  constructor(dependencies: PresenceDependencies, options: PresenceOptions = {}) {
    this.leaveGraceMs = nonNegative('presence.leaveGraceMs', options.leaveGraceMs ?? 5000)
    this.batchMs = positiveSetting('presence.batchMs', options.batchMs ?? 50, 'ms')
    this.maxMetaBytes = positiveSetting('presence.maxMetaBytes', options.maxMetaBytes ?? 1024)
    this.refreshMs = nonNegative('presence.refreshMs', options.refreshMs ?? (dependencies.shared ? 1000 : 0))
    this.#dependencies = dependencies
    this.#detach = [
      dependencies.registry.onPresenceChange((_connectionId, rooms) => this.#localChange(rooms)),
      dependencies.bus.subscribe('presence:changed', ({ rooms }) => {
        for (const room of rooms) this.#watched.get(room)?.presence.changed()
      }),
    ]
  }

  /**
   * A `presence(room)` subscription: a SYNC event with every member first, then the changes.
   * Rejects (UNAVAILABLE) when the registry cannot be read. A `member` watcher's subscription
   * ends with FORBIDDEN at the first read of the room that finds neither its connection nor (a
   * user) a connection of its user in it: leaving the room takes away what joining gave.
   */
  async subscribe(room: string, member?: MemberWatcher): Promise<HubSubscription<PresenceEvent, PresenceEvent>> {
    const watched = this.#watch(room)
    try {
      await watched.started
    } catch (error) {
      this.#unwatch(room, watched)
      throw error
    }
    const subscription = this.#dependencies.hub.subscribe<PresenceEvent, PresenceEvent>(
      presenceTopic(room),
      selection,
      () => {
        watched.members.delete(subscription)
        this.#unwatch(room, watched)
      },
    )
    if (member) watched.members.set(subscription, member)
    // In the same turn as the subscription: no event can fall between the SYNC and the live ones.
    const sync = watched.presence.sync()
    subscription.replay([sync], (live) => live.seq <= sync.seq)
    return subscription
  }

  /** The members of `room` now (no grace: those with a connection in it), sorted by key. */
  async members(room: string): Promise<PresenceMember[]> {
    return sortedMembers(membersOf(await this.#dependencies.registry.presence(room)).values())
  }

  /**
   * Whether `viewer` is a member of `room`: its own connection is in it, or (a user) a connection
   * of the same user is, on any gateway. Over HTTP there is no own connection: only the second
   * counts. A `room(name)` subscription of this connection that is still joining is waited for,
   * so a client may send `room` and `presence` subscriptions one after the other.
   */
  async isMember(room: string, viewer: Viewer, connectionId: string | undefined): Promise<boolean> {
    const { registry } = this.#dependencies
    if (connectionId) {
      await this.#joining
        .get(connectionId)
        ?.get(room)
        ?.catch(() => {})
      if ((await registry.roomsOf(connectionId))?.includes(room)) return true
    }
    if (viewer.role !== 'user' || viewer.id === undefined) return false
    return (await registry.presence(room)).some((entry) => entry.userId === viewer.id)
  }

  /** A `room(name)` subscription of `connectionId` is joining `room` until `join` settles. */
  joining<T>(connectionId: string, room: string, join: Promise<T>): Promise<T> {
    let rooms = this.#joining.get(connectionId)
    if (!rooms) this.#joining.set(connectionId, (rooms = new Map()))
    rooms.set(room, join)
    const done = () => {
      if (rooms.get(room) !== join) return
      rooms.delete(room)
      if (rooms.size === 0 && this.#joining.get(connectionId) === rooms) this.#joining.delete(connectionId)
    }
    join.then(done, done)
    return join
  }

  /** Rooms watched on this gateway (diagnostics, leak checks). */
  get watchedRooms(): number {
    return this.#watched.size
  }

  close(): void {
    for (const detach of this.#detach.splice(0)) detach()
    clearTimeout(this.#announce)
    for (const { presence } of this.#watched.values()) presence.close()
    this.#watched.clear()
  }

  #watch(room: string): Watched {
    let watched = this.#watched.get(room)
    if (!watched) {
      const presence = new RoomPresence(room, {
        registry: this.#dependencies.registry,
        emit: (event) => this.#dependencies.hub.deliver(presenceTopic(room), event),
        graceMs: this.leaveGraceMs,
        batchMs: this.batchMs,
        refreshMs: this.refreshMs,
        onError: (error) => this.#dependencies.onError(error, `reading the presence of room "${room}" failed`),
        onRead: (entries) => this.#revoke(room, entries),
      })
      watched = { presence, started: presence.start(), watchers: 0, members: new Map() }
      // Its failure reaches the subscriber that waits for it; nobody else needs it.
      watched.started.catch(() => {})
      this.#watched.set(room, watched)
    }
    watched.watchers++
    return watched
  }

  #unwatch(room: string, watched: Watched): void {
    if (--watched.watchers > 0) return
    watched.presence.close()
    if (this.#watched.get(room) === watched) this.#watched.delete(room)
  }

  /** Ends the watch of each member watcher of `room` that `entries` (a read of it) no longer has in. */
  #revoke(room: string, entries: readonly PresenceEntry[]): void {
    const watched = this.#watched.get(room)
    if (!watched?.members.size) return
    // Once per read, not per watcher: in a big room most members watch it.
    const connections = new Set<string>()
    const users = new Set<string>()
    for (const entry of entries) {
      connections.add(entry.connectionId)
      if (entry.role === 'user' && entry.userId !== null) users.add(entry.userId)
    }
    for (const [subscription, { connectionId, userId }] of watched.members) {
      // A `room` subscription of its connection still joining: the registry may not show it yet.
      if (connectionId && this.#joining.get(connectionId)?.has(room)) continue
      if ((connectionId !== undefined && connections.has(connectionId)) || (userId !== undefined && users.has(userId)))
        continue
      watched.members.delete(subscription)
      subscription.fail(
        clientErrorsJson(
          forbidden(`no longer a member of room "${room}": only its members and services may watch its presence`),
        ),
      )
    }
  }

  /** A connection of this instance changed in `rooms`: announce them to every instance, batched. */
  #localChange(rooms: readonly string[]): void {
    for (const room of rooms) this.#changed.add(room)
    this.#announce ??= setTimeout(() => {
      this.#announce = undefined
      const changed = [...this.#changed]
      this.#changed.clear()
      this.#dependencies.bus
        .publish('presence:changed', { rooms: changed })
        .catch((error: unknown) => this.#dependencies.onError(error, 'announcing a presence change failed'))
    }, this.batchMs)
  }
}

function nonNegative(setting: string, value: number): number {
  if (Number.isSafeInteger(value) && value >= 0) return value
  throw new ConfigError(setting, `expected a non-negative integer (ms), got ${value}`)
}
