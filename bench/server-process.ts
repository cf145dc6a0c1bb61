/**
 * One server of the benchmark, in a process of its own (pinned by the orchestrator):
 * `node bench/server-process.ts <server> <scenario>` (the cluster's servers find their Redis in
 * BENCH_REDIS_URL, and their Redis Cluster's seed nodes in BENCH_REDIS_CLUSTER). It answers the orchestrator over IPC: subscriber counts, memory after a full
 * GC, CPU time and heap allocation, and publishing, either at a fixed rate or as fast as the
 * clients' progress allows (credit). Exits when the IPC channel closes.
 */
import { setImmediate as nextTurn } from 'node:timers/promises'
import { join } from 'node:path'
import { GCProfiler, getHeapStatistics, writeHeapSnapshot } from 'node:v8'
import { nowMicros, type Scenario, type ServerKind, type ServerReply, type ServerRequest } from './common.ts'
import type { BenchServer } from './servers/server.ts'

const [kind, scenario] = process.argv.slice(2) as [ServerKind, Scenario]
const send = (reply: ServerReply) => process.send!(reply)

async function start(): Promise<BenchServer> {
  switch (kind) {
    case 'raw-ws':
      return (await import('./servers/raw-ws.ts')).startRawWs(scenario)
    case 'socket.io':
      return (await import('./servers/socket-io.ts')).startSocketIo(scenario)
    case 'yoga':
      return (await import('./servers/yoga.ts')).startYoga(scenario)
    case 'mizzen':
      return (await import('./servers/mizzen.ts')).startMizzen(scenario)
    case 'mizzen-no-metrics':
      return (await import('./servers/mizzen.ts')).startMizzen(scenario, { metrics: false })
    case 'ws-preframed':
      return (await import('./servers/raw-ws.ts')).startPreframedWs(scenario)
    case 'ws-redis':
      return (await import('./servers/raw-ws.ts')).startWsOnRedis(scenario, redisUrl())
    case 'socket.io-redis':
      return (await import('./servers/socket-io.ts')).startSocketIo(scenario, redisUrl())
    case 'mizzen-redis':
      return (await import('./servers/mizzen.ts')).startMizzen(scenario, { redisUrl: redisUrl() })
    case 'ws-redis-cluster':
      return (await import('./servers/raw-ws.ts')).startWsOnRedisCluster(scenario, redisCluster())
    case 'socket.io-redis-cluster':
      return (await import('./servers/socket-io.ts')).startSocketIo(scenario, undefined, redisCluster())
    case 'mizzen-redis-cluster':
      return (await import('./servers/mizzen.ts')).startMizzen(scenario, {
        redisCluster: redisCluster(),
      })
  }
}

/** The seed nodes of the cluster runs' Redis Cluster (BENCH_REDIS_CLUSTER, comma-separated `host:port`). */
function redisCluster(): string[] {
  const seeds = process.env.BENCH_REDIS_CLUSTER?.split(',').filter(Boolean)
  if (!seeds?.length) throw new Error(`${kind} needs BENCH_REDIS_CLUSTER`)
  return seeds
}

function redisUrl(): string {
  const url = process.env.BENCH_REDIS_URL
  if (!url) throw new Error(`${kind} needs BENCH_REDIS_URL`)
  return url
}

/**
 * Heap allocated so far: what is in use now plus what every garbage collection freed (a
 * GCProfiler records each collection's heap before and after), and the time collections took.
 */
const gcProfiler = new GCProfiler()
let freed = 0
let gcMicros = 0
gcProfiler.start()
function heapCounters(): { allocated: number; gcMicros: number } {
  for (const gc of gcProfiler.stop()?.statistics ?? []) {
    freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize
    gcMicros += gc.cost
  }
  gcProfiler.start()
  return { allocated: getHeapStatistics().used_heap_size + freed, gcMicros }
}

const server = await start()
let next = 1
let credit = 0
let publishing: 'idle' | 'rate' | 'credit' = 'idle'
let running = false

/**
 * RSS and heap once garbage is collected and memory has settled: full GCs with pauses between
 * (V8 gives pages back to the system on timers) until RSS stops falling, for at most 5 s.
 */
async function settledMemory() {
  let previous = Number.POSITIVE_INFINITY
  const deadline = Date.now() + 5000
  for (;;) {
    for (let i = 0; i < 3; i++) global.gc?.()
    await new Promise((resolve) => setTimeout(resolve, 200))
    const { rss } = process.memoryUsage()
    if (rss > previous * 0.995 || Date.now() > deadline) break
    previous = rss
  }
  const { rss, heapUsed } = process.memoryUsage()
  return { rss, heapUsed, heapLimit: getHeapStatistics().heap_size_limit }
}

/**
 * BENCH_HEAP_SNAPSHOT (a directory): a heap snapshot after each memory reading (before the
 * clients connect, then with them idle), written once the reading is sent, so that it does not
 * disturb it; compare the two by constructor to see what a connection holds.
 */
let snapshots = 0
function snapshotHeap(): void {
  const dir = process.env.BENCH_HEAP_SNAPSHOT
  if (dir) writeHeapSnapshot(join(dir, `${kind}-${scenario}-${process.pid}-${++snapshots}.heapsnapshot`))
}

/** Publishes the next message, stamped with `t` (µs, `nowMicros`'s clock): by default now. */
async function publishOne(t = nowMicros()): Promise<void> {
  await server.publish({ seq: next, t })
  next++
}

/** Publishes while credit lasts, yielding to I/O between messages. */
async function runCredit(): Promise<void> {
  if (running) return
  running = true
  try {
    while (publishing === 'credit' && next <= credit) {
      await publishOne()
      await nextTurn()
    }
  } finally {
    running = false
  }
}

/**
 * Publishes `count` messages evenly spaced at `perSecond`, from the current sequence number, each
 * stamped with the time it was due rather than the time it went out: when the server's event loop
 * is busy (a keep-alive round, a collection), the messages due meanwhile go out late, and that
 * wait is part of their latency (measured from the send time, it would vanish: coordinated
 * omission).
 */
async function runRate(count: number, perSecond: number): Promise<void> {
  const start = nowMicros()
  for (let i = 0; i < count && publishing === 'rate'; i++) {
    const due = start + Math.round((i * 1e6) / perSecond)
    const waitMs = (due - nowMicros()) / 1000
    if (waitMs > 1) await new Promise((resolve) => setTimeout(resolve, waitMs))
    // Up to a millisecond early goes out stamped now: latency is never measured from the future.
    await publishOne(Math.min(due, nowMicros()))
  }
  publishing = 'idle'
  send({ type: 'published', last: next - 1 })
}

process.on('message', (request: ServerRequest) => {
  switch (request.type) {
    case 'count':
      return send({ type: 'count', subscribers: server.subscribers() })
    case 'memory':
      return void settledMemory().then((memory) => {
        send({ type: 'memory', ...memory })
        snapshotHeap()
      })
    case 'cpu': {
      const { user, system } = process.cpuUsage()
      return send({ type: 'cpu', user, system, ...heapCounters() })
    }
    case 'rate':
      next = request.from
      publishing = 'rate'
      void runRate(request.count, request.perSecond).catch((error: Error) =>
        send({ type: 'error', message: error.stack ?? String(error) }),
      )
      return
    case 'credit':
      if (publishing === 'idle') publishing = 'credit'
      credit = Math.max(credit, request.upTo)
      void runCredit().catch((error: Error) => send({ type: 'error', message: error.stack ?? String(error) }))
      return
    case 'stop-publishing':
      publishing = 'idle'
      // Reported once the message being published (if any) is out.
      void (async () => {
        while (running) await nextTurn()
        send({ type: 'published', last: next - 1 })
      })()
      return
  }
})
process.on('disconnect', () => process.exit(0))
send({ type: 'ready', port: server.port })
