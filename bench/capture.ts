/**
 * The `capture` suite (`npm run bench -- capture`): committed row changes from PostgreSQL's log
 * to subscribers (MIZZEN_CAPTURE=database, docs/architecture.md §11), beside the realtime
 * extension's path (MIZZEN_CAPTURE=extension) at the same rates, in one run.
 *
 * A PostgreSQL of the benchmark's own with wal_level=logical (port 55420-55439, pinned to
 * BENCH_CAPTURE_POSTGRES_CPU, default CPU 1), a fresh database per path; the gateway alone on
 * CPU 0; the subscribers' process and the writer on CPU 1 (the extension's writes run in the
 * gateway: they go through its Prisma Client). Every row is a `User` insert whose `name` is its
 * sequence number; every subscriber (`userEvents(verbs: [CREATED])`) receives every row.
 *
 * Phases per path, after a warm-up: 1,000 rows/s in single-row transactions, 1,000 rows/s in
 * transactions of BENCH_CAPTURE_BATCH rows (a multi-row INSERT; `createMany` on the extension's
 * path), then as fast as BENCH_CAPTURE_CONCURRENCY transactions in flight commit, both ways. Each
 * phase writes for BENCH_SECONDS; measured:
 * - committed rows/s: rows over the time from the first transaction's start to the last COMMIT;
 * - delivered rows/s: rows over the time from the first transaction's start to the last row
 *   reaching the last subscriber (end to end: what the path sustains);
 * - commit-to-delivery latency: from the moment a row's COMMIT returned to the writer to the
 *   moment a subscriber read it, every delivery (one clock: CLOCK_MONOTONIC of the machine);
 * - the gateway's CPU time per row.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { startLogicalPostgres } from '../test/helpers/logical-postgres-server.ts'
import type { CaptureReply, CaptureRequest, WriteResult, WriteRun } from './capture-process.ts'
import { Histogram } from './common.ts'
import { pinnable, processCpuMicros, reply, sleep, spawnNode, stop } from './processes.ts'

export type CapturePath = 'database' | 'extension'
export const capturePhases = ['rate-single', 'rate-batch', 'max-single', 'max-batch'] as const
export type CapturePhase = (typeof capturePhases)[number]

export interface CaptureSettings {
  readonly seconds: number
  readonly subscribers: number
  /** Rows per multi-row transaction. */
  readonly batch: number
  /** Transactions in flight in the phases at full speed. */
  readonly concurrency: number
  /** How many rows full speed may be ahead of the slowest subscriber. */
  readonly window: number
  /** The fixed rate, rows/s. */
  readonly rate: number
  readonly paths: readonly CapturePath[]
  readonly phases: readonly CapturePhase[]
  /** PostgreSQL's `synchronous_commit` (BENCH_CAPTURE_SYNCHRONOUS_COMMIT): `on`, as it ships. */
  readonly synchronousCommit: string
  /** CPU the benchmark's PostgreSQL is pinned to (undefined: not pinned). */
  readonly postgresCpu: number | undefined
  /** A directory: the gateway runs under `node --cpu-prof`, its profile in `<dir>/capture-<path>/`. */
  readonly cpuProfileDir?: string
}

export interface CaptureResult {
  readonly path: CapturePath
  readonly phase: string
  readonly rowsPerTransaction: number
  /** Rows/s asked for; undefined: as fast as it goes. */
  readonly offered: number | undefined
  readonly rows: number
  readonly committedPerSecond: number
  readonly deliveredPerSecond: number
  readonly p50Micros: number
  readonly p99Micros: number
  readonly maxMicros: number
  readonly gatewayCpuMicrosPerRow: number
  /** Share of one CPU each used over the phase (first transaction to last delivery). */
  readonly busy: {
    readonly gateway: number
    /** PostgreSQL's processes, all of them. */
    readonly postgres: number
    /** The walsender alone: decoding the log for the gateway (capture path). */
    readonly walsender: number
    /** The writer's and the subscribers' processes (CPU 1). */
    readonly clients: number
    /**
     * Share of the phase the gateway's main thread was ready to run and waited for its CPU
     * (/proc/<pid>/schedstat): other processes on CPU 0, on a shared machine other work.
     */
    readonly gatewayWaited: number
  }
  /** Deliveries that never came (rows × subscribers − deliveries). */
  readonly lost: number
  readonly error?: string
}

const ask = <T extends CaptureReply['type']>(child: ChildProcess, request: CaptureRequest, type: T, ms = 60_000) => {
  child.send(request)
  return reply<Extract<CaptureReply, { type: T }>>(child, (m) => m.type === type, ms, `${request.type}`)
}

const started = (child: ChildProcess, what: string) =>
  reply<Extract<CaptureReply, { type: 'ready' }>>(child, (m) => m.type === 'ready', 120_000, `${what} start`)

/** Until `done` holds, polling every 100 ms; false after `ms` without it. */
async function until(done: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await done()) return true
    await sleep(100)
  }
  return false
}

export async function measureCapture(settings: CaptureSettings): Promise<CaptureResult[]> {
  const server = await startLogicalPostgres({
    ports: { from: 55420, to: 55439 },
    cpu: pinnable ? settings.postgresCpu : undefined,
    // `on` as PostgreSQL ships: with it off, a commit reaches the walsender only at the WAL
    // writer's next flush (every wal_writer_delay, 200 ms), which is then most of the latency.
    settings: { synchronous_commit: settings.synchronousCommit },
  })
  const results: CaptureResult[] = []
  try {
    for (const path of settings.paths) results.push(...(await measurePath(path, server, settings)))
  } finally {
    await server.stop()
  }
  return results
}

async function measurePath(
  path: CapturePath,
  server: Awaited<ReturnType<typeof startLogicalPostgres>>,
  settings: CaptureSettings,
): Promise<CaptureResult[]> {
  const database = await server.createDatabase()
  const children: ChildProcess[] = []
  const grace = settings.cpuProfileDir ? 30_000 : 0
  try {
    const gateway = spawnNode('capture-process.ts', ['gateway', path, database.url], 0, {
      nodeFlags: settings.cpuProfileDir
        ? ['--cpu-prof', `--cpu-prof-dir=${join(settings.cpuProfileDir, `capture-${path}`)}`]
        : [],
    })
    children.push(gateway)
    const { port } = await started(gateway, `${path} gateway`)
    const leading = await until(async () => (await ask(gateway, { type: 'status' }, 'status')).leading, 60_000)
    if (!leading) throw new Error('the gateway did not start reading the replication slot within 60 s')
    const subscribers = spawnNode(
      'capture-process.ts',
      ['subscribers', `ws://127.0.0.1:${port}/graphql`, String(settings.subscribers)],
      1,
    )
    children.push(subscribers)
    await started(subscribers, 'subscribers')
    await until(
      async () => (await ask(gateway, { type: 'status' }, 'status')).subscribers >= settings.subscribers,
      30_000,
    )
    // The capture path's writes come from a process of their own; the extension's go through the gateway's client.
    let writer = gateway
    if (path === 'database') {
      writer = spawnNode('capture-process.ts', ['writer', database.url], 1)
      children.push(writer)
      await started(writer, 'writer')
    }
    const allPhases: { name: CapturePhase; phase: string; run: Omit<WriteRun, 'from'> }[] = [
      {
        name: 'rate-single',
        phase: 'single-row transactions',
        run: { seconds: settings.seconds, rowsPerTransaction: 1, rate: settings.rate, concurrency: 16 },
      },
      {
        name: 'rate-batch',
        phase: `${settings.batch}-row transactions`,
        run: { seconds: settings.seconds, rowsPerTransaction: settings.batch, rate: settings.rate, concurrency: 16 },
      },
      {
        name: 'max-single',
        phase: 'single-row transactions',
        run: {
          seconds: settings.seconds,
          rowsPerTransaction: 1,
          concurrency: settings.concurrency,
          window: settings.window,
        },
      },
      {
        name: 'max-batch',
        phase: `${settings.batch}-row transactions`,
        run: {
          seconds: settings.seconds,
          rowsPerTransaction: settings.batch,
          concurrency: settings.concurrency,
          window: settings.window,
        },
      },
    ]
    const phases = allPhases.filter(({ name }) => settings.phases.includes(name))
    const [walsender] = await server.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender'`,
    )
    const cpuOf = async (child: ChildProcess) => (await ask(child, { type: 'cpu' }, 'cpu')).micros
    /** CPU time so far (µs) of each party. */
    const cpu = async () => ({
      gateway: await cpuOf(gateway),
      clients: (await cpuOf(subscribers)) + (writer === gateway ? 0 : await cpuOf(writer)),
      postgres: postgresCpuMicros(server.pid),
      walsender: walsender ? processCpuMicros(walsender.pid) : 0,
      gatewayWaited: runQueueMicros(gateway.pid!),
    })
    let from = 1
    const phase = async (run: Omit<WriteRun, 'from'>) => {
      const cpuBefore = await cpu()
      const written = ask(writer, { type: 'write', run: { ...run, from } }, 'written', run.seconds * 1000 + 60_000)
      if (run.window) {
        // Credit: the writer stays `window` rows ahead of the subscriber that received fewest.
        let writing = true
        written.then(
          () => (writing = false),
          () => (writing = false),
        )
        const base = (await ask(subscribers, { type: 'progress', from, to: from - 1 }, 'progress')).least
        while (writing) {
          const { least } = await ask(subscribers, { type: 'progress', from, to: from - 1 }, 'progress')
          if (writing) writer.send({ type: 'credit', upTo: least - base + run.window } satisfies CaptureRequest)
          await sleep(20)
        }
      }
      const { result } = await written
      const to = from + result.rows - 1
      // Until every subscriber has every row, or nothing more arrives for 5 s.
      let last = -1
      let stalled = Date.now()
      while (Date.now() - stalled < 5000) {
        const progress = await ask(subscribers, { type: 'progress', from, to }, 'progress')
        if (progress.complete >= settings.subscribers) break
        if (progress.received !== last) [last, stalled] = [progress.received, Date.now()]
        await sleep(100)
      }
      const cpuAfter = await cpu()
      const report = await ask(subscribers, { type: 'report', from, committed: result.committed }, 'report')
      from = to + 1
      const used = {
        gateway: cpuAfter.gateway - cpuBefore.gateway,
        clients: cpuAfter.clients - cpuBefore.clients,
        postgres: cpuAfter.postgres - cpuBefore.postgres,
        walsender: cpuAfter.walsender - cpuBefore.walsender,
        gatewayWaited: cpuAfter.gatewayWaited - cpuBefore.gatewayWaited,
      }
      return { result, report, cpu: used }
    }
    // Warm-up (not counted): connections, JIT, the slot's first transactions.
    await phase({ seconds: 1, rowsPerTransaction: 1, rate: 500, concurrency: 16 })
    const results: CaptureResult[] = []
    for (const { phase: name, run } of phases) {
      const { result, report, cpu } = await phase(run)
      results.push(captureResult(path, name, run, result, report, cpu, settings))
      console.log(`  ${line(results.at(-1)!)}`)
    }
    return results
  } catch (error) {
    console.log(`  ${path}: FAILED (${(error as Error).message})`)
    return [
      {
        path,
        phase: 'all',
        rowsPerTransaction: 0,
        offered: undefined,
        rows: 0,
        committedPerSecond: Number.NaN,
        deliveredPerSecond: Number.NaN,
        p50Micros: Number.NaN,
        p99Micros: Number.NaN,
        maxMicros: Number.NaN,
        gatewayCpuMicrosPerRow: Number.NaN,
        busy: {
          gateway: Number.NaN,
          postgres: Number.NaN,
          walsender: Number.NaN,
          clients: Number.NaN,
          gatewayWaited: Number.NaN,
        },
        lost: 0,
        error: (error as Error).message,
      },
    ]
  } finally {
    await Promise.all(children.map((child) => stop(child, grace)))
    await database.drop().catch(() => {})
  }
}

function captureResult(
  path: CapturePath,
  phase: string,
  run: Omit<WriteRun, 'from'>,
  result: WriteResult,
  report: Extract<CaptureReply, { type: 'report' }>,
  cpu: CaptureResult['busy'],
  settings: CaptureSettings,
): CaptureResult {
  const histogram = new Histogram(report.histogram)
  const span = Math.max(report.lastDelivery, result.ended) - result.started
  return {
    path,
    phase,
    rowsPerTransaction: run.rowsPerTransaction,
    offered: run.rate,
    rows: result.rows,
    committedPerSecond: result.rows / ((result.ended - result.started) / 1e6),
    deliveredPerSecond: result.rows / (span / 1e6),
    p50Micros: histogram.percentile(0.5),
    p99Micros: histogram.percentile(0.99),
    maxMicros: histogram.percentile(1),
    gatewayCpuMicrosPerRow: cpu.gateway / result.rows,
    busy: {
      gateway: cpu.gateway / span,
      postgres: cpu.postgres / span,
      walsender: cpu.walsender / span,
      clients: cpu.clients / span,
      gatewayWaited: cpu.gatewayWaited / span,
    },
    lost: result.rows * settings.subscribers - report.deliveries,
  }
}

/** How long (µs) the main thread of `pid` has waited on a run queue: ready, and another process on its CPU. */
function runQueueMicros(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1000
  } catch {
    return Number.NaN
  }
}

/** CPU time so far (µs) of the postmaster and every process it started (its backends, the walsender). */
function postgresCpuMicros(postmaster: number): number {
  let total = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (Number(entry) === postmaster || parent === postmaster) total += processCpuMicros(Number(entry))
    } catch {
      // It ended in between.
    }
  }
  return total
}

const fmt = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a')
const pct = (share: number) => (Number.isFinite(share) ? `${Math.round(share * 100)}%` : 'n/a')
const msText = (micros: number) => (Number.isFinite(micros) ? `${(micros / 1000).toFixed(1)} ms` : 'n/a')

const line = (r: CaptureResult) =>
  `${r.path}, ${r.phase}, ${r.offered ? `${fmt(r.offered)} rows/s` : 'max'}: ${fmt(r.committedPerSecond)} committed/s, ${fmt(r.deliveredPerSecond)} delivered/s, p50 ${msText(r.p50Micros)}, p99 ${msText(r.p99Micros)}, ${r.gatewayCpuMicrosPerRow.toFixed(0)} µs gateway CPU/row; busy: gateway ${pct(r.busy.gateway)} (waited for CPU 0: ${pct(r.busy.gatewayWaited)}), PostgreSQL ${pct(r.busy.postgres)} (walsender ${pct(r.busy.walsender)}), writer and subscribers ${pct(r.busy.clients)}; lost ${r.lost}`
