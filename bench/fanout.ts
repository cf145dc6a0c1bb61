/**
 * `npm run bench`: fan-out throughput, side by side in one run.
 *
 * N WebSocket clients each receive M messages. Three ways, measured the same way (from the first
 * send until every client has received every message):
 *   - baseline: a bare `ws` server that serialises each message once and sends it to every client;
 *   - mizzen rooms: `room(name)` subscriptions over graphql-ws, fed by `Rooms.send`;
 *   - mizzen model events: `userEvents` subscriptions, fed by model events on the bus.
 * Prints deliveries per second and each one's ratio to the baseline (design §7: a naive
 * graphql-ws server reaches 0.16-0.29 of raw ws; Socket.IO 0.74-0.77).
 *
 * Options (env): BENCH_CLIENTS (default 200), BENCH_MESSAGES (default 200), BENCH_ROUNDS (default 3).
 */
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import WebSocket, { WebSocketServer } from 'ws'
import { dataModel, openExampleDatabase } from '../src/app/database.ts'
import { createGateway, type Gateway } from '../src/gateway.ts'

const clients = Number(process.env.BENCH_CLIENTS ?? 200)
const messages = Number(process.env.BENCH_MESSAGES ?? 200)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const data = { text: 'Hello to all my fun sockets!', n: 42, tags: ['a', 'b', 'c'] }

/** Resolves when every socket has received `count` messages of type next (or any, for raw). */
function counting(sockets: WebSocket[], count: number, isDelivery: (text: string) => boolean): Promise<void> {
  let remaining = sockets.length
  return new Promise((resolve) => {
    for (const socket of sockets) {
      let received = 0
      const onMessage = (raw: WebSocket.RawData) => {
        if (!isDelivery(String(raw))) return
        if (++received === count) {
          socket.off('message', onMessage)
          if (--remaining === 0) resolve()
        }
      }
      socket.on('message', onMessage)
    }
  })
}

async function openSockets(url: string, protocol?: string): Promise<WebSocket[]> {
  const sockets: WebSocket[] = []
  for (let i = 0; i < clients; i += 50) {
    const batch = Array.from({ length: Math.min(50, clients - i) }, () => new WebSocket(url, protocol))
    await Promise.all(batch.map((socket) => once(socket, 'open')))
    sockets.push(...batch)
  }
  return sockets
}

/** The best deliveries-per-second of `rounds` runs of `send`, counting what `isDelivery` accepts. */
async function bestOf(sockets: WebSocket[], isDelivery: (text: string) => boolean, send: () => void | Promise<void>): Promise<number> {
  let best = 0
  for (let round = 0; round < rounds; round++) {
    const done = counting(sockets, messages, isDelivery)
    const start = process.hrtime.bigint()
    await send()
    await done
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    best = Math.max(best, (clients * messages) / seconds)
  }
  return best
}

async function rawWsBaseline(): Promise<number> {
  const server = createServer()
  const wss = new WebSocketServer({ server })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  const sockets = await openSockets(`ws://127.0.0.1:${port}`)
  const best = await bestOf(sockets, () => true, () => {
    for (let i = 0; i < messages; i++) {
      const frame = JSON.stringify({ type: 'next', id: '1', payload: { data: { room: { event: 'hello', data } } } })
      for (const client of wss.clients) client.send(frame)
    }
  })
  sockets.forEach((socket) => socket.close())
  wss.close()
  server.close()
  return best
}

async function graphqlSockets(gateway: Gateway, query: string): Promise<WebSocket[]> {
  const url = gateway.url.replace(/^http/, 'ws')
  const sockets = await openSockets(url, 'graphql-transport-ws')
  await Promise.all(
    sockets.map(async (socket) => {
      socket.send(JSON.stringify({ type: 'connection_init' }))
      await once(socket, 'message')
      socket.send(JSON.stringify({ type: 'subscribe', id: '1', payload: { query } }))
    }),
  )
  while (gateway.hub.subscriberCount < clients) await new Promise((resolve) => setTimeout(resolve, 10))
  return sockets
}

const isNext = (text: string) => text.startsWith('{"type":"next"') || text.includes('"type":"next"')

async function mizzenRooms(gateway: Gateway): Promise<number> {
  const sockets = await graphqlSockets(gateway, 'subscription { room(name: "bench") { event data } }')
  const best = await bestOf(sockets, isNext, async () => {
    for (let i = 0; i < messages; i++) await gateway.rooms.send({ event: 'hello', data, sender: null }, { rooms: ['bench'], omit: [] })
  })
  await Promise.all(sockets.map((socket) => (socket.close(), once(socket, 'close'))))
  while (gateway.hub.subscriberCount > 0) await new Promise((resolve) => setTimeout(resolve, 10))
  return best
}

async function mizzenModelEvents(gateway: Gateway): Promise<number> {
  const sockets = await graphqlSockets(gateway, 'subscription { userEvents { verb recordId node { id name email } } }')
  const best = await bestOf(sockets, isNext, async () => {
    for (let i = 0; i < messages; i++) {
      const node = { id: i, name: 'Ada', email: 'ada@example.com', createdAt: new Date() }
      await gateway.bus.publish('model:User', { model: 'User', verb: 'UPDATED', recordId: String(i), node, previous: node, updatedFields: ['name'], at: new Date().toISOString() })
    }
  })
  await Promise.all(sockets.map((socket) => (socket.close(), once(socket, 'close'))))
  return best
}

const dir = mkdtempSync(join(tmpdir(), 'mizzen-bench-'))
const database = await openExampleDatabase(`file:${join(dir, 'bench.db')}`)
const gateway = await createGateway({
  prisma: database.prisma,
  dataModel,
  port: 0,
  host: '127.0.0.1',
  logger: pino({ level: 'silent' }),
  limits: { maxConnectionsPerIp: clients * 2, maxBufferedBytes: 256 * 1024 * 1024 },
})
try {
  console.log(`fan-out: ${clients} clients x ${messages} messages, best of ${rounds} rounds (deliveries per second)`)
  const baseline = await rawWsBaseline()
  const rooms = await mizzenRooms(gateway)
  const models = await mizzenModelEvents(gateway)
  const row = (name: string, rate: number) => console.log(`${name.padEnd(28)} ${Math.round(rate).toString().padStart(9)}/s   ratio ${(rate / baseline).toFixed(2)}`)
  row('raw ws (baseline)', baseline)
  row('mizzen room(name)', rooms)
  row('mizzen userEvents', models)
} finally {
  await gateway.close()
  rmSync(dir, { recursive: true, force: true })
}
