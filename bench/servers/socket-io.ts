/**
 * Socket.IO 4: every socket joins one room; a message is one `io.to(room).emit`. WebSocket
 * transport only. On Redis (`startSocketIo(scenario, url)`), with `@socket.io/redis-adapter`, as
 * Socket.IO's documentation runs several servers: an emit on one reaches the room's members on all;
 * on a Redis Cluster (`startSocketIo(scenario, undefined, seeds)`), with its sharded adapter.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter'
import { Cluster, Redis } from 'ioredis'
import { Server } from 'socket.io'
import type { Scenario } from '../common.ts'
import { eventFor } from './payloads.ts'
import type { BenchServer } from './server.ts'

export async function startSocketIo(
  scenario: Scenario,
  redisUrl?: string,
  redisCluster?: readonly string[],
): Promise<BenchServer> {
  const http = createServer()
  const io = new Server(http, { transports: ['websocket'], serveClient: false })
  if (redisUrl) {
    const publisher = new Redis(redisUrl)
    const subscriber = publisher.duplicate()
    await Promise.all([once(publisher, 'ready'), once(subscriber, 'ready')])
    // The adapter subscribes as it is made (Redis has it long before the first subscriber connects).
    io.adapter(createAdapter(publisher, subscriber))
  }
  if (redisCluster) {
    // On a Redis Cluster, the sharded adapter (SPUBLISH/SSUBSCRIBE), as its documentation runs it with ioredis.
    const nodes = redisCluster.map((seed) => {
      const [host, port] = seed.split(':')
      return { host: host!, port: Number(port) }
    })
    const publisher = new Cluster(nodes)
    const subscriber = new Cluster(nodes, { shardedSubscribers: true })
    await Promise.all([once(publisher, 'ready'), once(subscriber, 'ready')])
    io.adapter(createShardedAdapter(publisher, subscriber))
  }
  io.on('connection', (socket) => void socket.join('bench'))
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  return {
    port: (http.address() as { port: number }).port,
    subscribers: () => io.of('/').adapter.rooms.get('bench')?.size ?? 0,
    publish: (stamp) => void io.to('bench').emit('m', eventFor(scenario, stamp)),
  }
}
