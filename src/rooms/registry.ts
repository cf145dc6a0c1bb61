/**
 * The rooms registry: which connection is in which room, and why. Everything outside an
 * implementation talks to this interface, so that several gateway instances can share one
 * registry (`redis.ts` backs it with Redis, `memory.ts` is the one-process version; the
 * contract: docs/architecture.md §8).
 *
 * Two kinds of methods:
 * - cluster-wide (async): membership operations and reads. An operation on a connection held by
 *   another instance takes effect there, and the promise resolves only once it has (a Redis
 *   registry sends the command to the holder and awaits its reply), so a `join` mutation that
 *   returned is a join that happened. They resolve with what they did.
 * - local (sync): what the delivery path needs about the connections this instance holds. It
 *   never waits on another process.
 *
 * Local first: what concerns only this instance's connections (adding and removing them, joins
 * and leaves of them, releases) takes effect at once and never fails because the cluster's store
 * is out of reach; the implementation catches the store up later. What needs other instances
 * (their connections, cluster-wide reads and counts) rejects with ServiceUnavailableError when it
 * cannot be done in bounded time.
 */
import type { Role } from '../auth/viewer.ts'
import { ClosedError, UnknownTargetError } from '../errors.ts'

/**
 * Why a connection is in a room. A connection stays in a room while it has at least one reason:
 * the server joined it (`join`, `addRoomMembersToRooms`), or one of its `room(name)`
 * subscriptions is running (each counts once, by its id).
 */
export type MembershipReason =
  | { readonly kind: 'server' }
  | { readonly kind: 'subscription'; readonly subscriptionId: string }

/** Who a message is for. */
export interface Target {
  /**
   * The rooms it is broadcast to, or null for every connection (a blast). As in Sails, a
   * connection id used as a room name also addresses that connection directly.
   */
  readonly rooms: readonly string[] | null
  /** Connections left out; ids no instance holds are ignored. */
  readonly omit: readonly string[]
}

/** What a membership operation did to one room. */
export interface MembershipChange {
  readonly room: string
  /** The connections that joined (or left) the room by this operation, not those already in (or out). */
  readonly connectionIds: readonly string[]
  /** Members of the room after the operation. */
  readonly memberCount: number
}

export interface RoomInfo {
  readonly name: string
  readonly memberCount: number
}

/**
 * Told, on the instance that holds the connection, that a membership operation took it out of
 * `rooms` (leave, leaveAll, removeRoomMembersFromRooms). Not called when the connection closes
 * or when its own subscription ended.
 */
export type LeftListener = (connectionId: string, rooms: readonly string[]) => void

/** Who a connection is, as presence shows it: set when the connection opens. */
export interface ConnectionIdentity {
  /** The JWT subject of a `user`; null for `anonymous` and `service`. */
  readonly userId: string | null
  readonly role: Role
}

/** One connection in a room, as presence reads it (docs/architecture.md §13). */
export interface PresenceEntry extends ConnectionIdentity {
  readonly connectionId: string
  /** What the connection announced in this room (`room(presence:)`, `updatePresence`); null when nothing. */
  readonly meta: unknown
  /** When `meta` was set (ms since the epoch), so that a user's most recent meta wins; 0 when none. */
  readonly metaAt: number
}

/**
 * Told, on the instance that holds the connection, that what presence shows of it in `rooms`
 * may have changed: it joined or left them (for any reason, closing included), or set its meta.
 */
export type PresenceListener = (connectionId: string, rooms: readonly string[]) => void

export interface RoomRegistry {
  /** Registers a connection this instance holds (when graphql-ws acknowledges it); it is in no room. */
  addConnection(connectionId: string): Promise<void>
  /** Takes a connection of this instance out of every room (it closed); empty rooms are deleted. Unknown ids are ignored. */
  removeConnection(connectionId: string): Promise<void>

  /** Adds a reason for the connection to be in `room`. Rejects with UnknownConnectionError when no instance holds it. */
  join(connectionId: string, room: string, reason: MembershipReason): Promise<MembershipChange>
  /**
   * Drops the reason a `room(name)` subscription gave; the connection leaves when none is left.
   * A no-op when that reason is already gone (the server made it leave, or it closed).
   */
  release(connectionId: string, room: string, subscriptionId: string): Promise<void>
  /** Takes the connection out of `room`, whatever its reasons. Rejects with UnknownConnectionError when no instance holds it. */
  leave(connectionId: string, room: string): Promise<MembershipChange>
  /** Every member of `room` leaves every room it is in (Sails `leaveAll`); one change per room that lost members. */
  leaveAll(room: string): Promise<MembershipChange[]>
  /** The members of `sourceRoom` join each of `rooms` (server reason); one change per room. */
  addRoomMembersToRooms(sourceRoom: string, rooms: readonly string[]): Promise<MembershipChange[]>
  /** The members of `sourceRoom` leave each of `rooms`; one change per room. */
  removeRoomMembersFromRooms(sourceRoom: string, rooms: readonly string[]): Promise<MembershipChange[]>

  /** The rooms a connection is in, sorted; undefined when no instance holds it. */
  roomsOf(connectionId: string): Promise<string[] | undefined>
  /** The members of a room, sorted; [] for a room that does not exist. */
  members(room: string): Promise<string[]>
  /** Every room with at least one member, sorted by name. */
  rooms(): Promise<RoomInfo[]>
  /** How many connections a message for `target` is addressed to, over all instances. */
  recipientCount(target: Target): Promise<number>

  /**
   * The connections of this instance that `target` reaches, each with the targeted rooms it is
   * in (in the order of `target.rooms`; [] for a blast). Each connection appears once.
   */
  localRecipients(target: Target): Map<string, readonly string[]>
  /**
   * The connections of this instance a message to the one room `room` reaches, a snapshot: its
   * members here, and the connection whose id is `room` when this instance holds it (Sails'
   * rooms named by a socket id). What `localRecipients` gives for that target, without a map
   * and an entry per recipient (a room message's usual target, paid per message).
   */
  localRoomRecipients(room: string): string[]
  /** Calls `listener` when a membership operation takes a connection of this instance out of rooms; returns the unsubscribe function. */
  onLeft(listener: LeftListener): () => void
  /**
   * Presence (additive to membership). Records who a connection of this instance is, before it
   * joins anything; a connection never identified shows as `anonymous`. Local, never fails.
   */
  identify(connectionId: string, identity: ConnectionIdentity): void
  /**
   * Sets what a connection of this instance shows in `room` (null: nothing), whether or not it is
   * in the room yet (a `room(presence:)` subscription sets it just before joining); leaving the
   * room clears it. Local: rejects with UnknownConnectionError for a connection this instance
   * does not hold.
   */
  setPresenceMeta(connectionId: string, room: string, meta: unknown): Promise<void>
  /** The members of `room` over the cluster, each with its identity and meta, sorted by connection id. */
  presence(room: string): Promise<PresenceEntry[]>
  /** Calls `listener` when presence may have changed for a connection of this instance; returns the unsubscribe function. */
  onPresenceChange(listener: PresenceListener): () => void
  /** Connections this instance holds (for diagnostics and leak checks). */
  readonly localConnectionCount: number
  /**
   * Resolves when the registry can answer for the whole cluster; rejects saying why (for
   * `/ready`). Optional: the in-memory registry always can.
   */
  ping?(): Promise<void>
  /**
   * Releases what the registry holds outside the process (the Redis registry takes this
   * instance's connections out of the cluster). The gateway calls it on shutdown, after its
   * connections closed. Optional: the in-memory registry has nothing to release.
   */
  close?(): Promise<void>
}

/** The registry was closed (the gateway is shutting down): its connections are going. */
export class RegistryClosedError extends ClosedError {
  override readonly name = 'RegistryClosedError'
  constructor() {
    super('the rooms registry is closed')
  }
}

/** No instance holds a connection with this id (it closed, or never existed). */
export class UnknownConnectionError extends UnknownTargetError {
  override readonly name = 'UnknownConnectionError'
  constructor(readonly connectionId: string) {
    super(`no connection with id "${connectionId}"`, { connectionId })
  }
}
