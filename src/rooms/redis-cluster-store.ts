/**
 * The rooms registry's share of a Redis Cluster (docs/architecture.md §14): the same scripts as
 * on one Redis (redis-scripts.ts, `shardedScripts`), each run in one instance's slot.
 *
 * Every key an instance writes lives under its own prefix, `p{<instance>}:`, whose hash tag puts
 * them all in one slot: its heartbeat, its connections and their owner, its rooms and their
 * members, its presence cards (redis-presence.ts) and its command channels (sharded,
 * redis-commands.ts). A connection is written only by the instance holding it, so every write is
 * one script in the writer's own slot, atomic as on one Redis, and issued in the order of the
 * local changes. The only key outside an instance's slot is the index of instances,
 * `p instances` (a set), which a cluster read walks: it purges the dead ones first (each in its
 * slot, then out of the index), so no answer counts a dead instance's connections, and reads the
 * live ones' slots: a room's members, the rooms, a count are the union (or sum) over them, each
 * connection being in one instance's slot only. A read costs two calls per instance, at once,
 * but the recipient count of a room message (paid per message): one per instance, each checking
 * its instance's liveness in its slot before counting there.
 *
 * Liveness: an instance is alive while its heartbeat key lives and someone listens on its sharded
 * command channel (or has not stopped for a third of the heartbeat TTL), counted by
 * `PUBSUB SHARDNUMSUB` inside the script, on the primary that serves the instance's slot, where
 * the shard subscriber listens.
 */
import type { Cluster } from 'ioredis'
import type { RoomInfo, Target } from './registry.ts'
import { shardedScripts, type ScriptName } from './redis-scripts.ts'
import {
  boundedRedis,
  byName,
  setRoomsChunks,
  sorted,
  type Owner,
  type RoomStorage,
  type StoredChange,
} from './redis-store.ts'

/** The prefix of an instance's keys and channels on a cluster: its hash tag keeps them in one slot. */
export const instancePrefix = (prefix: string, instance: string) => `${prefix}{${instance}}:`

/** A script called with its slot's key first (for routing), then the instance's prefix and its arguments. */
type SlotCalls = Record<ScriptName, (key: string, prefix: string, ...args: (string | number)[]) => Promise<unknown>>

const SUFFIX = 'InSlot'

export class ClusterRoomStore implements RoomStorage {
  readonly #redis: Cluster
  readonly #calls: SlotCalls
  readonly #p: string
  readonly #self: string
  readonly #timeoutMs: number

  constructor(redis: Cluster, prefix: string, instance: string, timeoutMs: number) {
    // One declared key, the instance's heartbeat: the cluster client sends the call to its slot.
    for (const [name, lua] of Object.entries(shardedScripts))
      redis.defineCommand(name + SUFFIX, { numberOfKeys: 1, lua })
    this.#redis = redis
    const calls = redis as unknown as Record<string, SlotCalls[ScriptName]>
    this.#calls = Object.fromEntries(
      Object.keys(shardedScripts).map((name) => [name, calls[name + SUFFIX]!.bind(redis)]),
    ) as SlotCalls
    this.#p = prefix
    this.#self = instance
    this.#timeoutMs = timeoutMs
  }

  register(instance: string, connectionIds: readonly string[]): Promise<unknown> {
    return this.#bounded(this.#in(instance, 'mizzenRoomsRegister', instance, ...connectionIds))
  }

  /**
   * Applies this instance's changes in its slot (issued at once), then counts `countRooms` over
   * every instance: its own counts come with the write, the others' are read after it.
   */
  async apply(changes: readonly StoredChange[], countRooms: readonly string[]): Promise<number[]> {
    const flat = changes.flatMap(({ sign, connectionId, room }) => [sign, connectionId, room])
    const own = this.#in(this.#self, 'mizzenRoomsApply', changes.length, ...flat, ...countRooms)
    return this.#bounded(
      (async () => {
        const counts = (await own) as number[]
        if (!countRooms.length) return counts
        const others = (await this.#instances()).filter((instance) => instance !== this.#self)
        return sum(counts, (await this.#each(others, 'mizzenRoomsApply', 0, ...countRooms)) as number[][])
      })(),
    )
  }

  drop(connectionIds: readonly string[]): Promise<unknown> {
    return this.#bounded(this.#in(this.#self, 'mizzenRoomsDrop', ...connectionIds))
  }

  purge(instance: string, force = false): Promise<boolean> {
    return this.#bounded(this.#purge(instance, force).then((purged) => purged >= 0))
  }

  async sweep(): Promise<number> {
    return this.#bounded(
      (async () => {
        const purged = await Promise.all((await this.#instances()).map((instance) => this.#purge(instance, false)))
        return purged.reduce((total, n) => total + Math.max(0, n), 0)
      })(),
    )
  }

  /** Per connection, the instance whose slot lists it, if any (one that is alive first). */
  owners(connectionIds: readonly string[]): Promise<(Owner | undefined)[]> {
    return this.#bounded(this.#owners(connectionIds))
  }

  heartbeat(instance: string, ttlMs: number): Promise<boolean> {
    return this.#bounded(
      Promise.all([
        this.#in(instance, 'mizzenRoomsHeartbeat', instance, ttlMs),
        this.#redis.sadd(this.#index(), instance),
      ]).then(([was]) => was === 1),
    )
  }

  rewrite(instance: string, ttlMs: number, held: ReadonlyMap<string, readonly string[]>): Promise<unknown> {
    const writes: Promise<unknown>[] = [
      this.#in(instance, 'mizzenRoomsClaim', instance, ttlMs, ...held.keys()),
      this.#redis.sadd(this.#index(), instance),
    ]
    for (const chunk of setRoomsChunks(held)) writes.push(this.#in(instance, 'mizzenRoomsSetRooms', ...chunk))
    return this.#bounded(Promise.all(writes))
  }

  /** Resolves when the node serving this instance's slot answers (after every write sent there before). */
  ping(): Promise<unknown> {
    return this.#bounded(this.#redis.exists(this.#slotKey(this.#self)))
  }

  retire(instance: string): Promise<unknown> {
    return this.#bounded(
      Promise.all([this.#in(instance, 'mizzenRoomsRetire', instance), this.#redis.srem(this.#index(), instance)]),
    )
  }

  async rooms(): Promise<RoomInfo[]> {
    return this.#bounded(
      (async () => {
        const counts = new Map<string, number>()
        for (const flat of (await this.#each(await this.#instances(), 'mizzenRoomsList')) as (string | number)[][]) {
          for (let i = 0; i < flat.length; i += 2) {
            const name = String(flat[i])
            counts.set(name, (counts.get(name) ?? 0) + Number(flat[i + 1]))
          }
        }
        return [...counts].map(([name, memberCount]) => ({ name, memberCount })).sort(byName)
      })(),
    )
  }

  async members(room: string): Promise<string[]> {
    return this.#bounded(
      (async () => {
        const each = (await this.#each(await this.#instances(), 'mizzenRoomsMembers', room)) as string[][]
        return sorted(new Set(each.flat()))
      })(),
    )
  }

  async roomsOf(connectionId: string): Promise<string[]> {
    return this.#bounded(
      (async () => {
        const [owner] = await this.#owners([connectionId])
        if (!owner) return []
        return sorted(await this.#redis.smembers(`${instancePrefix(this.#p, owner.instance)}conn:${connectionId}`))
      })(),
    )
  }

  async counts(rooms: readonly string[]): Promise<number[]> {
    return this.#bounded(
      (async () => {
        const each = (await this.#each(await this.#instances(), 'mizzenRoomsApply', 0, ...rooms)) as number[][]
        return sum(
          rooms.map(() => 0),
          each,
        )
      })(),
    )
  }

  /**
   * A connection is in one instance's slot only: the distinct recipients are the sum over the
   * instances. Paid once per room message, so it reads the index and then makes one call per
   * instance, all at once: each checks its instance's liveness in its slot and counts there
   * (`mizzenRoomsRecipientsOf`); a dead one is purged by that call, counts nothing and leaves the
   * index, as `#instances` does before the other reads in a round of calls of its own.
   */
  async recipientCount(target: Target): Promise<number> {
    const rooms = target.rooms === null ? null : [...new Set(target.rooms)]
    const args = rooms === null ? [-1, ...target.omit] : [rooms.length, ...rooms, ...target.omit]
    return this.#bounded(
      (async () => {
        const others = (await this.#redis.smembers(this.#index())).filter((instance) => instance !== this.#self)
        const instances = [this.#self, ...others]
        const each = (await Promise.all(
          instances.map((instance) => this.#in(instance, 'mizzenRoomsRecipientsOf', instance, ...args)),
        )) as number[]
        // This instance is never taken out of the index here: its next heartbeat writes it back.
        const dead = others.filter((_, i) => each[i + 1]! < 0)
        if (dead.length) await this.#redis.srem(this.#index(), ...dead)
        return each.reduce((total, n) => total + Math.max(0, n), 0)
      })(),
    )
  }

  /**
   * The cards of `connectionIds` as their owners wrote them ('' for none), read from each owner's
   * slot (`p{<instance>}:presence:<instance>`, redis-presence.ts).
   */
  presenceCards(connectionIds: readonly string[]): Promise<string[]> {
    return this.#bounded(
      (async () => {
        const owners = await this.#owners(connectionIds)
        return Promise.all(
          connectionIds.map(async (id, i) => {
            const owner = owners[i]
            if (!owner) return ''
            const prefix = instancePrefix(this.#p, owner.instance)
            return (await this.#redis.hget(`${prefix}presence:${owner.instance}`, id)) ?? ''
          }),
        )
      })(),
    )
  }

  async #owners(connectionIds: readonly string[]): Promise<(Owner | undefined)[]> {
    const found: (Owner | undefined)[] = connectionIds.map(() => undefined)
    if (!connectionIds.length) return found
    const instances = await this.#instances()
    const each = (await this.#each(instances, 'mizzenRoomsOwners', ...connectionIds)) as (string | number)[][]
    for (const flat of each) {
      connectionIds.forEach((_, i) => {
        if (!flat[2 * i]) return
        const owner = { instance: String(flat[2 * i]), alive: flat[2 * i + 1] === 1 }
        if (!found[i] || (!found[i].alive && owner.alive)) found[i] = owner
      })
    }
    return found
  }

  /** Purges `instance` in its slot (-1 when alive and not forced), then takes it out of the index. */
  async #purge(instance: string, force: boolean): Promise<number> {
    const purged = (await this.#in(instance, 'mizzenRoomsPurge', instance, force ? 1 : 0)) as number
    // Its heartbeat is gone: out of the index (it writes itself back there if it still runs).
    if (purged >= 0) await this.#redis.srem(this.#index(), instance)
    return purged
  }

  /**
   * The live instances (this one always included): every instance of the index is checked in
   * its slot first, a dead one purged there and taken out of the index, as every read on one
   * Redis sweeps first.
   */
  async #instances(): Promise<string[]> {
    const indexed = (await this.#redis.smembers(this.#index())).filter((instance) => instance !== this.#self)
    const purged = await Promise.all(indexed.map((instance) => this.#purge(instance, false)))
    return [this.#self, ...indexed.filter((_, i) => purged[i]! < 0)]
  }

  #each(instances: readonly string[], script: ScriptName, ...args: (string | number)[]): Promise<unknown[]> {
    return Promise.all(instances.map((instance) => this.#in(instance, script, ...args)))
  }

  #in(instance: string, script: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    return this.#calls[script](this.#slotKey(instance), instancePrefix(this.#p, instance), ...args)
  }

  /** The key naming an instance's slot (its heartbeat). */
  #slotKey(instance: string): string {
    return `${instancePrefix(this.#p, instance)}instance:${instance}`
  }

  #index(): string {
    return `${this.#p}instances`
  }

  #bounded<T>(call: Promise<T>): Promise<T> {
    return boundedRedis(call, this.#timeoutMs)
  }
}

/** Adds each list of counts into `into`, position by position. */
function sum(into: number[], each: readonly (readonly number[])[]): number[] {
  const total = [...into]
  for (const counts of each) counts.forEach((n, i) => (total[i] = (total[i] ?? 0) + n))
  return total
}
