/**
 * `npm run bench -- [fanout] [cluster] [scale] [capture] | all`: fan-out measured side by side in one run
 * (docs/performance.md says what each row means and the targets). With no suite named, `fanout`.
 *
 * - `fanout`: one gateway. For each scenario (`room`, `userEvents` with ids, `postEvents` with a
 *   where filter under two users' row policies) and each server (raw `ws`, `ws` writing one
 *   pre-built frame to every socket, Socket.IO 4 for `room`, plain graphql-yoga + graphql-ws with
 *   createPubSub, mizzen), the server alone in a process pinned to CPU 0, N subscribers from
 *   load-generator processes pinned to CPU 1 (see fanout.ts for the phases).
 * - `cluster`: two server processes and a Redis of the benchmark's own (redis-server on a free
 *   port of 7200-7299, no persistence), all on CPU 0; subscribers on one, messages published
 *   through the other: raw ws over Redis pub/sub (by hand), Socket.IO 4 with
 *   @socket.io/redis-adapter, mizzen with its Redis bus and rooms registry; `room` only. Then
 *   the same three on a Redis Cluster of the benchmark's own (six nodes on 7300-7399, three
 *   primaries): sharded pub/sub by hand, Socket.IO's sharded adapter, mizzen with
 *   MIZZEN_REDIS_CLUSTER (its bus and its rooms registry on the cluster).
 * - `scale`: one gateway holding BENCH_SCALE_CONNECTIONS subscribed connections (`room`), beside
 *   raw ws: handshakes per second while connecting, memory per connection, fan-out to all.
 * - `capture`: committed row changes from PostgreSQL's log to subscribers (MIZZEN_CAPTURE=database)
 *   beside the realtime extension's path at the same rates: a PostgreSQL of its own with
 *   wal_level=logical, the gateway on CPU 0, subscribers and the raw-SQL writer on CPU 1 (see
 *   capture.ts for the phases and what is measured).
 *
 * Settings (env): BENCH_SUBSCRIBERS (1000; fanout and cluster), BENCH_SECONDS (3), BENCH_ROUNDS (3),
 * BENCH_PASSES (2: every fanout, cluster and scale run measured that many times, in alternating
 * order; bench/passes.ts),
 * BENCH_RATE (20000 deliveries/s), BENCH_SCENARIOS, BENCH_SERVERS, BENCH_CLUSTER_SERVERS (subsets,
 * comma-separated), BENCH_LOADGENS (2), BENCH_CLIENT (`raw` graphql-transport-ws over ws, or
 * `graphql-ws` for the graphql-ws client), BENCH_SCALE_CONNECTIONS (20000), BENCH_SCALE_SERVERS
 * (raw-ws,mizzen), BENCH_SCALE_RATE (40000 deliveries/s), BENCH_CPU_PROF (a directory: each server
 * runs under `node --cpu-prof`, its profiles in `<dir>/<run>/`), BENCH_NODE_FLAGS (more flags for
 * the servers' node), BENCH_WARMUP (200: clients that connect, subscribe and leave before the
 * idle-memory baseline; 0 for none), BENCH_OUT (default bench/results/<time>.json); for `capture`:
 * BENCH_CAPTURE_SUBSCRIBERS (10), BENCH_CAPTURE_RATE (1000 rows/s), BENCH_CAPTURE_BATCH (10 rows per
 * multi-row transaction), BENCH_CAPTURE_CONCURRENCY (8 transactions in flight at full speed),
 * BENCH_CAPTURE_WINDOW (5000: rows full speed may be ahead of the slowest subscriber),
 * BENCH_CAPTURE_PHASES (rate-single,rate-batch,max-single,max-batch),
 * BENCH_CAPTURE_PATHS (database,extension), BENCH_CAPTURE_POSTGRES_CPU (1; `none`: not pinned),
 * BENCH_CAPTURE_SYNCHRONOUS_COMMIT (on: PostgreSQL's synchronous_commit);
 * BENCH_SECONDS is each phase's writing time and BENCH_CPU_PROF profiles the capture gateway too.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  clusterKinds,
  defaultServers,
  scenarios,
  serverKinds,
  type LoadPlan,
  type Scenario,
  type ServerKind,
} from './common.ts'
import { cluster, oneServer, type ServerOptions } from './deployments.ts'
import { capturePhases, measureCapture, type CapturePath, type CapturePhase, type CaptureSettings } from './capture.ts'
import { latencyMessageCount, measureFanout, type FanoutSettings, type RunResult } from './fanout.ts'
import { combinePasses, passOrder } from './passes.ts'
import { DESCRIPTOR_HEADROOM, descriptorsAvailable, pinnable } from './processes.ts'
import { capacity, captureTable, clusterTable, fanoutTable, fmt, ms, scaleTable } from './report.ts'

const here = dirname(fileURLToPath(import.meta.url))
const env = (name: string, fallback: string) => process.env[name] ?? fallback
const list = <T extends string>(name: string, fallback: readonly T[], known: readonly string[]): T[] => {
  const values = env(name, fallback.join(',')).split(',').filter(Boolean)
  const unknown = values.filter((value) => !known.includes(value))
  if (unknown.length) throw new Error(`${name}: unknown ${unknown.join(', ')} (known: ${known.join(', ')})`)
  return values as T[]
}

const suitesKnown = ['fanout', 'cluster', 'scale', 'capture'] as const
type Suite = (typeof suitesKnown)[number]
const args = process.argv.slice(2)
const suites: Suite[] = args.includes('all') ? [...suitesKnown] : args.length ? (args as Suite[]) : ['fanout']
for (const suite of suites)
  if (!suitesKnown.includes(suite)) throw new Error(`unknown suite ${suite} (known: ${suitesKnown.join(', ')}, all)`)

const base = {
  seconds: Number(env('BENCH_SECONDS', '3')),
  rounds: Number(env('BENCH_ROUNDS', '3')),
  loadgens: Number(env('BENCH_LOADGENS', '2')),
  client: env('BENCH_CLIENT', 'raw') as LoadPlan['client'],
  warmup: Number(env('BENCH_WARMUP', '200')),
}
const passes = Number(env('BENCH_PASSES', '2'))
if (!(Number.isInteger(passes) && passes >= 1)) throw new Error(`BENCH_PASSES: a whole number from 1 (got ${passes})`)
const fanoutSettings: FanoutSettings = {
  ...base,
  subscribers: Number(env('BENCH_SUBSCRIBERS', '1000')),
  fixedRate: Number(env('BENCH_RATE', '20000')),
}
const scaleRequested = Number(env('BENCH_SCALE_CONNECTIONS', '20000'))
/**
 * The server holds one descriptor per connection: as many connections as its limit allows, said
 * plainly when that is fewer than asked for (a container may refuse to raise the hard limit).
 */
const scaleConnections = suites.includes('scale')
  ? Math.min(scaleRequested, descriptorsAvailable(scaleRequested + DESCRIPTOR_HEADROOM) - DESCRIPTOR_HEADROOM)
  : scaleRequested
const scaleSettings: FanoutSettings = {
  ...base,
  subscribers: scaleConnections,
  fixedRate: Number(env('BENCH_SCALE_RATE', '40000')),
  descriptors: Math.ceil(scaleConnections / base.loadgens),
}
const serverOptions: ServerOptions = {
  cpuProfileDir: process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined,
  nodeFlags: process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean),
}
const outFile = resolve(
  env('BENCH_OUT', join(here, 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}.json`)),
)
const memoryGiB = Math.round(totalmem() / 2 ** 30)

const commit = (() => {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here }).toString().trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: here }).toString()
    return dirty.trim() ? `${sha} (with uncommitted changes)` : sha
  } catch {
    return 'unknown'
  }
})()
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${memoryGiB} GiB, Node ${process.version}`
const pinning = pinnable
  ? `servers (and the cluster's Redis) pinned to CPU 0, ${base.loadgens} load generators pinned to CPU 1 (taskset); the orchestrator is not pinned`
  : 'not pinned (taskset unavailable or one CPU): servers and load generators share the CPUs'
const loadBefore = loadavg()
console.log(`bench: ${suites.join(', ')}; command: npm run bench -- ${suites.join(' ')}`)
console.log(
  `machine: ${machine}; ${pinning}; load average before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; commit ${commit}`,
)

/** How a suite's latency and throughput were measured, for its title. */
const method = ({ subscribers, seconds, rounds, fixedRate }: FanoutSettings) => {
  const messages = latencyMessageCount(fixedRate, subscribers, seconds)
  const passText = passes > 1 ? `; each server's best of ${passes} passes, in alternating order` : ''
  return `latency at ${fmt(fixedRate)} deliveries/s over ${fmt(messages)} messages after a 1 s lead-in; throughput and CPU: best of ${rounds} rounds of ${seconds} s${passText}`
}

const line = (r: RunResult) =>
  `  ${r.scenario} / ${r.server}: ${
    r.error
      ? `FAILED (${r.error})`
      : `${fmt(r.connected)} connected at ${fmt(r.handshakesPerSecond)}/s, ${fmt(r.deliveredPerSecond)} msg/s, ${fmt(r.cpuMicrosPerMessage, 1)} µs/msg, p99 ${ms(r.p99Micros)}, ${fmt(r.idleHeapBytesPerConnection / 1024, 1)} KB heap/conn, lost ${r.lost}`
  }`

/** Every run, `passes` times in alternating order (bench/passes.ts); one combined result per run, in `runs`' order. */
async function runAll(
  runs: { scenario: Scenario; server: ServerKind }[],
  settings: FanoutSettings,
  deploy: (server: ServerKind, scenario: Scenario) => Parameters<typeof measureFanout>[3],
) {
  const measured = new Map<(typeof runs)[number], RunResult[]>(runs.map((run) => [run, []]))
  for (let pass = 0; pass < passes; pass++) {
    if (passes > 1) console.log(`  pass ${pass + 1} of ${passes}${pass % 2 ? ' (reverse order)' : ''}`)
    for (const run of passOrder(runs, pass)) {
      const result = await measureFanout(run.scenario, run.server, settings, deploy(run.server, run.scenario))
      measured.get(run)!.push(result)
      console.log(line(result))
    }
  }
  return runs.map((run) => combinePasses(measured.get(run)!))
}

const output: Record<string, unknown> = {}
const tables: string[] = []

if (suites.includes('fanout')) {
  const wantedScenarios = list<Scenario>('BENCH_SCENARIOS', scenarios, scenarios)
  const wantedServers = list<ServerKind>('BENCH_SERVERS', defaultServers, serverKinds)
  // Socket.IO is compared for rooms (its own concept); model events have no Socket.IO equivalent.
  const runs = wantedScenarios.flatMap((scenario) =>
    wantedServers
      .filter((server) => server !== 'socket.io' || scenario === 'room')
      .map((server) => ({ scenario, server })),
  )
  const title = `fanout: one gateway, ${fmt(fanoutSettings.subscribers)} subscribers; ${method(fanoutSettings)}; clients: ${base.client === 'raw' ? 'graphql-transport-ws over ws' : 'graphql-ws client'}`
  console.log(title)
  const results = await runAll(runs, fanoutSettings, (server, scenario) => oneServer(server, scenario, serverOptions))
  output.fanout = { settings: fanoutSettings, results }
  tables.push(`${title}\n\n${fanoutTable(results)}`)
}

if (suites.includes('cluster')) {
  const servers = list<ServerKind>('BENCH_CLUSTER_SERVERS', clusterKinds, clusterKinds)
  const title = `cluster: two gateway processes and one Redis, or a Redis Cluster of three primaries and three replicas (-redis-cluster rows), all on CPU 0, ${fmt(fanoutSettings.subscribers)} subscribers on one, messages published through the other, room; ${method(fanoutSettings)}`
  console.log(title)
  const results = await runAll(
    servers.map((server) => ({ scenario: 'room' as const, server })),
    fanoutSettings,
    (server, scenario) => cluster(server, scenario, serverOptions),
  )
  output.cluster = { settings: fanoutSettings, results }
  tables.push(`${title}\n\n${clusterTable(results)}`)
}

if (suites.includes('scale')) {
  const servers = list<ServerKind>('BENCH_SCALE_SERVERS', ['raw-ws', 'mizzen'], serverKinds)
  if (scaleConnections < scaleRequested)
    console.log(
      `scale: ${fmt(scaleRequested)} connections need ${fmt(scaleRequested + DESCRIPTOR_HEADROOM)} file descriptors in the server process; this machine's hard limit (ulimit -Hn) is ${fmt(scaleConnections + DESCRIPTOR_HEADROOM)} and cannot be raised from here (prlimit: not permitted), so this run holds ${fmt(scaleConnections)}. For the full count raise the hard limit first (as root with CAP_SYS_RESOURCE: ulimit -Hn ${scaleRequested + DESCRIPTOR_HEADROOM}; or LimitNOFILE in a systemd unit, --ulimit nofile for a container).`,
    )
  const title = `scale: one gateway, ${fmt(scaleConnections)} subscribed connections (room${scaleConnections < scaleRequested ? `; ${fmt(scaleRequested)} asked for, limited by file descriptors` : ''}); ${method(scaleSettings)}`
  console.log(title)
  const results = await runAll(
    servers.map((server) => ({ scenario: 'room' as const, server })),
    scaleSettings,
    (server, scenario) => oneServer(server, scenario, { ...serverOptions, descriptors: scaleConnections }),
  )
  output.scale = {
    settings: { ...scaleSettings, requested: scaleRequested },
    results: results.map((r) => ({ ...r, capacityArithmetic: capacity(r, memoryGiB) })),
  }
  tables.push(`${title}\n\n${scaleTable(results, memoryGiB)}`)
}

if (suites.includes('capture')) {
  const postgresCpu = env('BENCH_CAPTURE_POSTGRES_CPU', '1')
  const settings: CaptureSettings = {
    seconds: base.seconds,
    subscribers: Number(env('BENCH_CAPTURE_SUBSCRIBERS', '10')),
    batch: Number(env('BENCH_CAPTURE_BATCH', '10')),
    concurrency: Number(env('BENCH_CAPTURE_CONCURRENCY', '8')),
    window: Number(env('BENCH_CAPTURE_WINDOW', '5000')),
    phases: list<CapturePhase>('BENCH_CAPTURE_PHASES', capturePhases, capturePhases),
    rate: Number(env('BENCH_CAPTURE_RATE', '1000')),
    paths: list<CapturePath>('BENCH_CAPTURE_PATHS', ['database', 'extension'], ['database', 'extension']),
    postgresCpu: postgresCpu === 'none' ? undefined : Number(postgresCpu),
    synchronousCommit: env('BENCH_CAPTURE_SYNCHRONOUS_COMMIT', 'on'),
    cpuProfileDir: serverOptions.cpuProfileDir,
  }
  const title = `capture: committed row changes (User inserts) to ${fmt(settings.subscribers)} userEvents subscribers, through PostgreSQL's log (MIZZEN_CAPTURE=database, raw SQL from a writer process) and through the realtime extension (writes through the gateway's Prisma Client); PostgreSQL synchronous_commit=${settings.synchronousCommit}; gateway on CPU 0, PostgreSQL ${settings.postgresCpu === undefined || !pinnable ? 'not pinned' : `on CPU ${settings.postgresCpu}`}, subscribers and writer on CPU 1; each phase ${settings.seconds} s; latency from the writer's COMMIT returning to a subscriber reading the row`
  console.log(title)
  const results = await measureCapture(settings)
  output.capture = { settings, results }
  tables.push(`${title}\n\n${captureTable(results)}`)
}

const loadAfter = loadavg()
console.log()
console.log(tables.join('\n\n'))
console.log()
console.log(`load average after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`)
mkdirSync(dirname(outFile), { recursive: true })
writeFileSync(
  outFile,
  `${JSON.stringify({ commit, date: new Date().toISOString(), machine, pinning, loadBefore, loadAfter, command: `npm run bench -- ${suites.join(' ')}`, ...output }, null, 2)}\n`,
)
console.log(`results: ${outFile}`)
process.exit(0)
