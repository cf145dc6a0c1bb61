/**
 * The in-memory rooms registry: one process, every connection local. Two indexes kept in step,
 * room → members and connection → its rooms (with the reasons it is in each), so that a
 * broadcast reads a room's members and a disconnect reads a connection's rooms, each without a
 * scan. A room exists while it has a member.
 */
import {
  UnknownConnectionError,
  type LeftListener,
  type MembershipChange,
  type MembershipReason,
  type RoomInfo,
  type RoomRegistry,
  type Target,
} from './registry.ts'

/** Why one connection is in one room; it leaves when neither holds. */
interface Membership {
  server: boolean
  readonly subscriptions: Set<string>
}

const sorted = (values: Iterable<string>) => [...values].sort()

export class MemoryRoomRegistry implements RoomRegistry {
  /** room → its members. */
  readonly #members = new Map<string, Set<string>>()
  /** connection → room → why it is there. Every registered connection has an entry. */
  readonly #connections = new Map<string, Map<string, Membership>>()
  readonly #leftListeners = new Set<LeftListener>()

  async addConnection(connectionId: string): Promise<void> {
    if (!this.#connections.has(connectionId)) this.#connections.set(connectionId, new Map())
  }

  async removeConnection(connectionId: string): Promise<void> {
    const memberships = this.#connections.get(connectionId)
    if (!memberships) return
    this.#connections.delete(connectionId)
    for (const room of memberships.keys()) this.#removeMember(room, connectionId)
  }

  async join(connectionId: string, room: string, reason: MembershipReason): Promise<MembershipChange> {
    const memberships = this.#membershipsOf(connectionId)
    let membership = memberships.get(room)
    const joined = !membership
    if (!membership) {
      memberships.set(room, (membership = { server: false, subscriptions: new Set() }))
      let members = this.#members.get(room)
      if (!members) this.#members.set(room, (members = new Set()))
      members.add(connectionId)
    }
    if (reason.kind === 'server') membership.server = true
    else membership.subscriptions.add(reason.subscriptionId)
    return this.#change(room, joined ? [connectionId] : [])
  }

  async release(connectionId: string, room: string, subscriptionId: string): Promise<void> {
    const memberships = this.#connections.get(connectionId)
    const membership = memberships?.get(room)
    if (!memberships || !membership?.subscriptions.delete(subscriptionId)) return
    if (membership.server || membership.subscriptions.size > 0) return
    memberships.delete(room)
    this.#removeMember(room, connectionId)
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
    return this.localRecipients(target).size
  }

  localRecipients(target: Target): Map<string, string[]> {
    const recipients = new Map<string, string[]>()
    if (target.rooms === null) {
      for (const connectionId of this.#connections.keys()) recipients.set(connectionId, [])
    } else {
      for (const room of new Set(target.rooms)) {
        for (const connectionId of this.#members.get(room) ?? []) append(recipients, connectionId, room)
        // Sails: "to broadcast to individual sockets, use their IDs as room names".
        if (this.#connections.has(room) && !this.#members.get(room)?.has(room)) append(recipients, room, room)
      }
    }
    for (const connectionId of target.omit) recipients.delete(connectionId)
    return recipients
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

  #membershipsOf(connectionId: string): Map<string, Membership> {
    const memberships = this.#connections.get(connectionId)
    if (!memberships) throw new UnknownConnectionError(connectionId)
    return memberships
  }

  /** Takes the connection out of `room` whatever its reasons; false when it was not in it. */
  #leave(memberships: Map<string, Membership>, connectionId: string, room: string): boolean {
    if (!memberships.delete(room)) return false
    this.#removeMember(room, connectionId)
    return true
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

function append<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const values = map.get(key)
  if (values) values.push(value)
  else map.set(key, [value])
}
