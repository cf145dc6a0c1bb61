/**
 * What 1,000 members joining a room costs its presence watchers (docs/performance.md, Presence):
 * one gateway in this process (in-memory bus and registry, the example app on a fresh SQLite
 * file), WATCHERS graphql-ws clients watching `presence(room)`, then MEMBERS clients, each a user
 * of its own, joining the room with meta as fast as they connect. Reports how many events and
 * bytes each watcher received, how long until every watcher counted every member, and the CPU
 * the process spent (clients included: an upper bound for the gateway).
 *
 *   node --import tsx bench/presence.ts [members=1000] [watchers=10]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient, type Client } from 'graphql-ws'
import { pino } from 'pino'
import WebSocket from 'ws'
import { SignJWT } from 'jose'
import { dataModel, openExampleDatabase } from '../examples/app/database.ts'
import { createGateway } from '../src/gateway.ts'

const MEMBERS = Number(process.argv[2] ?? 1000)
const WATCHERS = Number(process.argv[3] ?? 10)
const SECRET = 'bench-secret-that-is-at-least-32-characters'
const API_KEY = 'bench-service-key'

const token = (sub: string) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(SECRET))

const dir = mkdtempSync(join(tmpdir(), 'mizzen-presence-bench-'))
const { prisma } = await openExampleDatabase(`file:${join(dir, 'bench.db')}`)
const gateway = await createGateway({
  prisma,
  dataModel,
  port: 0,
  host: '127.0.0.1',
  nodeEnv: 'test',
  logger: pino({ level: 'silent' }),
  auth: { apiKeys: [API_KEY], jwtSecret: SECRET },
  limits: { maxConnectionsPerIp: 100_000, maxMessagesPerSecond: 100_000 },
})
const wsUrl = gateway.url.replace(/^http/, 'ws')
const clients: Client[] = []
const connect = (authorization: string) => {
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    connectionParams: { authorization },
  })
  clients.push(client)
  return client
}

interface Watcher {
  events: number
  joins: number
  bytes: number
  count: number
  done: Promise<number>
}

const watchers: Watcher[] = []
for (let i = 0; i < WATCHERS; i++) {
  const client = connect(`Bearer ${API_KEY}`)
  let resolveDone!: (at: number) => void
  const watcher: Watcher = { events: 0, joins: 0, bytes: 0, count: 0, done: new Promise((r) => (resolveDone = r)) }
  let synced!: () => void
  const sync = new Promise<void>((resolve) => (synced = resolve))
  client.subscribe<{ presence: { kind: string; count: number; members: unknown[] } }>(
    {
      query: 'subscription { presence(room: "bench") { kind count at members { key userId role connections meta } } }',
    },
    {
      next: (result) => {
        const event = result.data!.presence
        if (event.kind === 'SYNC') return synced()
        watcher.events++
        watcher.bytes += JSON.stringify(result).length
        if (event.kind === 'JOIN') watcher.joins += event.members.length
        watcher.count = event.count
        if (event.count === MEMBERS) resolveDone(performance.now())
      },
      error: (error) => console.error('watcher failed', error),
      complete: () => {},
    },
  )
  await sync
  watchers.push(watcher)
}

const tokens = await Promise.all(Array.from({ length: MEMBERS }, (_, i) => token(`user-${i}`)))
const cpuBefore = process.cpuUsage()
const started = performance.now()
for (const [i, jwt] of tokens.entries()) {
  const client = connect(`Bearer ${jwt}`)
  client.subscribe(
    {
      query: 'subscription ($meta: JSON) { room(name: "bench", presence: $meta) { event } }',
      variables: { meta: { name: `user ${i}` } },
    },
    { next: () => {}, error: (error) => console.error('member failed', error), complete: () => {} },
  )
}
const finished = Math.max(...(await Promise.all(watchers.map((watcher) => watcher.done))))
const cpu = process.cpuUsage(cpuBefore)
const perWatcher = watchers[0]!
console.log(
  JSON.stringify({
    members: MEMBERS,
    watchers: WATCHERS,
    msUntilEveryWatcherCountedAll: Math.round(finished - started),
    eventsPerWatcher: perWatcher.events,
    membersInJoinEvents: perWatcher.joins,
    kBPerWatcher: Math.round(perWatcher.bytes / 1024),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    cpuMsPerJoin: Number(((cpu.user + cpu.system) / 1000 / MEMBERS).toFixed(2)),
  }),
)
await Promise.all(clients.map((client) => client.dispose()))
await gateway.close()
rmSync(dir, { recursive: true, force: true })
