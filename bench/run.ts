/**
 * `npm run bench`: fan-out at transport speed, side by side in one run (docs/performance.md).
 *
 * For each scenario (`room`, `userEvents` with ids, `postEvents` with a where filter under two
 * users' row policies) and each server (raw `ws`, Socket.IO 4 for `room`, plain graphql-yoga +
 * graphql-ws with createPubSub, mizzen, and mizzen with metrics off, to show what counting costs), in
 * that order:
 *   1. the server starts in a process of its own, pinned to CPU 0 (`taskset`);
 *   2. N subscribers connect from load-generator processes pinned to CPU 1;
 *   3. idle memory: the server's RSS after a full GC, less its RSS before any connection, per connection;
 *   4. fixed rate: messages published at BENCH_RATE deliveries per second in all, for
 *      BENCH_SECONDS: latency percentiles (the send time travels in each message);
 *   5. as fast as delivery allows: the publisher stays at most a small window of messages ahead
 *      of the slowest subscriber, for BENCH_ROUNDS rounds of BENCH_SECONDS: delivered messages
 *      per second, and the server's CPU time (process.cpuUsage) per delivered message, each the
 *      best of the rounds (on a shared machine other processes slow some rounds down);
 *   6. every message is accounted for: those that never arrive (waited for, with a deadline)
 *      are counted lost, those that arrive after a later one are counted reordered.
 * Prints one table and writes it as JSON (BENCH_OUT) for comparison across commits. Loopback
 * only; every wait has a deadline, so it always ends.
 *
 * Settings (env): BENCH_SUBSCRIBERS (1000; try 5000), BENCH_SECONDS (3), BENCH_ROUNDS (3), BENCH_RATE (20000
 * deliveries/s), BENCH_SCENARIOS, BENCH_SERVERS (comma-separated subsets), BENCH_LOADGENS (2),
 * BENCH_CLIENT (`raw` graphql-transport-ws over ws, or `graphql-ws` for the graphql-ws client),
 * BENCH_CPU_PROF (a directory: each server runs under `node --cpu-prof`, writing its profiles in
 * `<dir>/<scenario>-<server>/`),
 * BENCH_OUT (default bench/results/<time>.json).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SignJWT } from 'jose'
import {
  BENCH_JWT_SECRET,
  benchUsers,
  Histogram,
  scenarios,
  serverKinds,
  serverNames,
  type LoadPlan,
  type LoadReply,
  type LoadRequest,
  type Scenario,
  type ServerKind,
  type ServerReply,
  type ServerRequest,
} from './common.ts'

const here = dirname(fileURLToPath(import.meta.url))
const env = (name: string, fallback: string) => process.env[name] ?? fallback
const subscribers = Number(env('BENCH_SUBSCRIBERS', '1000'))
const seconds = Number(env('BENCH_SECONDS', '3'))
const rounds = Number(env('BENCH_ROUNDS', '3'))
const fixedRate = Number(env('BENCH_RATE', '20000'))
const loadgens = Number(env('BENCH_LOADGENS', '2'))
const client = env('BENCH_CLIENT', 'raw') as LoadPlan['client']
const wantedScenarios = env('BENCH_SCENARIOS', scenarios.join(',')).split(',') as Scenario[]
const wantedServers = env('BENCH_SERVERS', serverKinds.join(',')).split(',') as ServerKind[]
const cpuProfileDir = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined
const outFile = resolve(
  env('BENCH_OUT', join(here, 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}.json`)),
)

/** Socket.IO is compared for rooms (its own concept); model events have no Socket.IO equivalent. */
const runs = wantedScenarios.flatMap((scenario) =>
  wantedServers
    .filter((server) => server !== 'socket.io' || scenario === 'room')
    .map((server) => ({ scenario, server })),
)

const pinnable = (() => {
  if (cpus().length < 2) return false
  try {
    execFileSync('taskset', ['-c', '0', 'true'])
    return true
  } catch {
    return false
  }
})()

const children = new Set<ChildProcess>()
process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')))
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))

/** A node process running `script`, pinned to `cpu` when the machine allows, with an IPC channel. */
function spawnNode(script: string, args: string[], cpu: number, nodeFlags: string[] = []): ChildProcess {
  const command = [process.execPath, ...nodeFlags, '--import', 'tsx', join(here, script), ...args]
  const child = pinnable
    ? spawn('taskset', ['-c', String(cpu), ...command], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    : spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** The next IPC message of `child` that `match` accepts, or an error after `ms`. */
function reply<T extends { type: string }>(
  child: ChildProcess,
  match: (message: T) => boolean,
  ms: number,
  what: string,
): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => done(new Error(`${what}: no answer within ${ms} ms`)), ms)
    const onMessage = (message: T) => {
      if (message.type === 'error') done(new Error(`${what}: ${(message as unknown as { message: string }).message}`))
      else if (match(message)) done(undefined, message)
    }
    const onExit = (code: number | null) => done(new Error(`${what}: the process exited (${code})`))
    const done = (error?: Error, message?: T) => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      if (error) reject(error)
      else resolvePromise(message!)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

const ask = <T extends ServerReply['type']>(server: ChildProcess, request: ServerRequest, type: T, ms = 30_000) => {
  server.send(request)
  return reply<Extract<ServerReply, { type: T }>>(server, (m) => m.type === type, ms, `server ${request.type}`)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface RunResult {
  scenario: Scenario
  server: ServerKind
  subscribers: number
  connected: number
  /** Delivered messages per second, publishing as fast as delivery allows (best round). */
  deliveredPerSecond: number
  /** Server CPU time per delivered message in that phase, µs (best round). */
  cpuMicrosPerMessage: number
  /** Server CPU time / wall time in that phase (1 = one core busy). */
  cpuBusy: number
  /** Latency at the fixed rate, µs. */
  p50Micros: number
  p99Micros: number
  /** The fixed rate actually published, deliveries per second. */
  fixedRate: number
  /** Server RSS growth per idle subscribed connection, bytes (and its heap growth). */
  idleBytesPerConnection: number
  idleHeapBytesPerConnection: number
  lost: number
  reordered: number
  error?: string
}

interface LoadState {
  minSeq: number
  received: number
}

async function measure(scenario: Scenario, server: ServerKind): Promise<RunResult> {
  const result: RunResult = {
    scenario,
    server,
    subscribers,
    connected: 0,
    deliveredPerSecond: Number.NaN,
    cpuMicrosPerMessage: Number.NaN,
    cpuBusy: Number.NaN,
    p50Micros: Number.NaN,
    p99Micros: Number.NaN,
    fixedRate: Number.NaN,
    idleBytesPerConnection: Number.NaN,
    idleHeapBytesPerConnection: Number.NaN,
    lost: 0,
    reordered: 0,
  }
  const profiling = cpuProfileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfileDir, `${scenario}-${server}`)}`]
    : []
  const serverProcess = spawnNode('server-process.ts', [server, scenario], 0, [
    '--expose-gc',
    ...profiling,
    ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
  ])
  const generators: ChildProcess[] = []
  try {
    const { port } = await reply<Extract<ServerReply, { type: 'ready' }>>(
      serverProcess,
      (m) => m.type === 'ready',
      60_000,
      'server start',
    )
    const before = await ask(serverProcess, { type: 'memory' }, 'memory')

    // Subscribers, from load generators on the other CPU.
    const tokens = Object.fromEntries(
      await Promise.all(
        benchUsers.map(async (user) => [
          user,
          await new SignJWT({})
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject(user)
            .setExpirationTime('2h')
            .sign(new TextEncoder().encode(BENCH_JWT_SECRET)),
        ]),
      ),
    ) as Record<string, string>
    const states: LoadState[] = []
    let offset = 0
    for (let i = 0; i < loadgens; i++) {
      const connections = Math.floor(subscribers / loadgens) + (i < subscribers % loadgens ? 1 : 0)
      const generator = spawnNode('load.ts', [], 1)
      generators.push(generator)
      const state: LoadState = { minSeq: 0, received: 0 }
      states.push(state)
      generator.on('message', (message: LoadReply) => {
        if (message.type === 'progress') Object.assign(state, { minSeq: message.minSeq, received: message.received })
      })
      const plan: LoadPlan = {
        url: `http://127.0.0.1:${port}/graphql`,
        server,
        scenario,
        connections,
        offset,
        client,
        tokens,
      }
      generator.send({ type: 'connect', plan } satisfies LoadRequest)
      offset += connections
    }
    const connectedReplies = await Promise.all(
      generators.map((g) =>
        reply<Extract<LoadReply, { type: 'connected' }>>(
          g,
          (m) => m.type === 'connected',
          180_000,
          'subscribers connecting',
        ),
      ),
    )
    result.connected = connectedReplies.reduce((sum, r) => sum + r.connections, 0)
    const deadline = Date.now() + 60_000
    while ((await ask(serverProcess, { type: 'count' }, 'count')).subscribers < result.connected) {
      if (Date.now() > deadline) throw new Error('subscriptions did not all start within 60 s')
      await sleep(50)
    }
    const idle = await ask(serverProcess, { type: 'memory' }, 'memory')
    result.idleBytesPerConnection = (idle.rss - before.rss) / result.connected
    result.idleHeapBytesPerConnection = (idle.heapUsed - before.heapUsed) / result.connected

    const minSeq = () => Math.min(...states.map((s) => s.minSeq))
    const received = () => states.reduce((sum, s) => sum + s.received, 0)
    const toAll = (request: LoadRequest) => generators.forEach((g) => g.send(request))
    /** Waits until every subscriber reached `seq`, or until nothing moved for `quietMs`. */
    const drain = async (seq: number, quietMs = 5_000) => {
      let last = received()
      let lastChange = Date.now()
      while (minSeq() < seq && Date.now() - lastChange < quietMs) {
        await sleep(20)
        if (received() !== last) [last, lastChange] = [received(), Date.now()]
      }
    }
    const reports = async () => {
      toAll({ type: 'report' })
      return Promise.all(
        generators.map((g) =>
          reply<Extract<LoadReply, { type: 'report' }>>(g, (m) => m.type === 'report', 30_000, 'report'),
        ),
      )
    }
    const window = Math.max(4, Math.ceil(50_000 / result.connected))
    let seq = 0
    let expected = 0

    // Warm-up (JIT, buffers): a few messages, as fast as delivery allows.
    serverProcess.send({ type: 'credit', upTo: 20 } satisfies ServerRequest)
    await drain(20)
    seq = (await ask(serverProcess, { type: 'stop-publishing' }, 'published')).last
    expected += seq * result.connected

    // Fixed rate: latency.
    const perSecond = fixedRate / result.connected
    const count = Math.max(1, Math.round(perSecond * seconds))
    toAll({ type: 'phase', from: seq + 1, to: seq + count })
    serverProcess.send({ type: 'rate', from: seq + 1, count, perSecond } satisfies ServerRequest)
    const ratePublished = await reply<Extract<ServerReply, { type: 'published' }>>(
      serverProcess,
      (m) => m.type === 'published',
      seconds * 1000 + 60_000,
      'fixed rate',
    )
    await drain(ratePublished.last)
    const latency = new Histogram()
    for (const report of await reports()) latency.merge(report.histogram)
    result.p50Micros = latency.percentile(0.5)
    result.p99Micros = latency.percentile(0.99)
    result.fixedRate = (count * result.connected) / seconds
    expected += (ratePublished.last - seq) * result.connected
    seq = ratePublished.last

    // As fast as delivery allows: throughput and CPU per message, the best of a few rounds (other
    // processes on the machine slow some of them down; none speeds one up).
    toAll({ type: 'phase', from: seq + 1, to: Number.MAX_SAFE_INTEGER })
    let lastCredit = seq
    let stalled = false
    for (let round = 0; round < rounds && !stalled; round++) {
      const cpuStart = await ask(serverProcess, { type: 'cpu' }, 'cpu')
      const receivedStart = received()
      const started = performance.now()
      let stalledSince = started
      let lastReceived = receivedStart
      while (performance.now() - started < seconds * 1000) {
        const credit = minSeq() + window
        if (credit > lastCredit) {
          serverProcess.send({ type: 'credit', upTo: credit } satisfies ServerRequest)
          lastCredit = credit
        }
        await sleep(10)
        if (received() !== lastReceived) [lastReceived, stalledSince] = [received(), performance.now()]
        else if (performance.now() - stalledSince > 10_000) {
          stalled = true
          break
        }
      }
      const cpuEnd = await ask(serverProcess, { type: 'cpu' }, 'cpu')
      const elapsed = (performance.now() - started) / 1000
      const delivered = received() - receivedStart
      const cpuMicros = cpuEnd.user + cpuEnd.system - cpuStart.user - cpuStart.system
      if (!(delivered / elapsed <= result.deliveredPerSecond)) result.deliveredPerSecond = delivered / elapsed
      if (!(cpuMicros / delivered >= result.cpuMicrosPerMessage)) {
        result.cpuMicrosPerMessage = cpuMicros / delivered
        result.cpuBusy = cpuMicros / 1e6 / elapsed
      }
    }
    const last = (await ask(serverProcess, { type: 'stop-publishing' }, 'published')).last
    expected += (last - seq) * result.connected
    await drain(last)

    const final = await reports()
    const got = final.reduce((sum, r) => sum + r.received, 0)
    result.lost = Math.max(0, expected - got)
    result.reordered = final.reduce((sum, r) => sum + r.reordered, 0)
  } catch (error) {
    result.error = (error as Error).message
  } finally {
    for (const generator of generators) if (generator.connected) generator.send({ type: 'close' } satisfies LoadRequest)
    await sleep(300)
    for (const generator of generators) generator.kill('SIGKILL')
    if (profiling.length && serverProcess.connected) {
      // --cpu-prof writes its profile on a normal exit.
      serverProcess.disconnect()
      await new Promise((r) => (serverProcess.exitCode !== null ? r(undefined) : serverProcess.once('exit', r)))
    }
    serverProcess.kill('SIGKILL')
  }
  return result
}

// ---- report ------------------------------------------------------------------------------------

const fmt = (value: number, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a'
const ms = (micros: number) => (Number.isFinite(micros) ? `${fmt(micros / 1000, micros < 10_000 ? 2 : 1)} ms` : 'n/a')

function table(results: RunResult[]): string {
  const header = [
    'scenario',
    'server',
    'delivered msg/s',
    'x raw ws',
    'x Yoga',
    'p50',
    'p99',
    'p99 x raw',
    'CPU µs/msg',
    'x raw',
    'CPU busy',
    'KB/idle conn (RSS)',
    'heap',
    'lost',
    'reordered',
  ]
  const rows = results.map((r) => {
    const raw = results.find((o) => o.scenario === r.scenario && o.server === 'raw-ws')
    const yoga = results.find((o) => o.scenario === r.scenario && o.server === 'yoga')
    const ratio = (a: number, b: number | undefined) =>
      b && Number.isFinite(a) && Number.isFinite(b) ? fmt(a / b, 2) : ''
    return [
      r.scenario,
      serverNames[r.server],
      r.error ? `FAILED: ${r.error}` : fmt(r.deliveredPerSecond),
      ratio(r.deliveredPerSecond, raw?.deliveredPerSecond),
      ratio(r.deliveredPerSecond, yoga?.deliveredPerSecond),
      ms(r.p50Micros),
      ms(r.p99Micros),
      ratio(r.p99Micros, raw?.p99Micros),
      fmt(r.cpuMicrosPerMessage, 1),
      ratio(r.cpuMicrosPerMessage, raw?.cpuMicrosPerMessage),
      `${fmt(r.cpuBusy * 100)}%`,
      fmt(r.idleBytesPerConnection / 1024, 1),
      fmt(r.idleHeapBytesPerConnection / 1024, 1),
      r.connected < r.subscribers ? `${fmt(r.lost)} (${r.subscribers - r.connected} never connected)` : fmt(r.lost),
      fmt(r.reordered),
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

const commit = (() => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here }).toString().trim()
  } catch {
    return 'unknown'
  }
})()
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`
const pinning = pinnable
  ? `server pinned to CPU 0, ${loadgens} load generators pinned to CPU 1 (taskset); the orchestrator is not pinned`
  : 'not pinned (taskset unavailable or one CPU): server and load generators share the CPUs'
const loadBefore = loadavg()
console.log(
  `fan-out: ${subscribers} subscribers; latency at ${fixedRate} deliveries/s for ${seconds} s; throughput and CPU: best of ${rounds} rounds of ${seconds} s; clients: ${client === 'raw' ? 'graphql-transport-ws over ws' : 'graphql-ws client'}`,
)
console.log(
  `machine: ${machine}; ${pinning}; load average before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')}; commit ${commit}`,
)

const results: RunResult[] = []
for (const { scenario, server } of runs) {
  const result = await measure(scenario, server)
  results.push(result)
  console.log(
    `  ${scenario} / ${server}: ${result.error ? `FAILED (${result.error})` : `${fmt(result.deliveredPerSecond)} msg/s, ${fmt(result.cpuMicrosPerMessage, 1)} µs/msg, p99 ${ms(result.p99Micros)}, ${fmt(result.idleBytesPerConnection / 1024, 1)} KB/conn, lost ${result.lost}`}`,
  )
}
const loadAfter = loadavg()
console.log()
console.log(table(results))
console.log()
console.log(`load average after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`)
mkdirSync(dirname(outFile), { recursive: true })
writeFileSync(
  outFile,
  `${JSON.stringify({ commit, date: new Date().toISOString(), machine, pinning, loadBefore, loadAfter, settings: { subscribers, seconds, rounds, fixedRate, loadgens, client }, results }, null, 2)}\n`,
)
console.log(`results: ${outFile}`)
process.exit(0)
