/**
 * The cluster's share of the rooms registry, in Redis: typed access to its keys and scripts
 * (redis-scripts.ts) on one ioredis connection. Every call is bounded: it resolves, or rejects
 * with a ServiceUnavailableError naming Redis, within `timeoutMs`.
 */
import { ReplyError, type Redis } from 'ioredis'
import { redisFailed, ServiceUnavailableError } from '../errors.ts'
import { TimeoutError, withTimeout } from '../timeouts.ts'
import type { RoomInfo, Target } from './registry.ts'
import { scripts, type ScriptName } from './redis-scripts.ts'

/** A membership to add (`+`) or remove (`-`) in Redis. */
export interface StoredChange {
  readonly sign: '+' | '-'
  readonly connectionId: string
  readonly room: string
}

/** Where a connection is held, as Redis knows it. */
export interface Owner {
  /** The instance id. */
  readonly instance: string
  /** Whether its heartbeat is still there. */
  readonly alive: boolean
}

export type ScriptCalls = Record<ScriptName, (...args: (string | number)[]) => Promise<unknown>>

/**
 * What the registry asks of its share of Redis, on one Redis (`RoomStore`) or a Redis Cluster
 * (`ClusterRoomStore`, redis-cluster-store.ts). Every call is bounded (ServiceUnavailableError
 * naming Redis past the timeout). Writes (`register`, `apply`, `drop`, `rewrite`) are issued at
 * once, in call order on this instance's share, so that Redis applies them in the order of the
 * local changes.
 */
export interface RoomStorage {
  register(instance: string, connectionIds: readonly string[]): Promise<unknown>
  apply(changes: readonly StoredChange[], countRooms: readonly string[]): Promise<number[]>
  drop(connectionIds: readonly string[]): Promise<unknown>
  purge(instance: string, force?: boolean): Promise<boolean>
  sweep(): Promise<number>
  owners(connectionIds: readonly string[]): Promise<(Owner | undefined)[]>
  heartbeat(instance: string, ttlMs: number): Promise<boolean>
  rewrite(instance: string, ttlMs: number, held: ReadonlyMap<string, readonly string[]>): Promise<unknown>
  ping(): Promise<unknown>
  retire(instance: string): Promise<unknown>
  rooms(): Promise<RoomInfo[]>
  members(room: string): Promise<string[]>
  roomsOf(connectionId: string): Promise<string[]>
  counts(rooms: readonly string[]): Promise<number[]>
  recipientCount(target: Target): Promise<number>
}

/**
 * Settles within `timeoutMs`. A failure is Redis being unavailable (ServiceUnavailableError),
 * except an error a script raised ("ERR …"), which is a bug to report as it is.
 */
export async function boundedRedis<T>(call: Promise<T>, timeoutMs: number): Promise<T> {
  try {
    return await withTimeout(call, timeoutMs, 'Redis')
  } catch (error) {
    if (error instanceof TimeoutError)
      throw new ServiceUnavailableError('redis', `Redis did not answer within ${error.timeoutMs} ms`, {
        cause: error,
      })
    if (error instanceof ReplyError && /^ERR /.test((error as Error).message)) throw error
    throw redisFailed(error)
  }
}

/** How many connections one healing write carries: big enough to be few, small enough not to stall Redis. */
const HEAL_CHUNK = 500

/** The arguments of the `mizzenRoomsSetRooms` calls that write `held` (connection → rooms), chunked. */
export function setRoomsChunks(held: ReadonlyMap<string, readonly string[]>): (string | number)[][] {
  const chunks: (string | number)[][] = []
  let chunk: (string | number)[] = []
  let count = 0
  for (const [connectionId, rooms] of held) {
    chunk.push(connectionId, rooms.length, ...rooms)
    if (++count % HEAL_CHUNK === 0) {
      chunks.push(chunk)
      chunk = []
    }
  }
  if (chunk.length) chunks.push(chunk)
  return chunks
}

export const sorted = (values: Iterable<string>) => [...values].sort()
export const byName = (x: RoomInfo, y: RoomInfo) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)

/** The registry's share of one Redis: every script on the one connection. */
export class RoomStore implements RoomStorage {
  readonly #redis: Redis
  readonly #calls: ScriptCalls
  readonly #p: string
  readonly #timeoutMs: number

  constructor(redis: Redis, prefix: string, timeoutMs: number) {
    // defineCommand sends EVALSHA and falls back to EVAL once per script.
    for (const [name, lua] of Object.entries(scripts)) redis.defineCommand(name, { numberOfKeys: 0, lua })
    this.#redis = redis
    this.#calls = redis as unknown as ScriptCalls
    this.#p = prefix
    this.#timeoutMs = timeoutMs
  }

  register(instance: string, connectionIds: readonly string[]): Promise<unknown> {
    return this.#run('mizzenRoomsRegister', instance, ...connectionIds)
  }

  /** Applies the changes, in order, and returns the member count of each of `countRooms`. */
  async apply(changes: readonly StoredChange[], countRooms: readonly string[]): Promise<number[]> {
    const flat = changes.flatMap(({ sign, connectionId, room }) => [sign, connectionId, room])
    return (await this.#run('mizzenRoomsApply', changes.length, ...flat, ...countRooms)) as number[]
  }

  drop(connectionIds: readonly string[]): Promise<unknown> {
    return this.#run('mizzenRoomsDrop', ...connectionIds)
  }

  /** Purges a dead instance's connections; false when its heartbeat is there (unless `force`). */
  async purge(instance: string, force = false): Promise<boolean> {
    return ((await this.#run('mizzenRoomsPurge', instance, force ? 1 : 0)) as number) >= 0
  }

  /** Purges every dead instance; resolves with how many connections went. */
  async sweep(): Promise<number> {
    return (await this.#run('mizzenRoomsSweep')) as number
  }

  async owners(connectionIds: readonly string[]): Promise<(Owner | undefined)[]> {
    const flat = (await this.#run('mizzenRoomsOwners', ...connectionIds)) as (string | number)[]
    return connectionIds.map((_, i) =>
      flat[2 * i] ? { instance: String(flat[2 * i]), alive: flat[2 * i + 1] === 1 } : undefined,
    )
  }

  /** Refreshes the heartbeat; resolves false when it had expired (the instance may have been purged). */
  async heartbeat(instance: string, ttlMs: number): Promise<boolean> {
    return (await this.#run('mizzenRoomsHeartbeat', instance, ttlMs)) === 1
  }

  /**
   * Makes Redis hold exactly what `held` says of this instance: its heartbeat, its connections
   * (dropping the ones it no longer holds) and each one's rooms. Issued at once, as one pipeline
   * of scripts, so that writes issued after it apply after it.
   */
  rewrite(instance: string, ttlMs: number, held: ReadonlyMap<string, readonly string[]>): Promise<unknown> {
    const writes: Promise<unknown>[] = [this.#calls.mizzenRoomsClaim(this.#p, instance, ttlMs, ...held.keys())]
    for (const chunk of setRoomsChunks(held)) writes.push(this.#calls.mizzenRoomsSetRooms(this.#p, ...chunk))
    return this.#bounded(Promise.all(writes))
  }

  /** Resolves when Redis answers a PING on this connection (after everything sent before it). */
  ping(): Promise<unknown> {
    return this.#bounded(this.#redis.ping())
  }

  retire(instance: string): Promise<unknown> {
    return this.#run('mizzenRoomsRetire', instance)
  }

  async rooms(): Promise<RoomInfo[]> {
    const flat = (await this.#run('mizzenRoomsList')) as (string | number)[]
    const rooms: RoomInfo[] = []
    for (let i = 0; i < flat.length; i += 2) rooms.push({ name: String(flat[i]), memberCount: Number(flat[i + 1]) })
    return rooms.sort(byName)
  }

  async members(room: string): Promise<string[]> {
    return sorted((await this.#run('mizzenRoomsMembers', room)) as string[])
  }

  async roomsOf(connectionId: string): Promise<string[]> {
    return sorted(await this.#bounded(this.#redis.smembers(`${this.#p}conn:${connectionId}`)))
  }

  /** The member count of each room, read at once. */
  async counts(rooms: readonly string[]): Promise<number[]> {
    return this.apply([], rooms)
  }

  async recipientCount(target: Target): Promise<number> {
    const rooms = target.rooms === null ? null : [...new Set(target.rooms)]
    const args = rooms === null ? [-1, ...target.omit] : [rooms.length, ...rooms, ...target.omit]
    return (await this.#run('mizzenRoomsRecipients', ...args)) as number
  }

  #run(script: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return this.#bounded(this.#calls[script](this.#p, ...args))
  }

  #bounded<T>(call: Promise<T>): Promise<T> {
    return boundedRedis(call, this.#timeoutMs)
  }
}
