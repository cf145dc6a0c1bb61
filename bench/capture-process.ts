/**
 * The processes of the `capture` suite (bench/capture.ts), each spawned and pinned by the
 * orchestrator and answering it over IPC:
 *
 * - `gateway <database|extension> <url>`: mizzen on the example schema in the PostgreSQL at
 *   `url` (migrated here), open (every client a service), with MIZZEN_CAPTURE's two modes:
 *   `database` reads the log; `extension` publishes from its realtime-extension-wrapped Prisma
 *   Client, so that path's writes run here, through `gateway.prisma` (as a one-gateway app's
 *   mutations do).
 * - `writer <url>`: raw SQL commits through a pool of `pg` connections (the capture path).
 * - `subscribers <ws url> <count>`: `count` graphql-transport-ws connections (over `ws`, by hand),
 *   each subscribed to `userEvents(verbs: [CREATED])`, noting when each row arrived.
 *
 * A row's `name` is its sequence number; the writer notes, per row, the moment its COMMIT
 * returned (the machine's monotonic clock, the same in every process), the subscribers the
 * moment it arrived: latency is the difference, joined at the end.
 */
import pg from 'pg'
import WebSocket from 'ws'
import { openExampleDatabase } from '../examples/app/database.ts'
import { createGateway } from '../src/gateway.ts'
import { benchGatewayOptions } from './servers/gateway-options.ts'
import { Histogram, nowMicros } from './common.ts'

/** One write phase: rows `from`, `from + 1`, … committed `rowsPerTransaction` at a time. */
export interface WriteRun {
  readonly from: number
  readonly seconds: number
  readonly rowsPerTransaction: number
  /** Rows per second, evenly spaced; undefined: as fast as `concurrency` transactions in flight allow. */
  readonly rate?: number
  readonly concurrency: number
  /**
   * Full speed stays this many rows ahead of what every subscriber received (the orchestrator
   * sends `credit` as they read): a writer faster than delivery would otherwise only grow the
   * backlog until the gateway drops the subscribers as slow consumers.
   */
  readonly window?: number
}

export interface WriteResult {
  readonly rows: number
  readonly transactions: number
  /** µs, monotonic: when the first transaction began, and the last one's COMMIT returned. */
  readonly started: number
  readonly ended: number
  /** When each row's COMMIT returned (µs, monotonic), by `seq - from`. */
  readonly committed: number[]
}

export type CaptureRequest =
  | { type: 'status' }
  | { type: 'cpu' }
  | { type: 'write'; run: WriteRun }
  /** The writer may write rows up to `from + upTo - 1` of the current run. */
  | { type: 'credit'; upTo: number }
  /** How many subscribers have every row of `from..to`, and how many rows arrived in all. */
  | { type: 'progress'; from: number; to: number }
  /** Latency of every delivery of rows `from..from + committed.length - 1`. */
  | { type: 'report'; from: number; committed: number[] }

export type CaptureReply =
  | { type: 'ready'; port?: number }
  | { type: 'status'; leading: boolean; subscribers: number }
  | { type: 'cpu'; micros: number }
  | { type: 'written'; result: WriteResult }
  /** `least`: rows the connection that received fewest has received, since it connected. */
  | { type: 'progress'; complete: number; received: number; least: number }
  | { type: 'report'; histogram: number[]; deliveries: number; missing: number; lastDelivery: number }
  | { type: 'error'; message: string }

const send = (reply: CaptureReply) => process.send!(reply)
const fail = (error: unknown) => send({ type: 'error', message: (error as Error).stack ?? String(error) })
process.on('disconnect', () => process.exit(0))

/** Commits the rows `seqs` in one transaction. */
type Commit = (seqs: number[]) => Promise<unknown>

/** Rows of the current run the writer may write (with a window); raised by `credit`. */
let credit = 0
let creditRaised: (() => void) | undefined
function raiseCredit(upTo: number): void {
  credit = Math.max(credit, upTo)
  creditRaised?.()
}

async function write(run: WriteRun, commit: Commit): Promise<WriteResult> {
  credit = run.window ?? Number.POSITIVE_INFINITY
  const committed: number[] = []
  const inFlight = new Set<Promise<unknown>>()
  const started = nowMicros()
  let seq = run.from
  let transactions = 0
  while (nowMicros() - started < run.seconds * 1e6) {
    if (run.rate) {
      const wait = (started + ((seq - run.from) / run.rate) * 1e6 - nowMicros()) / 1000
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    }
    if (inFlight.size >= run.concurrency) await Promise.race(inFlight)
    while (seq - run.from + run.rowsPerTransaction > credit && nowMicros() - started < run.seconds * 1e6)
      await new Promise<void>((resolve) => {
        creditRaised = resolve
        setTimeout(resolve, 100)
      })
    if (seq - run.from + run.rowsPerTransaction > credit) break
    const seqs = Array.from({ length: run.rowsPerTransaction }, (_, i) => seq + i)
    seq += seqs.length
    transactions++
    const done: Promise<unknown> = commit(seqs).then(() => {
      const at = nowMicros()
      for (const s of seqs) committed[s - run.from] = at
      inFlight.delete(done)
    })
    inFlight.add(done)
  }
  await Promise.all(inFlight)
  return { rows: seq - run.from, transactions, started, ended: nowMicros(), committed }
}

const email = (seq: number) => `b${seq}@bench`

const cpuMicros = () => {
  const { user, system } = process.cpuUsage()
  return user + system
}

// ---- the gateway -------------------------------------------------------------------------------

async function runGateway(mode: 'database' | 'extension', url: string): Promise<void> {
  const database = await openExampleDatabase(url)
  const gateway = await createGateway({
    ...benchGatewayOptions,
    prisma: database.prisma,
    demo: false,
    capture: mode === 'database' ? { mode: 'database', url } : 'extension',
  })
  const users = gateway.prisma.user
  // The extension's path: writes through the gateway's own (extension-wrapped) client.
  const commit: Commit = (seqs) =>
    seqs.length === 1
      ? users.create({ data: { email: email(seqs[0]!), name: String(seqs[0]) } })
      : users.createMany({ data: seqs.map((seq) => ({ email: email(seq), name: String(seq) })) })
  process.on('message', (request: CaptureRequest) => {
    switch (request.type) {
      case 'status':
        return send({
          type: 'status',
          leading: mode === 'extension' || gateway.capture?.leading === true,
          subscribers: gateway.hub.subscriberCount,
        })
      case 'cpu':
        return send({ type: 'cpu', micros: cpuMicros() })
      case 'write':
        return void write(request.run, commit).then((result) => send({ type: 'written', result }), fail)
      case 'credit':
        return raiseCredit(request.upTo)
    }
  })
  send({ type: 'ready', port: gateway.port })
}

// ---- the writer (raw SQL) ----------------------------------------------------------------------

async function runWriter(url: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 16 })
  await pool.query('SELECT 1')
  const commit: Commit = (seqs) =>
    pool.query(
      `INSERT INTO "User" (email, name) VALUES ${seqs.map((_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ')}`,
      seqs.flatMap((seq) => [email(seq), String(seq)]),
    )
  process.on('message', (request: CaptureRequest) => {
    if (request.type === 'write')
      void write(request.run, commit).then((result) => send({ type: 'written', result }), fail)
    else if (request.type === 'cpu') send({ type: 'cpu', micros: cpuMicros() })
    else if (request.type === 'credit') raiseCredit(request.upTo)
  })
  send({ type: 'ready' })
}

// ---- the subscribers ---------------------------------------------------------------------------

const QUERY = 'subscription { userEvents(verbs: [CREATED]) { recordId node { name } } }'

async function runSubscribers(url: string, count: number): Promise<void> {
  /** When each row arrived, per connection, by seq (0: not yet). */
  const arrived = Array.from({ length: count }, () => new Float64Array(1 << 16))
  const receivedBy = new Array<number>(count).fill(0)
  let received = 0
  const note = (connection: number, seq: number) => {
    let times = arrived[connection]!
    if (seq >= times.length) {
      const grown = new Float64Array(Math.max(seq + 1, times.length * 2))
      grown.set(times)
      arrived[connection] = times = grown
    }
    if (!times[seq]) times[seq] = nowMicros()
    received++
    receivedBy[connection]!++
  }
  const connect = (connection: number) =>
    new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(url, 'graphql-transport-ws')
      socket.on('error', reject)
      socket.on('close', (code) => reject(new Error(`subscriber ${connection} closed (${code})`)))
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })))
      socket.on('message', (data) => {
        const message = JSON.parse(String(data))
        if (message.type === 'next') {
          const seq = Number(message.payload?.data?.userEvents?.node?.name)
          if (seq > 0) note(connection, seq)
        } else if (message.type === 'connection_ack') {
          socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: QUERY } }))
          resolve()
        } else if (message.type === 'error') reject(new Error(JSON.stringify(message.payload)))
      })
    })
  await Promise.all(Array.from({ length: count }, (_, i) => connect(i)))
  const has = (times: Float64Array, seq: number) => seq < times.length && times[seq]! > 0
  process.on('message', (request: CaptureRequest) => {
    if (request.type === 'cpu') send({ type: 'cpu', micros: cpuMicros() })
    else if (request.type === 'progress') {
      let complete = 0
      for (const times of arrived) {
        let all = true
        for (let seq = request.from; seq <= request.to && all; seq++) all = has(times, seq)
        if (all) complete++
      }
      send({ type: 'progress', complete, received, least: Math.min(...receivedBy) })
    } else if (request.type === 'report') {
      const histogram = new Histogram()
      let deliveries = 0
      let missing = 0
      let lastDelivery = 0
      for (const times of arrived)
        request.committed.forEach((at, i) => {
          const seq = request.from + i
          if (!has(times, seq)) return void missing++
          deliveries++
          histogram.record(times[seq]! - at)
          lastDelivery = Math.max(lastDelivery, times[seq]!)
        })
      send({ type: 'report', histogram: histogram.counts, deliveries, missing, lastDelivery })
    }
  })
  send({ type: 'ready' })
}

const [role, ...args] = process.argv.slice(2)
try {
  if (role === 'gateway') await runGateway(args[0] as 'database' | 'extension', args[1]!)
  else if (role === 'writer') await runWriter(args[0]!)
  else if (role === 'subscribers') await runSubscribers(args[0]!, Number(args[1]))
  else throw new Error(`unknown role ${role}`)
} catch (error) {
  fail(error)
  process.exitCode = 1
}
