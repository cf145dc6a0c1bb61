/**
 * The Redis bus's Lua scripts. Keys, under the bus prefix `p`, each topic's in one hash slot (the
 * `{<topic>}` hash tag), so that on Redis Cluster a topic's log, histories, channel and scripts
 * live on one shard and the topics spread over the shards:
 * - `p{<topic>}log`: a stream per topic, every message published on it (catch-up after a lost
 *   connection; for model topics also the history clients resume from). Entries: `o` origin,
 *   `s` its sequence number, `b` the id of the entry before it (so that a reader can tell whether
 *   what was trimmed before the first entry left came after its cursor), `p` the payload;
 * - `p{<topic>}hist:<key>`: a stream per extra history (a room), holding the messages published
 *   with that key, under the same ids as in the topic's log;
 * - `<stream key>:meta`: a hash per stream (`p{<topic>}log:meta`), `l` = the last
 *   id ever added (a quiet stream vanishes after the max age; its meta lives longer, so that a
 *   cursor of it still resumes when nothing came since, and the next entry names it as the one
 *   before), and the last run of entries by one origin: `o` its origin, `q` the seq of its last
 *   entry, `r` the id before it (a cursor a gateway gave with its own messages, placed before
 *   Redis showed them back, may be behind entries that are gone, all of them its own: the run
 *   tells);
 * - `p{<topic>}origin:<origin>`: the last sequence number of that process's publishes on the
 *   topic applied, so that a batch sent again after a lost reply is not applied twice;
 * - `p epoch`: a random id the first process to connect writes, with no expiry: it lives as long
 *   as Redis's data does (restarts with persistence, a replica promoted with it), so a new one
 *   means the logs were lost (Redis restarted empty, or flushed). Cursors carry its hash; it is
 *   read by `src/redis/link.ts`.
 * Channels: `p{<topic>}`, one per topic, carrying `<id> <origin> <seq>\n<payload>`: pub/sub order
 * is the log's order (PUBLISH on one Redis, SPUBLISH, sharded pub/sub, on Redis Cluster). Each
 * script touches one topic's slot (its first key says which, for Cluster's routing).
 */

/** Shared helpers: stream ids as "ms-seq" compared numerically. */
const idHelpers = `
local function parse_id(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function is_after(a, b)
  local am, as = parse_id(a)
  local bm, bs = parse_id(b)
  return am > bm or (am == bm and as > bs)
end
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
`

/**
 * KEYS: the topic's log. ARGV: prefix, origin, history max entries, log max entries, max age ms,
 * meta ttl s, the publish command (PUBLISH or SPUBLISH), the topic, n, then n messages as (seq,
 * payload, k, k history keys), all of that topic. Appends each message whose seq is newer than
 * the origin's last applied one on the topic to the topic's log and to its histories, publishes
 * it, and returns the last applied seq.
 */
export const publishScript = `${idHelpers}
local prefix, origin = ARGV[1], ARGV[2]
local history_max, log_max = tonumber(ARGV[3]), tonumber(ARGV[4])
local max_age_ms, meta_ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local publish, topic, count = ARGV[7], ARGV[8], tonumber(ARGV[9])
local tagged = prefix .. '{' .. topic .. '}'
local min_id = tostring(now_ms() - max_age_ms) .. '-0'
local origin_key = tagged .. 'origin:' .. origin
local applied = tonumber(redis.call('GET', origin_key) or '0')

-- The streams this call appends to, each with its meta as the last append left it (l, o, q, r:
-- see above). A batch appends many messages to the same few streams (the topic's log, a room's
-- history): each stream's meta is read once, and written, its age trimmed and its expiry pushed
-- back once, by flush() before the call returns. Nobody sees a stream between two appends of one
-- call, and the time is the same for all of them, so that leaves Redis as one write per append did.
local streams, order = {}, {}
local function stream(key)
  local s = streams[key]
  if not s then
    local state = redis.call('HMGET', key .. ':meta', 'l', 'o', 'r')
    s = { l = state[1], o = state[2], r = state[3], added = false, changed = false }
    streams[key] = s
    order[#order + 1] = key
  end
  return s
end
local function flush()
  for _, key in ipairs(order) do
    local s = streams[key]
    if s.added then
      redis.call('XTRIM', key, 'MINID', '~', min_id)
      redis.call('PEXPIRE', key, max_age_ms)
    end
    if s.changed then
      redis.call('HSET', key .. ':meta', 'l', s.l, 'o', s.o, 'q', s.q, 'r', s.r)
      redis.call('EXPIRE', key .. ':meta', meta_ttl)
    end
  end
end

-- Appends to one stream, trimmed by count (and by age, at flush), expiring when quiet; returns
-- its id, or nil and the error when Redis refused it. Each entry keeps the id of the one before
-- it (b).
local function append(key, id, max, seq, payload)
  local s = stream(key)
  local before = s.l or '0-0'
  local added = redis.pcall('XADD', key, 'MAXLEN', '~', max, id, 'o', origin, 's', seq, 'b', before, 'p', payload)
  if type(added) == 'table' and added.err then return nil, added.err end
  -- The last run of entries by one origin starts after r: a cursor that has seen that origin's
  -- entries up to the last one and is at or after r has seen everything, even what is gone.
  local run_start = s.r or '0-0'
  if s.o ~= origin then run_start = before end
  s.l, s.o, s.q, s.r, s.added, s.changed = added, origin, seq, run_start, true, true
  return added
end

local i = 10
for _ = 1, count do
  local seq, payload, k = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  if seq > applied then
    local id, err = append(tagged .. 'log', '*', log_max, seq, payload)
    if not id then
      -- Keep what was applied, so that the batch sent again does not apply it twice.
      flush()
      redis.call('SET', origin_key, applied, 'EX', meta_ttl)
      return redis.error_reply(err)
    end
    for j = 0, k - 1 do
      local key = tagged .. 'hist:' .. ARGV[i + j]
      if not append(key, id, history_max, seq, payload) then
        -- Only a history can refuse the log's id (its stream outlived the log): it loses the
        -- entry, and the next one names it as the one before, so a cursor before it resyncs.
        local s = stream(key)
        s.l, s.o, s.q, s.r, s.changed = id, '', '0', id, true
      end
    end
    redis.call(publish, tagged, id .. ' ' .. origin .. ' ' .. seq .. '\\n' .. payload)
    applied = seq
  end
  i = i + k
end
flush()
redis.call('SET', origin_key, applied, 'EX', meta_ttl)
return applied
`

/**
 * KEYS: the stream. ARGV: after, up to (an id or '+'), count, meta ttl ms, then pairs (origin,
 * seq) the reader has seen. Returns {'ok', id, origin, seq, payload, …} with the entries after
 * `after`, or {'gap', last id} when some entry after it that the reader has not seen is gone
 * (trimmed, aged out, or the stream expired), or {'future'} for an id the server has not reached
 * yet (a forged cursor).
 */
export const readScript = `${idHelpers}
local key = KEYS[1]
local meta = key .. ':meta'
local after, up_to, count, meta_ttl_ms = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local seen = {}
for i = 5, #ARGV - 1, 2 do seen[ARGV[i]] = tonumber(ARGV[i + 1]) end
local now = now_ms()
local after_ms = parse_id(after)
if after_ms > now then return {'future'} end
local state = redis.call('HMGET', meta, 'l', 'o', 'q', 'r')
local last = state[1]
if not last then
  -- Nothing added for longer than the meta lives (or ever): fine unless the cursor is that old.
  if after_ms < now - meta_ttl_ms then return {'gap', ''} end
  return {'ok'}
end
-- Whether every entry after the cursor is in the last run, by an origin whose entries the
-- reader has seen up to that run's last: then nothing it lacks can be gone.
local function run_covers()
  local origin_seen = state[2] and seen[state[2]]
  return origin_seen ~= nil and origin_seen >= tonumber(state[3]) and not is_after(state[4], after)
end
-- Entries go from the front (trimmed, aged out) or all at once (the stream expired, and maybe
-- came back): something after the cursor is gone when the first entry left follows one that
-- came after the cursor, or when none is left and the last one came after it.
local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
local gone_after
if first then
  local fields = first[2]
  for f = 1, #fields, 2 do
    if fields[f] == 'b' then gone_after = is_after(fields[f + 1], after) end
  end
else
  gone_after = is_after(last, after)
end
if gone_after and not run_covers() then return {'gap', last} end
local result = {'ok'}
for _, entry in ipairs(redis.call('XRANGE', key, '(' .. after, up_to, 'COUNT', count)) do
  local fields = entry[2]
  local origin, seq, payload = '', '0', ''
  for f = 1, #fields, 2 do
    local name = fields[f]
    if name == 'o' then origin = fields[f + 1] elseif name == 's' then seq = fields[f + 1] elseif name == 'p' then payload = fields[f + 1] end
  end
  result[#result + 1] = entry[1]
  result[#result + 1] = origin
  result[#result + 1] = seq
  result[#result + 1] = payload
end
return result
`

/**
 * KEYS: the stream. The position a process starts at when it subscribes: the last id the
 * stream ever gave, or (no stream) just before the server's current millisecond.
 */
export const tailScript = `${idHelpers}
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  local info = redis.call('XINFO', 'STREAM', key)
  for f = 1, #info, 2 do
    if info[f] == 'last-generated-id' then return info[f + 1] end
  end
end
local last = redis.call('HGET', key .. ':meta', 'l')
local before = tostring(now_ms() - 1) .. '-9007199254740991'
if last and is_after(last, before) then return last end
return before
`
