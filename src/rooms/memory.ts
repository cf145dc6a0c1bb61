/**
 * The in-memory rooms registry: one process, every connection local. Two indexes kept in step,
 * room → members and connection → its rooms (with the reasons it is in each), so that a
 * broadcast reads a room's members and a disconnect reads a connection's rooms, each without a
 * scan. A room exists while it has a member.
 */
import type { Role } from '../auth/viewer.ts'
import {
  UnknownConnectionError,
  type ConnectionIdentity,
  type LeftListener,
  type PresenceEntry,
  type PresenceListener,
  type MembershipChange,
  type MembershipReason,
  type RoomInfo,
  type RoomRegistry,
  type Target,
} from './registry.ts'
import { CompactMap } from '../compact-map.ts'

/**
 * Why one connection is in one room, it leaves when none holds: the ids of its `room`
 * subscriptions to it, and `SERVER` when the server joined it. The one reason itself, or an array
 * of several; never an object with a Set: a connection rarely has more than one reason per room,
 * and a gateway holds one of these per connection and room (docs/performance.md, What an idle
 * connection holds).
 */
type Membership = string | string[]
/** The server's reason (subscription ids are never empty). */
const SERVER = ''

const sorted = (values: Iterable<string>) => [...values].sort()
/** The rooms of a blast's recipients: none (one array for all of them). */
const noRooms: readonly string[] = Object.freeze([])

/** A connection's meta in one room, and when it was set (the most recent of a user's wins). */
export interface StampedMeta {
  readonly meta: unknown
  readonly at: number
}

/** What presence shows of one connection: who it is, and its meta per room. */
export interface PresenceCard {
  readonly identity: ConnectionIdentity
  readonly metas: ReadonlyMap<string, StampedMeta>
}

const unidentified: ConnectionIdentity = Object.freeze({ userId: null, role: 'anonymous' })

/** The identity of a connection of `role` without a user, one per role. */
const identitiesWithoutUser = new Map<Role, ConnectionIdentity>([['anonymous', unidentified]])
function withoutUser(role: Role): ConnectionIdentity {
  let identity = identitiesWithoutUser.get(role)
  if (!identity) identitiesWithoutUser.set(role, (identity = Object.freeze({ userId: null, role })))
  return identity
}

export class MemoryRoomRegistry implements RoomRegistry {
  /** room → its members. */
  readonly #members = new Map<string, Set<string>>()
  /** connection → room → why it is there. Every registered connection has an entry. */
  readonly #connections = new Map<string, CompactMap<Membership>>()
  readonly #leftListeners = new Set<LeftListener>()
  /**
   * Presence: who each connection is, and its meta per room (cleared when it leaves the room). A
   * user's connection keeps only its user id (the viewer's own string, so nothing new per
   * connection); connections without a user share one identity per role (what most hold).
   */
  readonly #identities = new Map<string, ConnectionIdentity | string>()
  readonly #metas = new Map<string, Map<string, StampedMeta>>()
  readonly #presenceListeners = new Set<PresenceListener>()

  async addConnection(connectionId: string): Promise<void> {
    if (!this.#connections.has(connectionId)) this.#connections.set(connectionId, new CompactMap())
  }

  async removeConnection(connectionId: string): Promise<void> {
    const memberships = this.#connections.get(connectionId)
    if (!memberships) return
    this.#connections.delete(connectionId)
    this.#identities.delete(connectionId)
    this.#metas.delete(connectionId)
    for (const room of memberships.keys()) this.#removeMember(room, connectionId)
    this.#notifyPresence(connectionId, [...memberships.keys()])
  }

  async join(connectionId: string, room: string, reason: MembershipReason): Promise<MembershipChange> {
    const memberships = this.#membershipsOf(connectionId)
    const membership = memberships.get(room)
    const joined = membership === undefined
    const why = reason.kind === 'server' ? SERVER : reason.subscriptionId
    if (membership === undefined) {
      memberships.set(room, why)
      let members = this.#members.get(room)
      if (!members) this.#members.set(room, (members = new Set()))
      members.add(connectionId)
    } else if (typeof membership === 'string') {
      if (membership !== why) memberships.set(room, [membership, why])
    } else if (!membership.includes(why)) membership.push(why)
    if (joined) this.#notifyPresence(connectionId, [room])
    return this.#change(room, joined ? [connectionId] : [])
  }

  async release(connectionId: string, room: string, subscriptionId: string): Promise<void> {
    const memberships = this.#connections.get(connectionId)
    const membership = memberships?.get(room)
    // The server's reason is not a subscription's to drop.
    if (!memberships || membership === undefined || subscriptionId === SERVER) return
    if (typeof membership === 'string') {
      if (membership !== subscriptionId) return
    } else {
      const index = membership.indexOf(subscriptionId)
      if (index < 0) return
      membership.splice(index, 1)
      if (membership.length > 0) return
    }
    memberships.delete(room)
    this.#removeMember(room, connectionId)
    this.#leftRoom(connectionId, room)
  }

  async leave(connectionId: string, room: string): Promise<MembershipChange> {
    const left = this.#leave(this.#membershipsOf(connectionId), connectionId, room)
    if (left) this.#notifyLeft(new Map([[connectionId, [room]]]))
    return this.#change(room, left ? [connectionId] : [])
  }

  async leaveAll(room: string): Promise<MembershipChange[]> {
    const leftBy = new Map<string, string[]>()
    const leftRooms = new Map<string, string[]>()
    for (const connectionId of [...(this.#members.get(room) ?? [])]) {
      const memberships = this.#connections.get(connectionId)!
      const rooms = [...memberships.keys()]
      for (const each of rooms) {
        this.#leave(memberships, connectionId, each)
        append(leftBy, each, connectionId)
      }
      leftRooms.set(connectionId, rooms)
    }
    this.#notifyLeft(leftRooms)
    return [...leftBy].map(([each, connectionIds]) => this.#change(each, connectionIds))
  }

  async addRoomMembersToRooms(sourceRoom: string, rooms: readonly string[]): Promise<MembershipChange[]> {
    const members = [...(this.#members.get(sourceRoom) ?? [])]
    const changes: MembershipChange[] = []
    for (const room of new Set(rooms)) {
      // The members are already in the source room: joining it again would only turn a
      // subscription's membership into the server's, which nobody asked for.
      if (room === sourceRoom) {
        changes.push(this.#change(room, []))
        continue
      }
      const joined: string[] = []
      for (const connectionId of members) {
        if ((await this.join(connectionId, room, { kind: 'server' })).connectionIds.length) joined.push(connectionId)
      }
      changes.push(this.#change(room, joined))
    }
    return changes
  }

  async removeRoomMembersFromRooms(sourceRoom: string, rooms: readonly string[]): Promise<MembershipChange[]> {
    const members = [...(this.#members.get(sourceRoom) ?? [])]
    const leftRooms = new Map<string, string[]>()
    const changes: MembershipChange[] = []
    for (const room of new Set(rooms)) {
      const left: string[] = []
      for (const connectionId of members) {
        if (!this.#leave(this.#connections.get(connectionId)!, connectionId, room)) continue
        left.push(connectionId)
        append(leftRooms, connectionId, room)
      }
      changes.push(this.#change(room, left))
    }
    this.#notifyLeft(leftRooms)
    return changes
  }

  async roomsOf(connectionId: string): Promise<string[] | undefined> {
    const memberships = this.#connections.get(connectionId)
    return memberships && sorted(memberships.keys())
  }

  async members(room: string): Promise<string[]> {
    return sorted(this.#members.get(room) ?? [])
  }

  async rooms(): Promise<RoomInfo[]> {
    return sorted(this.#members.keys()).map((name) => ({ name, memberCount: this.#members.get(name)!.size }))
  }

  async recipientCount(target: Target): Promise<number> {
    if (target.rooms?.length !== 1) return this.localRecipients(target).size
    // One room, what every room message asks (once per message): counted as the Redis registry
    // counts it (redis-scripts.ts, `recipients`), without a map of its recipients.
    const room = target.rooms[0]!
    const members = this.#members.get(room)
    const direct = this.#reachesConnectionNamed(room, members)
    let count = (members?.size ?? 0) + (direct ? 1 : 0)
    for (const id of new Set(target.omit)) if (members?.has(id) || (direct && id === room)) count--
    return count
  }

  localRecipients(target: Target): Map<string, readonly string[]> {
    const recipients = new Map<string, readonly string[]>()
    if (target.rooms === null) {
      for (const connectionId of this.#connections.keys()) recipients.set(connectionId, noRooms)
    } else {
      for (const room of new Set(target.rooms)) {
        // Every recipient in this room alone shares one array (a message's recipients are
        // usually one room's members: no array per recipient per message).
        const only = [room]
        const add = (connectionId: string) => {
          const rooms = recipients.get(connectionId)
          recipients.set(connectionId, rooms === undefined ? only : [...rooms, room])
        }
        const members = this.#members.get(room)
        for (const connectionId of members ?? []) add(connectionId)
        if (this.#reachesConnectionNamed(room, members)) add(room)
      }
    }
    for (const connectionId of target.omit) recipients.delete(connectionId)
    return recipients
  }

  localRoomRecipients(room: string): string[] {
    const members = this.#members.get(room)
    const recipients = members ? [...members] : []
    if (this.#reachesConnectionNamed(room, members)) recipients.push(room)
    return recipients
  }

  /**
   * Whether a message to `room` also reaches the connection of this instance whose id is `room`
   * (Sails: "to broadcast to individual sockets, use their IDs as room names"), beyond `members`,
   * the room's members here.
   */
  #reachesConnectionNamed(room: string, members: ReadonlySet<string> | undefined): boolean {
    return this.#connections.has(room) && !members?.has(room)
  }

  identify(connectionId: string, identity: ConnectionIdentity): void {
    const { userId, role } = identity
    this.#identities.set(
      connectionId,
      userId === null ? withoutUser(role) : role === 'user' ? userId : { userId, role },
    )
  }

  async setPresenceMeta(connectionId: string, room: string, meta: unknown): Promise<void> {
    this.#membershipsOf(connectionId)
    let metas = this.#metas.get(connectionId)
    if (!metas) this.#metas.set(connectionId, (metas = new Map()))
    if (meta == null) metas.delete(room)
    else metas.set(room, { meta, at: Date.now() })
    if (this.#connections.get(connectionId)!.has(room)) this.#notifyPresence(connectionId, [room])
  }

  async presence(room: string): Promise<PresenceEntry[]> {
    return sorted(this.#members.get(room) ?? []).map((connectionId) =>
      presenceEntry(connectionId, room, this.presenceCard(connectionId)),
    )
  }

  onPresenceChange(listener: PresenceListener): () => void {
    this.#presenceListeners.add(listener)
    return () => this.#presenceListeners.delete(listener)
  }

  /** Who a connection of this instance is and what it shows per room; undefined for one it does not hold. */
  presenceCard(connectionId: string): PresenceCard | undefined {
    if (!this.#connections.has(connectionId)) return undefined
    return {
      identity: identityOf(this.#identities.get(connectionId)),
      metas: this.#metas.get(connectionId) ?? new Map(),
    }
  }

  onLeft(listener: LeftListener): () => void {
    this.#leftListeners.add(listener)
    return () => this.#leftListeners.delete(listener)
  }

  get localConnectionCount(): number {
    return this.#connections.size
  }

  /** Whether this registry holds the connection. */
  holds(connectionId: string): boolean {
    return this.#connections.has(connectionId)
  }

  /** Every connection with its rooms, sorted (what the Redis registry rewrites after a break). */
  snapshot(): Map<string, string[]> {
    return new Map(
      [...this.#connections].map(([connectionId, memberships]) => [connectionId, sorted(memberships.keys())]),
    )
  }

  #membershipsOf(connectionId: string): CompactMap<Membership> {
    const memberships = this.#connections.get(connectionId)
    if (!memberships) throw new UnknownConnectionError(connectionId)
    return memberships
  }

  /** Takes the connection out of `room` whatever its reasons; false when it was not in it. */
  #leave(memberships: CompactMap<Membership>, connectionId: string, room: string): boolean {
    if (!memberships.delete(room)) return false
    this.#removeMember(room, connectionId)
    this.#leftRoom(connectionId, room)
    return true
  }

  /** A connection that is still open left `room`: its meta there goes, and presence is told. */
  #leftRoom(connectionId: string, room: string): void {
    this.#metas.get(connectionId)?.delete(room)
    this.#notifyPresence(connectionId, [room])
  }

  #notifyPresence(connectionId: string, rooms: readonly string[]): void {
    if (rooms.length === 0) return
    for (const listener of [...this.#presenceListeners]) listener(connectionId, rooms)
  }

  #removeMember(room: string, connectionId: string): void {
    const members = this.#members.get(room)
    members?.delete(connectionId)
    if (members?.size === 0) this.#members.delete(room)
  }

  #change(room: string, connectionIds: string[]): MembershipChange {
    return { room, connectionIds, memberCount: this.#members.get(room)?.size ?? 0 }
  }

  /** Tells the listeners once the whole operation is done, so they see the registry as it ends. */
  #notifyLeft(leftRooms: Map<string, string[]>): void {
    for (const [connectionId, rooms] of leftRooms)
      for (const listener of [...this.#leftListeners]) listener(connectionId, rooms)
  }
}

function identityOf(stored: ConnectionIdentity | string | undefined): ConnectionIdentity {
  if (stored === undefined) return unidentified
  return typeof stored === 'string' ? { userId: stored, role: 'user' } : stored
}

/** One connection's entry in `room` from its card (an unknown connection shows as anonymous, with no meta). */
export function presenceEntry(connectionId: string, room: string, card: PresenceCard | undefined): PresenceEntry {
  const identity = card?.identity ?? unidentified
  const stamped = card?.metas.get(room)
  return {
    connectionId,
    userId: identity.userId,
    role: identity.role,
    meta: stamped?.meta ?? null,
    metaAt: stamped?.at ?? 0,
  }
}

function append<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const values = map.get(key)
  if (values) values.push(value)
  else map.set(key, [value])
}
