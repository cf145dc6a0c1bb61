/**
 * The Redis rooms registry: several gateway instances on one Redis share room membership.
 *
 * Each instance keeps its own connections in a MemoryRoomRegistry (the local truth, which the
 * delivery path reads without touching the network) and mirrors every change to Redis
 * (redis-mirror.ts), where any instance reads the whole cluster (redis-store.ts). A membership
 * operation runs on the instance that holds the connection: another instance sends it there
 * (redis-commands.ts) and resolves with its reply, so a join that resolved has happened.
 *
 * Local first: what concerns only this instance's connections (a connection opening or closing,
 * a `room` subscription joining or leaving, a join or leave of a local connection) never waits
 * on, or fails with, Redis; the mirror catches Redis up once it answers. Cluster reads and
 * operations on other instances' connections need Redis: while it is out of reach they fail at
 * once with ServiceUnavailableError, and every Redis wait is bounded.
 *
 * Liveness (redis-liveness.ts, redis-scripts.ts `alive`): an instance whose heartbeat expired,
 * or that has not listened for its commands for a third of that, is dead; every read purges dead
 * instances first, so no answer counts their connections, and operations on them find no
 * connection (UnknownConnectionError).
 */
import type { Cluster, Redis } from 'ioredis'
import { ServiceUnavailableError } from '../errors.ts'
import { withTimeout } from '../timeouts.ts'
import { presenceEntry, type MemoryRoomRegistry } from './memory.ts'
import {
  type CommandChannel,
  InstanceUnreachableError,
  RemoteCommandError,
  type CommandResult,
  type RoomCommand,
} from './redis-commands.ts'
import type { RedisMirror } from './redis-mirror.ts'
import type { RedisPresenceCards } from './redis-presence.ts'
import type { RoomStorage, StoredChange } from './redis-store.ts'
import {
  RegistryClosedError,
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

/** What a local operation did: its result and the Redis writes that mirror it. */
interface LocalOutcome {
  readonly result: CommandResult
  readonly changes: StoredChange[]
  /** The rooms whose member counts replace the local ones in `result`, in its order. */
  readonly countRooms: string[]
}

export interface RedisRoomRegistryParts {
  readonly instanceId: string
  readonly local: MemoryRoomRegistry
  readonly store: RoomStorage
  readonly mirror: RedisMirror
  /** Presence: who each connection is and its meta per room (redis-presence.ts). */
  readonly cards: RedisPresenceCards
  /** The registry's own connections, closed on close. */
  readonly connections: (Redis | Cluster)[]
  /** Gives shared connections back on close (src/redis/shared.ts). */
  readonly release?: () => Promise<void>
  readonly heartbeatTtlMs: number
  readonly redisTimeoutMs: number
  readonly onError: (error: unknown, context: string) => void
}

const sorted = (values: Iterable<string>) => [...values].sort()

/** This instance is rewriting its share of Redis after a break: cluster-wide answers would miss its members. */
const healing = () =>
  new ServiceUnavailableError('redis', 'the rooms registry is rewriting its share of Redis after a break')

export class RedisRoomRegistry implements RoomRegistry {
  readonly instanceId: string
  readonly #local: MemoryRoomRegistry
  readonly #store: RoomStorage
  readonly #mirror: RedisMirror
  readonly #parts: RedisRoomRegistryParts
  #channel!: CommandChannel
  #stopLiveness: () => void = () => {}
  #closed = false

  /** Use `createRedisRoomRegistry`. */
  constructor(parts: RedisRoomRegistryParts) {
    this.instanceId = parts.instanceId
    this.#local = parts.local
    this.#store = parts.store
    this.#mirror = parts.mirror
    this.#parts = parts
    // Every change presence could show (joins, leaves, meta, closes) rewrites that connection's card.
    parts.local.onPresenceChange((connectionId) => parts.cards.write(connectionId))
  }

  /** @internal Wires the command channel and the liveness timers in (by `createRedisRoomRegistry`). */
  attach(channel: CommandChannel, stopLiveness: () => void): void {
    this.#channel = channel
    this.#stopLiveness = stopLiveness
  }

  /**
   * Whether this instance's share of Redis is known to match its local state: `in-sync`,
   * `broken` (Redis out of reach: local operations go on, cluster ones fail) or `healing`.
   */
  get redisState() {
    return this.#mirror.state
  }

  /** Resolves when the registry can answer cluster-wide (for `/ready`); rejects, naming why, otherwise. */
  async ping(): Promise<void> {
    this.#assertOpen()
    this.#mirror.assertReachable()
    if (this.#mirror.state === 'healing') throw healing()
    await this.#read(() => this.#store.sweep())
  }

  async addConnection(connectionId: string): Promise<void> {
    this.#assertOpen()
    await this.#mirror.change(async () => {
      await this.#local.addConnection(connectionId)
      return { result: undefined, write: () => this.#store.register(this.instanceId, [connectionId]) }
    })
  }

  async removeConnection(connectionId: string): Promise<void> {
    // After close, Redis no longer lists this instance's connections.
    if (this.#closed) return this.#local.removeConnection(connectionId)
    await this.#mirror.change(async () => {
      if (!this.#holds(connectionId)) return { result: undefined }
      await this.#local.removeConnection(connectionId)
      return { result: undefined, write: () => this.#store.drop([connectionId]) }
    })
  }

  join(connectionId: string, room: string, reason: MembershipReason): Promise<MembershipChange> {
    return this.#routed(connectionId, { op: 'join', connectionId, room, reason }) as Promise<MembershipChange>
  }

  async release(connectionId: string, room: string, subscriptionId: string): Promise<void> {
    // Subscriptions end during shutdown too; their connections are out of Redis by then.
    if (this.#closed) return this.#local.release(connectionId, room, subscriptionId)
    try {
      await this.#routed(connectionId, { op: 'release', connectionId, room, subscriptionId })
    } catch (error) {
      if (!(error instanceof UnknownConnectionError)) throw error
    }
  }

  leave(connectionId: string, room: string): Promise<MembershipChange> {
    return this.#routed(connectionId, { op: 'leave', connectionId, room }) as Promise<MembershipChange>
  }

  leaveAll(room: string): Promise<MembershipChange[]> {
    return this.#roomWide(room, { op: 'leaveAll', room }, null)
  }

  addRoomMembersToRooms(sourceRoom: string, rooms: readonly string[]): Promise<MembershipChange[]> {
    return this.#roomWide(sourceRoom, { op: 'addRoomMembersToRooms', sourceRoom, rooms }, rooms)
  }

  removeRoomMembersFromRooms(sourceRoom: string, rooms: readonly string[]): Promise<MembershipChange[]> {
    return this.#roomWide(sourceRoom, { op: 'removeRoomMembersFromRooms', sourceRoom, rooms }, rooms)
  }

  async roomsOf(connectionId: string): Promise<string[] | undefined> {
    if (this.#holds(connectionId)) return this.#local.roomsOf(connectionId)
    const instance = await this.#liveOwner(connectionId)
    return instance === undefined ? undefined : this.#read(() => this.#store.roomsOf(connectionId))
  }

  members(room: string): Promise<string[]> {
    return this.#read(() => this.#store.members(room))
  }

  rooms(): Promise<RoomInfo[]> {
    return this.#read(() => this.#store.rooms())
  }

  /**
   * Over every live instance. Rejects with ServiceUnavailableError while this instance's share of
   * Redis is not in sync (the count could miss its own members): the caller knows the local count.
   */
  recipientCount(target: Target): Promise<number> {
    if (this.#mirror.state === 'healing') {
      return Promise.reject(healing())
    }
    return this.#read(() => this.#store.recipientCount(target))
  }

  localRecipients(target: Target): Map<string, readonly string[]> {
    return this.#local.localRecipients(target)
  }

  localRoomRecipients(room: string): string[] {
    return this.#local.localRoomRecipients(room)
  }

  onLeft(listener: LeftListener): () => void {
    return this.#local.onLeft(listener)
  }

  identify(connectionId: string, identity: ConnectionIdentity): void {
    this.#local.identify(connectionId, identity)
    this.#parts.cards.write(connectionId)
  }

  setPresenceMeta(connectionId: string, room: string, meta: unknown): Promise<void> {
    if (!this.#holds(connectionId)) return Promise.reject(new UnknownConnectionError(connectionId))
    return this.#local.setPresenceMeta(connectionId, room, meta)
  }

  /**
   * The room's live members (dead instances purged) with their cards. This instance's own come
   * from memory; a member whose card has not reached Redis yet (it is being written, or
   * rewritten after a break) is left out until it has.
   */
  async presence(room: string): Promise<PresenceEntry[]> {
    const members = await this.#read(() => this.#store.members(room))
    const remote = members.filter((id) => !this.#holds(id))
    const cards = await this.#read(() => this.#parts.cards.read(remote))
    const remoteCards = new Map(remote.map((id, i) => [id, cards[i]]))
    const entries: PresenceEntry[] = []
    for (const id of members) {
      const card = this.#holds(id) ? this.#local.presenceCard(id) : remoteCards.get(id)
      if (card) entries.push(presenceEntry(id, room, card))
    }
    return entries
  }

  onPresenceChange(listener: PresenceListener): () => void {
    return this.#local.onPresenceChange(listener)
  }

  get localConnectionCount(): number {
    return this.#local.localConnectionCount
  }

  /**
   * Takes this instance's connections out of Redis, stops the heartbeat, and closes the Redis
   * connections, each step bounded. Later membership operations reject; the local state stays
   * readable. Called by the gateway on shutdown.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#stopLiveness()
    await this.#mirror.close()
    await this.#parts.cards.clear()
    try {
      await this.#store.drop([...this.#local.snapshot().keys()])
      await this.#store.retire(this.instanceId)
    } catch (error) {
      // Redis unreachable: the heartbeat expires and the other instances purge what is left.
      this.#parts.onError(error, 'close')
    }
    await this.#channel.close()
    const { connections, redisTimeoutMs, release } = this.#parts
    await Promise.all(
      connections.map((connection) =>
        withTimeout(connection.quit(), redisTimeoutMs, 'Redis').catch(() => connection.disconnect()),
      ),
    )
    await release?.()
  }

  /**
   * @internal Runs a membership command on this instance's connections, mirrors it to Redis and
   * resolves with member counts over the cluster, or with the local ones when Redis does not
   * answer (for commands from other instances, and ours).
   */
  async applyLocally(command: RoomCommand): Promise<CommandResult> {
    this.#assertOpen()
    const { result, written } = await this.#mirror.change(async () => {
      const { result, changes, countRooms } = await this.#runLocally(command)
      return { result, write: () => this.#store.apply(changes, countRooms) }
    })
    if (!written) return result
    if (Array.isArray(result)) return result.map((change, i) => ({ ...change, memberCount: written[i] ?? 0 }))
    return result && { ...result, memberCount: written[0] ?? 0 }
  }

  async #runLocally(command: RoomCommand): Promise<LocalOutcome> {
    const local = this.#local
    const mirror = (sign: '+' | '-', changes: MembershipChange[]): LocalOutcome => ({
      result: changes,
      changes: changes.flatMap(({ room, connectionIds }) =>
        connectionIds.map((connectionId) => ({ sign, connectionId, room })),
      ),
      countRooms: changes.map(({ room }) => room),
    })
    const single = (outcome: LocalOutcome): LocalOutcome => ({
      ...outcome,
      result: (outcome.result as MembershipChange[])[0],
    })
    switch (command.op) {
      case 'join':
        return single(mirror('+', [await local.join(command.connectionId, command.room, command.reason)]))
      case 'leave':
        return single(mirror('-', [await local.leave(command.connectionId, command.room)]))
      case 'release': {
        const { connectionId, room } = command
        const wasIn = (await local.roomsOf(connectionId))?.includes(room)
        await local.release(connectionId, room, command.subscriptionId)
        const left = wasIn && !(await local.roomsOf(connectionId))?.includes(room)
        return { result: undefined, changes: left ? [{ sign: '-', connectionId, room }] : [], countRooms: [] }
      }
      case 'leaveAll':
        return mirror('-', await local.leaveAll(command.room))
      case 'addRoomMembersToRooms':
        return mirror('+', await local.addRoomMembersToRooms(command.sourceRoom, command.rooms))
      case 'removeRoomMembersFromRooms':
        return mirror('-', await local.removeRoomMembersFromRooms(command.sourceRoom, command.rooms))
    }
  }

  /** Runs a single-connection command where the connection is held. */
  async #routed(connectionId: string, command: RoomCommand): Promise<CommandResult> {
    this.#assertOpen()
    if (this.#holds(connectionId)) return this.applyLocally(command)
    const instance = await this.#liveOwner(connectionId)
    if (instance === undefined) throw new UnknownConnectionError(connectionId)
    return this.#send(instance, command, connectionId)
  }

  /**
   * A room-wide command: every instance holding members of `sourceRoom` applies it to its own
   * members; the changes are merged per room, counted once all are done. `rooms` orders the
   * changes (null: the rooms that changed, sorted).
   */
  async #roomWide(
    sourceRoom: string,
    command: RoomCommand,
    rooms: readonly string[] | null,
  ): Promise<MembershipChange[]> {
    this.#assertOpen()
    // Dead instances were purged by the read: every owner left is alive (or this one).
    const members = await this.#read(() => this.#store.members(sourceRoom))
    const owners = members.length ? await this.#read(() => this.#store.owners(members)) : []
    const instances = new Set(
      owners.flatMap((owner) => (owner && (owner.alive || owner.instance === this.instanceId) ? [owner.instance] : [])),
    )
    // Ours too when Redis lags behind a local join: the local state is the truth for our members.
    if (this.#local.localRecipients({ rooms: [sourceRoom], omit: [] }).size) instances.add(this.instanceId)
    const results = await Promise.all(
      [...instances].map((instance) =>
        instance === this.instanceId ? this.applyLocally(command) : this.#send(instance, command).catch(noConnections),
      ),
    )
    const changed = new Map<string, Set<string>>()
    for (const change of results.flat() as MembershipChange[]) {
      let ids = changed.get(change.room)
      if (!ids) changed.set(change.room, (ids = new Set()))
      for (const id of change.connectionIds) ids.add(id)
    }
    const order = rooms ? [...new Set(rooms)] : sorted(changed.keys())
    const counts = await this.#read(() => this.#store.counts(order))
    return order.map((room, i) => ({
      room,
      connectionIds: sorted(changed.get(room) ?? []),
      memberCount: counts[i] ?? 0,
    }))
  }

  /**
   * Sends a command to the instance holding its connection(s). An instance that stopped, or is
   * known dead, holds no connection any more: UnknownConnectionError. One that is alive but does
   * not listen (it lost Redis, or died a moment ago and its heartbeat has not expired yet) is
   * unavailable: the operation may be retried, and answers NOT_FOUND once the heartbeat expired.
   */
  async #send(instance: string, command: RoomCommand, connectionId = ''): Promise<CommandResult> {
    try {
      return await this.#channel.send(instance, command)
    } catch (error) {
      if (error instanceof RemoteCommandError && (error.unknownConnection !== undefined || error.closed)) {
        throw new UnknownConnectionError(error.unknownConnection ?? connectionId)
      }
      if (error instanceof InstanceUnreachableError) {
        if (await this.#read(() => this.#store.purge(instance))) throw new UnknownConnectionError(connectionId)
        const seconds = Math.ceil(this.#parts.heartbeatTtlMs / 3000)
        throw new ServiceUnavailableError(
          'gateway',
          `gateway instance ${instance}, which holds ${connectionId ? `connection ${connectionId}` : 'members of the room'}, is not listening for rooms commands (it stopped or lost Redis); if it stopped, its connections are gone within ${seconds} s`,
        )
      }
      if (error instanceof ServiceUnavailableError && error.service === 'redis')
        this.#mirror.broke(error, 'sending a rooms command failed')
      throw error
    }
  }

  /** The live instance holding a connection another instance holds; purges a dead one. */
  async #liveOwner(connectionId: string): Promise<string | undefined> {
    const [owner] = await this.#read(() => this.#store.owners([connectionId]))
    if (!owner) return undefined
    if (owner.instance === this.instanceId) {
      this.#dropGhost(connectionId)
      return undefined
    }
    if (owner.alive) return owner.instance
    await this.#read(() => this.#store.purge(owner.instance))
    return undefined
  }

  /**
   * @internal Runs a command another instance sent (by the command channel). One for a
   * connection Redis says this instance holds, and it does not, meets a ghost: dropped.
   */
  async applyFromPeer(command: RoomCommand): Promise<CommandResult> {
    try {
      return await this.applyLocally(command)
    } catch (error) {
      if (error instanceof UnknownConnectionError) this.#dropGhost(error.connectionId)
      throw error
    }
  }

  /**
   * Redis lists a connection of this instance that it does not hold (a removal still in flight,
   * or one a lost write left behind): drop it there, in turn with the local changes, so that it
   * leaves every answer now rather than at the next healing.
   */
  #dropGhost(connectionId: string): void {
    void this.#mirror.change(async () =>
      this.#holds(connectionId)
        ? { result: undefined }
        : { result: undefined, write: () => this.#store.drop([connectionId]) },
    )
  }

  /** A cluster read: fails at once while Redis is known out of reach; a failure breaks the mirror. */
  async #read<T>(read: () => Promise<T>): Promise<T> {
    this.#mirror.assertReachable()
    try {
      return await read()
    } catch (error) {
      if (error instanceof ServiceUnavailableError)
        this.#mirror.broke(error, 'reading the rooms registry from Redis failed')
      throw error
    }
  }

  #holds(connectionId: string): boolean {
    return this.#local.holds(connectionId)
  }

  #assertOpen(): void {
    if (this.#closed) throw new RegistryClosedError()
  }
}

/** A room-wide command sent to an instance that stopped meanwhile changed nothing there. */
function noConnections(error: unknown): MembershipChange[] {
  if (error instanceof UnknownConnectionError) return []
  throw error
}
