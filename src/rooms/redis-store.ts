/**
 * The cluster's share of the rooms registry, in Redis. Keys, under a prefix `p`:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `p owners` | hash | connection id → id of the instance that holds it |
 * | `p rooms` | set | names of the rooms with at least one member |
 * | `p room:<name>` | set | the members of a room |
 * | `p conn:<id>` | set | the rooms of a connection |
 * | `p instances` | set | instances that registered (for the sweep) |
 * | `p instance:<id>` | string, TTL | an instance's heartbeat: gone means the instance is dead |
 * | `p instance:<id>:connections` | set | the connections an instance holds (to purge them) |
 *
 * Every write that reads first (a room emptied leaves `rooms`; a purge checks the heartbeat) is
 * a Lua script, so that another instance never sees, or writes into, half of it. Only the
 * instance that holds a connection writes its memberships (in the order it applied them); other
 * instances only delete them, when they purge a dead instance.
 *
 * The scripts build key names from the prefix, so they need one Redis (not Redis Cluster).
 */
import type { Redis } from 'ioredis'
import type { RoomInfo, Target } from './registry.ts'

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

/** Removes one connection from every room, its owner and its instance's set (Lua helper). */
const dropFunction = /* lua */ `
local function drop(p, id)
  local ckey = p .. 'conn:' .. id
  for _, room in ipairs(redis.call('SMEMBERS', ckey)) do
    local rkey = p .. 'room:' .. room
    redis.call('SREM', rkey, id)
    if redis.call('SCARD', rkey) == 0 then redis.call('SREM', p .. 'rooms', room) end
  end
  redis.call('DEL', ckey)
  local owner = redis.call('HGET', p .. 'owners', id)
  if owner then redis.call('SREM', p .. 'instance:' .. owner .. ':connections', id) end
  redis.call('HDEL', p .. 'owners', id)
end
`

/**
 * Removes every connection of an instance: a dead one (unless its heartbeat is back), or, with
 * `force`, this instance's previous run under the same id (Lua helper).
 */
const purgeFunction = /* lua */ `
local function purge(p, instance, force)
  local hb = p .. 'instance:' .. instance
  if not force and redis.call('EXISTS', hb) == 1 then return -1 end
  local ids = redis.call('SMEMBERS', hb .. ':connections')
  for _, id in ipairs(ids) do
    if redis.call('HGET', p .. 'owners', id) == instance then drop(p, id) end
  end
  redis.call('DEL', hb .. ':connections')
  redis.call('SREM', p .. 'instances', instance)
  return #ids
end
`

const scripts = {
  /** ARGV: prefix, instance, connection ids. Registers connections as held by `instance`. */
  mizzenRoomsRegister: `
local p, instance = ARGV[1], ARGV[2]
for i = 3, #ARGV do
  redis.call('HSET', p .. 'owners', ARGV[i], instance)
  redis.call('SADD', p .. 'instance:' .. instance .. ':connections', ARGV[i])
end
return #ARGV - 2`,

  /**
   * ARGV: prefix, n, n × (sign, connection, room), then rooms to count. Applies the changes and
   * returns the member counts. A join of a connection with no owner (purged meanwhile) is
   * skipped: the owner's resync writes it back.
   */
  mizzenRoomsApply: `
local p, n = ARGV[1], tonumber(ARGV[2])
for i = 0, n - 1 do
  local sign, id, room = ARGV[3 + i * 3], ARGV[4 + i * 3], ARGV[5 + i * 3]
  local rkey = p .. 'room:' .. room
  if sign == '+' then
    if redis.call('HEXISTS', p .. 'owners', id) == 1 then
      redis.call('SADD', rkey, id)
      redis.call('SADD', p .. 'conn:' .. id, room)
      redis.call('SADD', p .. 'rooms', room)
    end
  else
    redis.call('SREM', p .. 'conn:' .. id, room)
    redis.call('SREM', rkey, id)
    if redis.call('SCARD', rkey) == 0 then redis.call('SREM', p .. 'rooms', room) end
  end
end
local counts = {}
for i = 3 + n * 3, #ARGV do counts[#counts + 1] = redis.call('SCARD', p .. 'room:' .. ARGV[i]) end
return counts`,

  /** ARGV: prefix, connection ids. Drops the connections. */
  mizzenRoomsDrop: `${dropFunction}
for i = 2, #ARGV do drop(ARGV[1], ARGV[i]) end
return #ARGV - 1`,

  /** ARGV: prefix, instance, force (1/0). Purges a dead instance; -1 when it is alive and not forced. */
  mizzenRoomsPurge: `${dropFunction}${purgeFunction}
return purge(ARGV[1], ARGV[2], ARGV[3] == '1')`,

  /** ARGV: prefix. Purges every registered instance whose heartbeat is gone; returns how many connections went. */
  mizzenRoomsSweep: `${dropFunction}${purgeFunction}
local purged = 0
for _, instance in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'instances')) do
  local n = purge(ARGV[1], instance, false)
  if n > 0 then purged = purged + n end
end
return purged`,

  /** ARGV: prefix, connection ids. Per connection: its owner ('' for none) and 1 if alive. */
  mizzenRoomsOwners: `
local p, out = ARGV[1], {}
for i = 2, #ARGV do
  local owner = redis.call('HGET', p .. 'owners', ARGV[i])
  if owner then
    out[#out + 1] = owner
    out[#out + 1] = redis.call('EXISTS', p .. 'instance:' .. owner)
  else
    out[#out + 1] = ''
    out[#out + 1] = 0
  end
end
return out`,

  /** ARGV: prefix, instance, ttl ms. Refreshes the heartbeat; returns 1 if it was still there. */
  mizzenRoomsHeartbeat: `
local hb = ARGV[1] .. 'instance:' .. ARGV[2]
local was = redis.call('EXISTS', hb)
redis.call('SET', hb, '1', 'PX', ARGV[3])
redis.call('SADD', ARGV[1] .. 'instances', ARGV[2])
return was`,

  /** ARGV: prefix, instance. Forgets an instance that stops (its connections were dropped). */
  mizzenRoomsRetire: `
local hb = ARGV[1] .. 'instance:' .. ARGV[2]
redis.call('DEL', hb, hb .. ':connections')
redis.call('SREM', ARGV[1] .. 'instances', ARGV[2])
return 1`,

  /** ARGV: prefix. Flat list of room, member count. */
  mizzenRoomsList: `
local p, out = ARGV[1], {}
for _, room in ipairs(redis.call('SMEMBERS', p .. 'rooms')) do
  local n = redis.call('SCARD', p .. 'room:' .. room)
  if n > 0 then
    out[#out + 1] = room
    out[#out + 1] = n
  end
end
return out`,

  /**
   * ARGV: prefix, n (-1 for a blast), n rooms, then omitted ids. Counts the distinct connections
   * addressed: members of the rooms, and connections whose id is a targeted room name.
   */
  mizzenRoomsRecipients: `
local p, n = ARGV[1], tonumber(ARGV[2])
local seen, count = {}, 0
local omitFrom = 3
if n < 0 then
  count = redis.call('HLEN', p .. 'owners')
  for i = 3, #ARGV do
    if not seen[ARGV[i]] then
      seen[ARGV[i]] = true
      if redis.call('HEXISTS', p .. 'owners', ARGV[i]) == 1 then count = count - 1 end
    end
  end
  return count
end
local function add(id) if not seen[id] then seen[id] = true; count = count + 1 end end
for i = 3, 2 + n do
  for _, id in ipairs(redis.call('SMEMBERS', p .. 'room:' .. ARGV[i])) do add(id) end
  if redis.call('HEXISTS', p .. 'owners', ARGV[i]) == 1 then add(ARGV[i]) end
end
for i = 3 + n, #ARGV do
  if seen[ARGV[i]] then seen[ARGV[i]] = false; count = count - 1 end
end
return count`,
} as const

type ScriptName = keyof typeof scripts
type ScriptCalls = Record<ScriptName, (...args: (string | number)[]) => Promise<unknown>>

const sorted = (values: Iterable<string>) => [...values].sort()

/** Typed access to the registry's keys and scripts on one ioredis connection. */
export class RoomStore {
  readonly #redis: Redis
  readonly #calls: ScriptCalls
  readonly #p: string

  constructor(redis: Redis, prefix: string) {
    // defineCommand sends EVALSHA and falls back to EVAL once per script.
    for (const [name, lua] of Object.entries(scripts)) redis.defineCommand(name, { numberOfKeys: 0, lua })
    this.#redis = redis
    this.#calls = redis as unknown as ScriptCalls
    this.#p = prefix
  }

  register(instance: string, connectionIds: readonly string[]): Promise<unknown> {
    return this.#calls.mizzenRoomsRegister(this.#p, instance, ...connectionIds)
  }

  /** Applies the changes, in order, and returns the member count of each of `countRooms`. */
  async apply(changes: readonly StoredChange[], countRooms: readonly string[]): Promise<number[]> {
    const flat = changes.flatMap(({ sign, connectionId, room }) => [sign, connectionId, room])
    return (await this.#calls.mizzenRoomsApply(this.#p, changes.length, ...flat, ...countRooms)) as number[]
  }

  drop(connectionIds: readonly string[]): Promise<unknown> {
    return this.#calls.mizzenRoomsDrop(this.#p, ...connectionIds)
  }

  /** Purges a dead instance's connections; false when its heartbeat is there (unless `force`). */
  async purge(instance: string, force = false): Promise<boolean> {
    return ((await this.#calls.mizzenRoomsPurge(this.#p, instance, force ? 1 : 0)) as number) >= 0
  }

  /** Purges every dead instance; resolves with how many connections went. */
  async sweep(): Promise<number> {
    return (await this.#calls.mizzenRoomsSweep(this.#p)) as number
  }

  async owners(connectionIds: readonly string[]): Promise<(Owner | undefined)[]> {
    const flat = (await this.#calls.mizzenRoomsOwners(this.#p, ...connectionIds)) as (string | number)[]
    return connectionIds.map((_, i) => (flat[2 * i] ? { instance: String(flat[2 * i]), alive: flat[2 * i + 1] === 1 } : undefined))
  }

  /** Refreshes the heartbeat; resolves false when it had expired (the instance may have been purged). */
  async heartbeat(instance: string, ttlMs: number): Promise<boolean> {
    return (await this.#calls.mizzenRoomsHeartbeat(this.#p, instance, ttlMs)) === 1
  }

  retire(instance: string): Promise<unknown> {
    return this.#calls.mizzenRoomsRetire(this.#p, instance)
  }

  async rooms(): Promise<RoomInfo[]> {
    const flat = (await this.#calls.mizzenRoomsList(this.#p)) as (string | number)[]
    const rooms: RoomInfo[] = []
    for (let i = 0; i < flat.length; i += 2) rooms.push({ name: String(flat[i]), memberCount: Number(flat[i + 1]) })
    return rooms.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
  }

  async members(room: string): Promise<string[]> {
    return sorted(await this.#redis.smembers(`${this.#p}room:${room}`))
  }

  async roomsOf(connectionId: string): Promise<string[]> {
    return sorted(await this.#redis.smembers(`${this.#p}conn:${connectionId}`))
  }

  /** The member count of each room, read at once. */
  async counts(rooms: readonly string[]): Promise<number[]> {
    return this.apply([], rooms)
  }

  async recipientCount(target: Target): Promise<number> {
    const rooms = target.rooms === null ? null : [...new Set(target.rooms)]
    const args = rooms === null ? [-1, ...target.omit] : [rooms.length, ...rooms, ...target.omit]
    return (await this.#calls.mizzenRoomsRecipients(this.#p, ...args)) as number
  }
}
