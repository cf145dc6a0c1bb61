/**
 * `npm run bench:live`: live queries under writes (docs/performance.md, Live queries).
 *
 * Two scenarios, each on a gateway in this process with a fresh database (BENCH_LIVE_DATABASE:
 * `postgresql`, the default, on TEST_POSTGRES_URL's server (default postgres://postgres@127.0.0.1:5432/postgres); or `sqlite`, whose one connection
 * lets a writer that never pauses starve the live queries' reads):
 *   - `shared`: BENCH_LIVE_CLIENTS clients (default 1000, every one a service) hold the same live
 *     list query, `posts(orderBy: [{ id: desc }], take: 10)`: one group;
 *   - `viewers`: as many clients, each a different user under the example app's row policy on
 *     posts (published, or their own): one group per client.
 * The clients run in a child process (raw graphql-transport-ws over `ws`), so that reading and
 * parsing results is not counted against the gateway. For BENCH_LIVE_SECONDS (default 10), the
 * gateway's Prisma Client (with the realtime extension) creates BENCH_LIVE_WRITES_PER_S published
 * posts per second (default 100), each titled with its write's start time. Reported: executions
 * per second (`gateway.live.executions`), results delivered per second (read by the clients),
 * and the write-to-result latency (from the start of a write to the first result showing it, per
 * client; p50, p99, max), from one wall clock (both processes read `performance.timeOrigin +
 * performance.now()`).
 *
 * BENCH_LIVE_DEBUG=1 prints how many live queries the gateway holds while the clients connect.
 *
 * One process for the gateway, one for the clients, nothing pinned: on a machine shared with
 * other work the latency says more about the machine than about the gateway.
 */
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { fileURLToPath } from 'node:url'
import { SignJWT } from 'jose'
import WebSocket from 'ws'
import { openExampleDatabase } from '../examples/app/database.ts'
import { examplePolicies } from '../examples/app/policies.ts'
import { createGateway } from '../src/gateway.ts'
import { benchGatewayOptions } from './servers/gateway-options.ts'

const env = (name: string, fallback: string) => Number(process.env[name] ?? fallback)
const CLIENTS = env('BENCH_LIVE_CLIENTS', '1000')
const SECONDS = env('BENCH_LIVE_SECONDS', '10')
const WRITES_PER_S = env('BENCH_LIVE_WRITES_PER_S', '100')
/** `postgresql` (a fresh database on TEST_POSTGRES_URL's server) or `sqlite` (a fresh file). */
const DATABASE = (process.env.BENCH_LIVE_DATABASE ?? 'postgresql') as 'postgresql' | 'sqlite'
const JWT_SECRET = 'bench-live-secret-that-is-at-least-32-chars'
const SERVICE_KEY = 'bench-live-service-key'
const QUERY = 'query Newest @live { posts(orderBy: [{ id: desc }], take: 10) { id title } }'
const now = () => performance.timeOrigin + performance.now()

/** A fresh database of the kind asked for, and how to drop it. */
async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  if (DATABASE === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'mizzen-live-'))
    return { url: `file:${join(dir, 'bench.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) }
  }
  const admin = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
  const name = `mizzen_bench_${randomBytes(6).toString('hex')}`
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: admin })
    await client.connect()
    await client.query(sql)
    await client.end()
  }
  await run(`CREATE DATABASE ${name}`)
  const url = new URL(admin)
  url.pathname = `/${name}`
  return { url: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) }
}

type Scenario = 'shared' | 'viewers'
interface ClientReport {
  readonly results: number
  readonly latencies: number[]
}

// ---- the clients' process ------------------------------------------------------------------

async function runClients(url: string, tokens: string[]): Promise<void> {
  const seen = tokens.map(() => new Set<string>())
  const latencies: number[] = []
  let results = 0
  let counting = false
  const connect = (token: string, i: number) =>
    new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(url, 'graphql-transport-ws')
      socket.on('error', reject)
      socket.on('close', (code) => reject(new Error(`socket ${i} closed with ${code}`)))
      socket.on('open', () =>
        socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })),
      )
      socket.on('message', (data) => {
        const message = JSON.parse(String(data))
        if (message.type === 'connection_ack') {
          socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: QUERY } }))
          resolve()
        } else if (message.type === 'next') {
          const at = now()
          if (counting) results++
          for (const post of message.payload.data?.posts ?? []) {
            const [, stamp] = /^w:(\d+(?:\.\d+)?)$/.exec(post.title) ?? []
            if (!stamp || seen[i]!.has(post.title)) continue
            seen[i]!.add(post.title)
            if (counting) latencies.push(at - Number(stamp))
          }
        } else if (message.type === 'error') {
          console.error('live query refused', JSON.stringify(message.payload))
        }
      })
    })
  // In batches: a thousand handshakes at once on a loaded machine outrun the 3 s connection_init timeout.
  for (let i = 0; i < tokens.length; i += 50)
    await Promise.all(tokens.slice(i, i + 50).map((token, j) => connect(token, i + j)))
  process.send!({ type: 'ready' })
  process.on('message', (message: { type: string }) => {
    if (message.type === 'start') counting = true
    if (message.type === 'report') {
      // Exit once the report is handed over: an exit right after send() loses a large message.
      process.send!({ type: 'report', report: { results, latencies } satisfies ClientReport }, () => process.exit(0))
    }
  })
}

// ---- the gateway's process -----------------------------------------------------------------

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]

async function runScenario(scenario: Scenario) {
  const fresh = await freshDatabase()
  const database = await openExampleDatabase(fresh.url)
  const gateway = await createGateway({
    ...benchGatewayOptions,
    prisma: database.prisma,
    demo: false,
    auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET },
    policies: examplePolicies,
  })
  // Seeded without the realtime extension: nobody listens yet, and one transaction for 1000 rows is not what is measured.
  await database.prisma.user.createMany({
    data: Array.from({ length: CLIENTS }, (_, i) => ({ id: i + 1, email: `u${i + 1}@bench`, name: `user ${i + 1}` })),
  })
  const secret = new TextEncoder().encode(JWT_SECRET)
  const tokens =
    scenario === 'shared'
      ? Array.from({ length: CLIENTS }, () => SERVICE_KEY)
      : await Promise.all(
          Array.from({ length: CLIENTS }, (_, i) =>
            new SignJWT({})
              .setProtectedHeader({ alg: 'HS256' })
              .setSubject(String(i + 1))
              .setExpirationTime('1h')
              .sign(secret),
          ),
        )
  const child = fork(fileURLToPath(import.meta.url), ['clients', gateway.url.replace(/^http/, 'ws')], {
    execArgv: ['--import', 'tsx'],
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  })
  child.on('exit', (code) => {
    if (code) console.error(`the clients' process exited with ${code}`)
  })
  const fromChild = (type: string) =>
    new Promise<any>((resolve) => child.on('message', (message: any) => message.type === type && resolve(message)))
  const ready = fromChild('ready')
  child.send({ type: 'tokens', tokens })
  await ready
  while (gateway.live.memberCount < CLIENTS) {
    if (process.env.BENCH_LIVE_DEBUG) console.error(`${gateway.live.memberCount} live queries held`)
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  const groups = gateway.live.groupCount
  // Let first results settle, then count.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  child.send({ type: 'start' })
  const executionsBefore = gateway.live.executions
  const started = now()
  let writes = 0
  const interval = 1000 / WRITES_PER_S
  // At the rate asked for, up to 16 writes in flight: when the database falls behind, writes/s says what it did.
  const inFlight = new Set<Promise<unknown>>()
  while (now() - started < SECONDS * 1000) {
    const due = started + writes * interval
    if (due > now()) await new Promise((resolve) => setTimeout(resolve, due - now()))
    if (inFlight.size >= 16) await Promise.race(inFlight)
    writes++
    const write: Promise<unknown> = gateway.prisma.post
      .create({ data: { title: `w:${now()}`, published: true, authorId: 1 + (writes % CLIENTS) } })
      .finally(() => inFlight.delete(write))
    inFlight.add(write)
  }
  await Promise.all(inFlight)
  const writing = (now() - started) / 1000
  // The last results (a throttle interval, and their executions) arrive after the last write.
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const elapsed = (now() - started) / 1000
  const executions = gateway.live.executions - executionsBefore
  const reported = fromChild('report')
  child.send({ type: 'report' })
  const { report } = (await reported) as { report: ClientReport }
  const sorted = report.latencies.sort((a, b) => a - b)
  await gateway.close()
  await fresh.drop()
  return {
    scenario,
    database: DATABASE,
    clients: CLIENTS,
    groups,
    writesPerSecond: Math.round(writes / writing),
    executionsPerSecond: Math.round(executions / elapsed),
    resultsPerSecond: Math.round(report.results / elapsed),
    latencyMs: {
      p50: Math.round(percentile(sorted, 0.5) ?? Number.NaN),
      p99: Math.round(percentile(sorted, 0.99) ?? Number.NaN),
      max: Math.round(sorted.at(-1) ?? Number.NaN),
    },
    samples: sorted.length,
  }
}

if (process.argv[2] === 'clients') {
  const url = process.argv[3]!
  process.once('message', (message: { type: string; tokens: string[] }) => void runClients(url, message.tokens))
} else {
  const rows = []
  for (const scenario of (process.env.BENCH_LIVE_SCENARIOS ?? 'shared,viewers').split(',') as Scenario[]) {
    const row = await runScenario(scenario)
    console.log(JSON.stringify(row))
    rows.push(row)
  }
  console.table(
    rows.map((row) => ({
      scenario: row.scenario,
      clients: row.clients,
      groups: row.groups,
      'writes/s': row.writesPerSecond,
      'executions/s': row.executionsPerSecond,
      'results/s': row.resultsPerSecond,
      'p50 ms': row.latencyMs.p50,
      'p99 ms': row.latencyMs.p99,
      'max ms': row.latencyMs.max,
    })),
  )
  process.exit(0)
}
