/** Socket.IO 4: every socket joins one room; a message is one `io.to(room).emit`. WebSocket transport only. */
import { once } from 'node:events'
import { createServer } from 'node:http'
import { Server } from 'socket.io'
import type { Scenario } from '../common.ts'
import { eventFor } from './payloads.ts'
import type { BenchServer } from './server.ts'

export async function startSocketIo(scenario: Scenario): Promise<BenchServer> {
  const http = createServer()
  const io = new Server(http, { transports: ['websocket'], serveClient: false })
  io.on('connection', (socket) => void socket.join('bench'))
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  return {
    port: (http.address() as { port: number }).port,
    subscribers: () => io.of('/').adapter.rooms.get('bench')?.size ?? 0,
    publish: (stamp) => void io.to('bench').emit('m', eventFor(scenario, stamp)),
  }
}
