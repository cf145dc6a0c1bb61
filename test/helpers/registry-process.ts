/**
 * A rooms registry in a process of its own, for crash tests: it holds one connection in one room
 * and prints "ready", then runs until killed (SIGKILL: no cleanup, its heartbeat just stops).
 *
 *   node --import tsx test/helpers/registry-process.ts <redis url> <key prefix> <connection id> <room> [heartbeat ttl ms]
 *
 * `<redis url>` may be `cluster:<host:port>,…`: the seed nodes of a Redis Cluster.
 */
import { createRedisRoomRegistry } from '../../src/rooms/redis.ts'

const [url, keyPrefix, connectionId, room, heartbeatTtl] = process.argv.slice(2)
if (!url || !keyPrefix || !connectionId || !room)
  throw new Error('usage: registry-process.ts <url> <prefix> <connection id> <room>')
const target = url.startsWith('cluster:') ? { cluster: url.slice('cluster:'.length).split(',') } : { url }
const registry = await createRedisRoomRegistry({ ...target, keyPrefix, heartbeatTtlMs: Number(heartbeatTtl ?? 1000) })
await registry.addConnection(connectionId)
await registry.join(connectionId, room, { kind: 'server' })
process.stdout.write('ready\n')
// Its Redis connections keep it alive; this keeps it alive even while they reconnect.
setInterval(() => {}, 60_000)
