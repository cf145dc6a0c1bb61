/**
 * The Lua scripts of the Redis rooms registry. Keys, under a prefix `p`:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `p owners` | hash | connection id → id of the instance that holds it |
 * | `p rooms` | set | names of the rooms with at least one member |
 * | `p room:<name>` | set | the members of a room |
 * | `p conn:<id>` | set | the rooms of a connection |
 * | `p instances` | set | instances that registered (for the sweep) |
 * | `p instance:<id>` | string, TTL | an instance's heartbeat (its TTL in ms): gone means the instance is dead |
 * | `p instance:<id>:deaf` | string, TTL | since when nobody listens on the instance's command channel |
 * | `p instance:<id>:connections` | set | the connections an instance holds (to purge them) |
 *
 * Every write that reads first (a room emptied leaves `rooms`; a purge checks the heartbeat) is
 * a script, so that another instance never sees, or writes into, half of it. Only the instance
 * that holds a connection writes its memberships; others only delete them, when they purge a
 * dead instance (see `alive`). Every script that answers a read first purges the dead instances
 * (`sweep`, O(instances) when none is; on a cluster, `mizzenRoomsRecipientsOf` checks the one
 * instance whose slot it reads), so no answer counts a dead instance's connections, whether or
 * not a periodic sweep ran since.
 *
 * The scripts build key names from the prefix. On one Redis the prefix is the registry's; on a
 * Redis Cluster (redis-cluster-store.ts) each instance's share lives under a prefix of its own
 * carrying its hash tag (`p{<instance>}:`), so that every script touches that one slot, and the
 * scripts are the `shardedScripts`: the instance's command channel is a sharded one there, its
 * listeners counted by `PUBSUB SHARDNUMSUB` on the node serving the slot.
 */

/** Removes one connection from every room, its owner and its instance's set. */
const drop = /* lua */ `
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
 * Whether an instance is alive: its heartbeat is there (it holds its TTL in ms), and it listens
 * on its command channel, or has not stopped listening for longer than a third of its heartbeat
 * TTL. A process that dies loses its Redis connections at once, so nobody listens for it any
 * more: it is dead after that grace, well before its heartbeat would expire; a listener that
 * reconnects within the grace (a blip, Redis restarting) keeps it alive. `deaf` holds when the
 * silence was first seen (Redis time, ms).
 */
const aliveWith = (numsub: 'NUMSUB' | 'SHARDNUMSUB') => /* lua */ `
local function alive(p, instance)
  local hb = p .. 'instance:' .. instance
  local ttl = tonumber(redis.call('GET', hb))
  if not ttl then return false end
  local deaf = hb .. ':deaf'
  if redis.call('PUBSUB', '${numsub}', p .. 'commands:' .. instance)[2] > 0 then
    if redis.call('EXISTS', deaf) == 1 then redis.call('DEL', deaf) end
    return true
  end
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  local since = tonumber(redis.call('GET', deaf))
  if not since then
    redis.call('SET', deaf, now, 'PX', ttl)
    return true
  end
  return now - since < ttl / 3
end
`

/**
 * Removes every connection of an instance: a dead one (unless it is alive after all), or, with
 * `force`, this instance's previous run under the same id. -1 when it is alive. Its heartbeat
 * goes too: an instance purged while it still runs finds it gone and writes itself back.
 */
const purgeWith = (alive: string) => /* lua */ `${alive}
local function purge(p, instance, force)
  local hb = p .. 'instance:' .. instance
  if not force and alive(p, instance) then return -1 end
  local ids = redis.call('SMEMBERS', hb .. ':connections')
  for _, id in ipairs(ids) do
    if redis.call('HGET', p .. 'owners', id) == instance then drop(p, id) end
  end
  redis.call('DEL', hb, hb .. ':connections', hb .. ':deaf')
  redis.call('SREM', p .. 'instances', instance)
  return #ids
end
local function sweep(p)
  local purged = 0
  for _, instance in ipairs(redis.call('SMEMBERS', p .. 'instances')) do
    local n = purge(p, instance, false)
    if n > 0 then purged = purged + n end
  end
  return purged
end
`

/** Refreshes an instance's heartbeat (its value: the TTL, in ms); returns 1 when it was still there. */
const beat = /* lua */ `
local function beat(p, instance, ttl)
  local hb = p .. 'instance:' .. instance
  local was = redis.call('EXISTS', hb)
  redis.call('SET', hb, ttl, 'PX', ttl)
  redis.call('SADD', p .. 'instances', instance)
  return was
end
`

/** Adds (`+`) or removes (`-`) one membership, keeping the room index. */
const change = /* lua */ `
local function change(p, sign, id, room)
  local rkey = p .. 'room:' .. room
  if sign == '+' then
    redis.call('SADD', rkey, id)
    redis.call('SADD', p .. 'conn:' .. id, room)
    redis.call('SADD', p .. 'rooms', room)
  else
    redis.call('SREM', p .. 'conn:' .. id, room)
    redis.call('SREM', rkey, id)
    if redis.call('SCARD', rkey) == 0 then redis.call('SREM', p .. 'rooms', room) end
  end
end
`

/**
 * Counts the distinct connections addressed (ARGV from `at`: n, -1 for a blast; n distinct rooms;
 * then omitted ids): members of the rooms, and connections whose id is a targeted room name.
 * One room, the common case, is O(1 + omitted): its SCARD, plus the connection named like it when
 * that is not a member, less each distinct omitted id among those. Several rooms need the union
 * of their sets, read whole (O(members)); a blast counts the owners.
 */
const recipients = /* lua */ `
local function recipients(p, at)
  local n = tonumber(ARGV[at])
  local first = at + 1
  if n == 1 then
    local room = ARGV[first]
    local rkey = p .. 'room:' .. room
    local count = redis.call('SCARD', rkey)
    local direct = redis.call('HEXISTS', p .. 'owners', room) == 1 and redis.call('SISMEMBER', rkey, room) == 0
    if direct then count = count + 1 end
    local omitted = {}
    for i = first + 1, #ARGV do
      local id = ARGV[i]
      if not omitted[id] then
        omitted[id] = true
        if (direct and id == room) or redis.call('SISMEMBER', rkey, id) == 1 then count = count - 1 end
      end
    end
    return count
  end
  local seen, count = {}, 0
  if n < 0 then
    count = redis.call('HLEN', p .. 'owners')
    for i = first, #ARGV do
      if not seen[ARGV[i]] then
        seen[ARGV[i]] = true
        if redis.call('HEXISTS', p .. 'owners', ARGV[i]) == 1 then count = count - 1 end
      end
    end
    return count
  end
  local function add(id) if not seen[id] then seen[id] = true; count = count + 1 end end
  for i = first, first + n - 1 do
    for _, id in ipairs(redis.call('SMEMBERS', p .. 'room:' .. ARGV[i])) do add(id) end
    if redis.call('HEXISTS', p .. 'owners', ARGV[i]) == 1 then add(ARGV[i]) end
  end
  for i = first + n, #ARGV do
    if seen[ARGV[i]] then seen[ARGV[i]] = false; count = count - 1 end
  end
  return count
end
`

function scriptsWith(numsub: 'NUMSUB' | 'SHARDNUMSUB') {
  const alive = aliveWith(numsub)
  const dead = drop + purgeWith(alive)
  return {
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
     * skipped: the owner's healing writes it back.
     */
    mizzenRoomsApply: `${dead}${change}
local p, n = ARGV[1], tonumber(ARGV[2])
for i = 0, n - 1 do
  local sign, id, room = ARGV[3 + i * 3], ARGV[4 + i * 3], ARGV[5 + i * 3]
  if sign == '-' or redis.call('HEXISTS', p .. 'owners', id) == 1 then change(p, sign, id, room) end
end
sweep(p)
local counts = {}
for i = 3 + n * 3, #ARGV do counts[#counts + 1] = redis.call('SCARD', p .. 'room:' .. ARGV[i]) end
return counts`,

    /** ARGV: prefix, connection ids. Drops the connections. */
    mizzenRoomsDrop: `${drop}
for i = 2, #ARGV do drop(ARGV[1], ARGV[i]) end
return #ARGV - 1`,

    /** ARGV: prefix, instance, force (1/0). Purges a dead instance; -1 when it is alive and not forced. */
    mizzenRoomsPurge: `${dead}
return purge(ARGV[1], ARGV[2], ARGV[3] == '1')`,

    /** ARGV: prefix. Purges every registered instance that is dead; returns how many connections went. */
    mizzenRoomsSweep: `${dead}
return sweep(ARGV[1])`,

    /** ARGV: prefix, connection ids. Per connection: its owner ('' for none) and 1 if alive. */
    mizzenRoomsOwners: `${alive}
local p, out = ARGV[1], {}
for i = 2, #ARGV do
  local owner = redis.call('HGET', p .. 'owners', ARGV[i])
  if owner then
    out[#out + 1] = owner
    out[#out + 1] = alive(p, owner) and 1 or 0
  else
    out[#out + 1] = ''
    out[#out + 1] = 0
  end
end
return out`,

    /** ARGV: prefix, instance, ttl ms. Refreshes the heartbeat; returns 1 if it was still there. */
    mizzenRoomsHeartbeat: `${beat}
return beat(ARGV[1], ARGV[2], ARGV[3])`,

    /**
     * ARGV: prefix, instance, ttl ms, then the ids of every connection the instance holds. The
     * first half of healing: refreshes the heartbeat, drops the connections Redis lists for the
     * instance that it no longer holds (closed while Redis was out of reach), and registers the
     * ones it holds. Returns how many it dropped.
     */
    mizzenRoomsClaim: `${drop}${beat}
local p, instance = ARGV[1], ARGV[2]
beat(p, instance, ARGV[3])
local held = {}
for i = 4, #ARGV do held[ARGV[i]] = true end
local set = p .. 'instance:' .. instance .. ':connections'
local dropped = 0
for _, id in ipairs(redis.call('SMEMBERS', set)) do
  if not held[id] then
    if redis.call('HGET', p .. 'owners', id) == instance then drop(p, id) else redis.call('SREM', set, id) end
    dropped = dropped + 1
  end
end
for i = 4, #ARGV do
  redis.call('HSET', p .. 'owners', ARGV[i], instance)
  redis.call('SADD', set, ARGV[i])
end
return dropped`,

    /**
     * ARGV: prefix, then per connection: id, k, k rooms. The second half of healing: makes each
     * connection's rooms exactly these (leaving the others, joining the missing).
     */
    mizzenRoomsSetRooms: `${change}
local p, i = ARGV[1], 2
while i <= #ARGV do
  local id, k = ARGV[i], tonumber(ARGV[i + 1])
  local wanted = {}
  for j = 1, k do wanted[ARGV[i + 1 + j]] = true end
  for _, room in ipairs(redis.call('SMEMBERS', p .. 'conn:' .. id)) do
    if wanted[room] then wanted[room] = nil else change(p, '-', id, room) end
  end
  for room in pairs(wanted) do change(p, '+', id, room) end
  i = i + 2 + k
end
return 1`,

    /** ARGV: prefix, instance. Forgets an instance that stops (its connections were dropped). */
    mizzenRoomsRetire: `
local hb = ARGV[1] .. 'instance:' .. ARGV[2]
redis.call('DEL', hb, hb .. ':connections')
redis.call('SREM', ARGV[1] .. 'instances', ARGV[2])
return 1`,

    /** ARGV: prefix. Flat list of room, member count (live instances only). */
    mizzenRoomsList: `${dead}
local p, out = ARGV[1], {}
sweep(p)
for _, room in ipairs(redis.call('SMEMBERS', p .. 'rooms')) do
  local n = redis.call('SCARD', p .. 'room:' .. room)
  if n > 0 then
    out[#out + 1] = room
    out[#out + 1] = n
  end
end
return out`,

    /** ARGV: prefix, room. Its members (live instances only). */
    mizzenRoomsMembers: `${dead}
sweep(ARGV[1])
return redis.call('SMEMBERS', ARGV[1] .. 'room:' .. ARGV[2])`,

    /** ARGV: prefix, then what `recipients` reads. The recipients over the live instances. */
    mizzenRoomsRecipients: `${dead}${recipients}
sweep(ARGV[1])
return recipients(ARGV[1], 2)`,

    /**
     * ARGV: prefix, instance, then what `recipients` reads. On a cluster, in the instance's slot
     * (redis-cluster-store.ts): -1 when the instance is dead (purged here, as `sweep` would),
     * else the recipients among its connections. Its liveness check and its count in one call.
     */
    mizzenRoomsRecipientsOf: `${dead}${recipients}
if purge(ARGV[1], ARGV[2], false) >= 0 then return -1 end
return recipients(ARGV[1], 3)`,
  } as const
}

/** The scripts on one Redis (classic pub/sub command channels). */
export const scripts = scriptsWith('NUMSUB')
/** The same scripts for one instance's slot of a Redis Cluster (sharded command channels). */
export const shardedScripts = scriptsWith('SHARDNUMSUB')

export type ScriptName = keyof typeof scripts
