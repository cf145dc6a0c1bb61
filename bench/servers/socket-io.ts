/**
 * Socket.IO 4: every socket joins one room; a message is one `io.to(room).emit`. WebSocket
 * transport only. On Redis (`startSocketIo(scenario, url)`), with `@socket.io/redis-adapter`, as
 * Socket.IO's documentation runs several servers: an emit on one reaches the room's members on all.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import { Server } from 'socket.io'
import type { Scenario } from '../common.ts'
import { eventFor } from './payloads.ts'
import type { BenchServer } from './server.ts'

export async function startSocketIo(scenario: Scenario, redisUrl?: string): Promise<BenchServer> {
  const http = createServer()
  const io = new Server(http, { transports: ['websocket'], serveClient: false })
  if (redisUrl) {
    const publisher = new Redis(redisUrl)
    const subscriber = publisher.duplicate()
    await Promise.all([once(publisher, 'ready'), once(subscriber, 'ready')])
    // The adapter subscribes as it is made (Redis has it long before the first subscriber connects).
    io.adapter(createAdapter(publisher, subscriber))
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
