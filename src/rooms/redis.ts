/**
 * The Redis rooms registry: several gateway instances on one Redis share room membership.
 *
 * Each instance keeps its own connections in a MemoryRoomRegistry (memberships and their
 * reasons), which the delivery path reads without touching the network, and mirrors every change
 * to Redis (see redis-store.ts), where any instance reads the whole cluster. A membership
 * operation runs on the instance that holds the connection: another instance sends it there
 * (redis-commands.ts) and resolves with its reply, so a join that resolved has happened.
 *
 * Crashes: each instance refreshes a heartbeat key with a TTL. Connections whose instance lost
 * its heartbeat are purged by a periodic sweep on every instance, and at once when an operation
 * finds one. An instance that finds its own heartbeat expired (a long pause) writes its state
 * back to Redis.
 */
import { randomUUID } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import { ConfigError } from '../errors.ts'
import { MemoryRoomRegistry } from './memory.ts'
import { CommandChannel, InstanceUnreachableError, RemoteCommandError, type CommandResult, type RoomCommand } from './redis-commands.ts'
import { RoomStore, type StoredChange } from './redis-store.ts'
import {
  UnknownConnectionError,
  type LeftListener,
  type MembershipChange,
  type MembershipReason,
  type RoomInfo,
  type RoomRegistry,
  type Target,
} from './registry.ts'

export { RoomCommandTimeoutError } from './redis-commands.ts'

export interface RedisRoomRegistryOptions {
  /** `redis://…` or `rediss://…`. */
  url: string
  /** Prefix of the registry's keys and channels: instances with the same prefix share membership. @default "mizzen:rooms:" */
  keyPrefix?: string
  /** This instance's id; unique among live instances. Reusing it after a restart drops what the previous run left. @default a random UUID */
  instanceId?: string
  /**
   * How long the instance holding a connection gets to apply a membership operation sent to it
   * and reply, in ms. Past it the operation rejects with RoomCommandTimeoutError (the holder may
   * still apply it later).
   * @default 5000
   */
  commandTimeoutMs?: number
  /**
   * How long this instance's heartbeat lives in Redis, in ms; it is refreshed every third of
   * that. Once it expires (the process died or lost Redis), other instances purge its connections.
   * @default 15000
   */
  heartbeatTtlMs?: number
  /** How often each instance looks for instances whose heartbeat expired and purges them, in ms. @default heartbeatTtlMs */
  sweepIntervalMs?: number
  /** Told about failures no caller waits for (heartbeat, sweep, replies, connection errors). */
  onError?: (error: unknown, context: string) => void
  /** Extra ioredis options (both connections). */
  redis?: RedisOptions
}

/** What a local operation did: its result and the Redis writes that mirror it. */
interface LocalOutcome {
  readonly result: CommandResult
  readonly changes: StoredChange[]
  /** The rooms whose member counts replace the local ones in `result`, in its order. */
  readonly countRooms: string[]
}

const sorted = (values: Iterable<string>) => [...values].sort()

function positiveInteger(setting: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(setting, `expected a positive integer (ms), got ${value}`)
  return value
}

export async function createRedisRoomRegistry(options: RedisRoomRegistryOptions): Promise<RedisRoomRegistry> {
  const commandTimeoutMs = positiveInteger('commandTimeoutMs', options.commandTimeoutMs ?? 5000)
  const heartbeatTtlMs = positiveInteger('heartbeatTtlMs', options.heartbeatTtlMs ?? 15_000)
  const sweepIntervalMs = positiveInteger('sweepIntervalMs', options.sweepIntervalMs ?? heartbeatTtlMs)
  const prefix = options.keyPrefix ?? 'mizzen:rooms:'
  const instanceId = options.instanceId ?? randomUUID()
  const onError = options.onError ?? (() => {})
  // A subscribed ioredis connection can only (un)subscribe, so commands need their own.
  const connect = () => new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 2, connectionName: `mizzen-rooms-${instanceId}`, ...options.redis })
  const commands = connect()
  const subscriber = connect()
  for (const connection of [commands, subscriber]) connection.on('error', (error: unknown) => onError(error, 'connection'))
  try {
    await Promise.all([commands.connect(), subscriber.connect()])
    const store = new RoomStore(commands, prefix)
    // Whatever a previous run under this id left is stale: its connections are gone.
    await store.purge(instanceId, true)
    const registry = new RedisRoomRegistry({ instanceId, store, connections: [commands, subscriber], onError })
    const channel = await CommandChannel.open({
      instance: instanceId,
      prefix,
      publisher: commands,
      subscriber,
      timeoutMs: commandTimeoutMs,
      handle: (command) => registry.applyLocally(command),
      onError: (error) => onError(error, 'command channel'),
    })
    await registry.start(channel, heartbeatTtlMs, sweepIntervalMs)
    return registry
  } catch (error) {
    commands.disconnect()
    subscriber.disconnect()
    throw error
  }
}

export class RedisRoomRegistry implements RoomRegistry {
  readonly instanceId: string
  readonly #local = new MemoryRoomRegistry()
  readonly #store: RoomStore
  readonly #connections: Redis[]
  readonly #onError: (error: unknown, context: string) => void
  #channel!: CommandChannel
  #timers: NodeJS.Timeout[] = []
  /** The tail of the local operations, which run one after another (see `#inTurn`). */
  #turn: Promise<unknown> = Promise.resolve()
  #closed = false

  /** Use `createRedisRoomRegistry`. */
  constructor(parts: { instanceId: string; store: RoomStore; connections: Redis[]; onError: (error: unknown, context: string) => void }) {
    this.instanceId = parts.instanceId
    this.#store = parts.store
    this.#connections = parts.connections
    this.#onError = parts.onError
  }

  /** @internal Starts the heartbeat and the sweep (by `createRedisRoomRegistry`). */
  async start(channel: CommandChannel, heartbeatTtlMs: number, sweepIntervalMs: number): Promise<void> {
    this.#channel = channel
    await this.#store.heartbeat(this.instanceId, heartbeatTtlMs)
    const beat = () => this.#beat(heartbeatTtlMs).catch((error: unknown) => this.#onError(error, 'heartbeat'))
    const sweep = () => this.#store.sweep().catch((error: unknown) => this.#onError(error, 'sweep'))
    // unref: the registry alone must not keep a process alive.
    this.#timers = [setInterval(beat, Math.max(1, Math.floor(heartbeatTtlMs / 3))).unref(), setInterval(sweep, sweepIntervalMs).unref()]
  }

  async addConnection(connectionId: string): Promise<void> {
    this.#assertOpen()
    const { written } = await this.#inTurn(async () => {
      await this.#local.addConnection(connectionId)
      return { written: this.#store.register(this.instanceId, [connectionId]) }
    })
    await written
  }

  async removeConnection(connectionId: string): Promise<void> {
    // After close, Redis no longer lists this instance's connections.
    if (this.#closed) return this.#local.removeConnection(connectionId)
    const { written } = await this.#inTurn(async () => {
      if (!(await this.#holds(connectionId))) return { written: undefined }
      await this.#local.removeConnection(connectionId)
      return { written: this.#store.drop([connectionId]) }
    })
    await written
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
    if (await this.#holds(connectionId)) return this.#local.roomsOf(connectionId)
    const instance = await this.#liveOwner(connectionId)
    return instance === undefined ? undefined : this.#store.roomsOf(connectionId)
  }

  members(room: string): Promise<string[]> {
    return this.#store.members(room)
  }

  rooms(): Promise<RoomInfo[]> {
    return this.#store.rooms()
  }

  recipientCount(target: Target): Promise<number> {
    return this.#store.recipientCount(target)
  }

  localRecipients(target: Target): Map<string, string[]> {
    return this.#local.localRecipients(target)
  }

  onLeft(listener: LeftListener): () => void {
    return this.#local.onLeft(listener)
  }

  get localConnectionCount(): number {
    return this.#local.localConnectionCount
  }

  /**
   * Takes this instance's connections out of Redis, stops the heartbeat and the sweep, and
   * closes the Redis connections. Later membership operations reject; the local state stays
   * readable. Called by the gateway on shutdown.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const timer of this.#timers.splice(0)) clearInterval(timer)
    await this.#inTurn(async () => undefined)
    try {
      await this.#store.drop(this.#localIds())
      await this.#store.retire(this.instanceId)
    } catch (error) {
      // Redis unreachable: the heartbeat expires and the other instances purge what is left.
      this.#onError(error, 'close')
    }
    await this.#channel.close()
    await Promise.allSettled(this.#connections.map((connection) => connection.quit()))
  }

  /**
   * @internal Runs a membership command on this instance's connections, mirrors it to Redis and
   * resolves with member counts over the cluster (for commands from other instances, and ours).
   */
  async applyLocally(command: RoomCommand): Promise<CommandResult> {
    this.#assertOpen()
    const { outcome, written } = await this.#inTurn(async () => {
      const outcome = await this.#runLocally(command)
      return { outcome, written: this.#store.apply(outcome.changes, outcome.countRooms) }
    })
    const counts = await written
    const { result } = outcome
    if (Array.isArray(result)) return result.map((change, i) => ({ ...change, memberCount: counts[i] ?? 0 }))
    return result && { ...result, memberCount: counts[0] ?? 0 }
  }

  /**
   * Runs `step` once every earlier step ran. A step changes the local state and issues (without
   * awaiting) the Redis writes that mirror it, so Redis receives the writes in the order the
   * local state changed. Steps wait on nothing but the local registry, so the queue stays short;
   * they return the write wrapped in an object, since an async function returning a promise
   * would wait for it.
   */
  #inTurn<T>(step: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(step)
    this.#turn = run.catch(() => {})
    return run
  }

  async #runLocally(command: RoomCommand): Promise<LocalOutcome> {
    const local = this.#local
    const mirror = (sign: '+' | '-', changes: MembershipChange[]): LocalOutcome => ({
      result: changes,
      changes: changes.flatMap(({ room, connectionIds }) => connectionIds.map((connectionId) => ({ sign, connectionId, room }))),
      countRooms: changes.map(({ room }) => room),
    })
    const single = (outcome: LocalOutcome): LocalOutcome => ({ ...outcome, result: (outcome.result as MembershipChange[])[0] })
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
    if (await this.#holds(connectionId)) return this.applyLocally(command)
    const instance = await this.#liveOwner(connectionId)
    if (instance === undefined) throw new UnknownConnectionError(connectionId)
    return this.#send(instance, command)
  }

  /**
   * A room-wide command: every instance holding members of `sourceRoom` applies it to its own
   * members; the changes are merged per room, counted once all are done. `rooms` orders the
   * changes (null: the rooms that changed, sorted).
   */
  async #roomWide(sourceRoom: string, command: RoomCommand, rooms: readonly string[] | null): Promise<MembershipChange[]> {
    this.#assertOpen()
    const members = await this.#store.members(sourceRoom)
    const instances = new Set<string>()
    const dead = new Set<string>()
    for (const owner of members.length ? await this.#store.owners(members) : []) {
      if (!owner) continue
      if (owner.instance === this.instanceId || owner.alive) instances.add(owner.instance)
      else dead.add(owner.instance)
    }
    await Promise.all([...dead].map((instance) => this.#store.purge(instance)))
    const results = await Promise.all(
      [...instances].map((instance) => (instance === this.instanceId ? this.applyLocally(command) : this.#send(instance, command).catch(gone))),
    )
    const changed = new Map<string, Set<string>>()
    for (const change of results.flat() as MembershipChange[]) {
      let ids = changed.get(change.room)
      if (!ids) changed.set(change.room, (ids = new Set()))
      for (const id of change.connectionIds) ids.add(id)
    }
    const order = rooms ? [...new Set(rooms)] : sorted(changed.keys())
    const counts = await this.#store.counts(order)
    return order.map((room, i) => ({ room, connectionIds: sorted(changed.get(room) ?? []), memberCount: counts[i] ?? 0 }))
  }

  /** Sends a command to the instance holding its connection; one that stopped means the connection is gone. */
  async #send(instance: string, command: RoomCommand): Promise<CommandResult> {
    try {
      return await this.#channel.send(instance, command)
    } catch (error) {
      if (error instanceof RemoteCommandError && error.unknownConnection !== undefined) throw new UnknownConnectionError(error.unknownConnection)
      if (error instanceof InstanceUnreachableError && (await this.#store.purge(instance))) {
        throw new UnknownConnectionError('connectionId' in command ? command.connectionId : '')
      }
      throw error
    }
  }

  /** The live instance holding a connection another instance holds; purges a dead one. */
  async #liveOwner(connectionId: string): Promise<string | undefined> {
    const [owner] = await this.#store.owners([connectionId])
    // Redis naming this instance for a connection it does not hold is a removal still in flight.
    if (!owner || owner.instance === this.instanceId) return undefined
    if (owner.alive) return owner.instance
    await this.#store.purge(owner.instance)
    return undefined
  }

  async #beat(ttlMs: number): Promise<void> {
    if (await this.#store.heartbeat(this.instanceId, ttlMs)) return
    // The heartbeat had expired, so others may have purged our connections: write them back.
    this.#onError(new Error(`rooms registry heartbeat of instance ${this.instanceId} had expired; writing its connections back`), 'heartbeat')
    const { written } = await this.#inTurn(async () => {
      const ids = this.#localIds()
      const changes: StoredChange[] = []
      for (const connectionId of ids) {
        for (const room of (await this.#local.roomsOf(connectionId)) ?? []) changes.push({ sign: '+', connectionId, room })
      }
      return { written: Promise.all([this.#store.register(this.instanceId, ids), this.#store.apply(changes, [])]) }
    })
    await written
  }

  async #holds(connectionId: string): Promise<boolean> {
    return (await this.#local.roomsOf(connectionId)) !== undefined
  }

  #localIds(): string[] {
    return [...this.#local.localRecipients({ rooms: null, omit: [] }).keys()]
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('the rooms registry is closed')
  }
}

/** A room-wide command sent to an instance that stopped meanwhile changed nothing there. */
function gone(error: unknown): MembershipChange[] {
  if (error instanceof UnknownConnectionError) return []
  throw error
}
