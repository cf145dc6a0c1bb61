/** The benchmark's tables: one per suite, Markdown, with ratios against the baselines of the same run. */
import type { CaptureResult } from './capture.ts'
import { onRedisCluster, serverNames, type ServerKind } from './common.ts'
import type { RunResult } from './fanout.ts'

export const fmt = (value: number, digits = 0) =>
  Number.isFinite(value)
    ? value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a'

export const ms = (micros: number) =>
  Number.isFinite(micros) ? `${fmt(micros / 1000, micros < 10_000 ? 2 : 1)} ms` : 'n/a'

const kb = (bytes: number) => fmt(bytes / 1024, 1)
const percent = (share: number) => (Number.isFinite(share) ? `${fmt(share * 100)}%` : 'n/a')
const ratio = (a: number, b: number | undefined) => (b && Number.isFinite(a) && Number.isFinite(b) ? fmt(a / b, 2) : '')

function markdown(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

const lostCell = (r: RunResult) =>
  r.connected < r.subscribers ? `${fmt(r.lost)} (${r.subscribers - r.connected} never connected)` : fmt(r.lost)

const delivered = (r: RunResult) => (r.error ? `FAILED: ${r.error}` : fmt(r.deliveredPerSecond))

/** The one-gateway fan-out: every server beside raw ws, Socket.IO and plain Yoga in the same scenario. */
export function fanoutTable(results: RunResult[]): string {
  const header = [
    'scenario',
    'server',
    'delivered msg/s',
    'x raw ws',
    'x Socket.IO',
    'x Yoga',
    'p50',
    'p99',
    'p99 x raw',
    'CPU µs/msg',
    'x raw',
    'CPU busy',
    'heap B/msg',
    'GC',
    'KB/idle conn (RSS)',
    'heap KB',
    'heap x raw',
    'lost',
    'reordered',
  ]
  const rows = results.map((r) => {
    const of = (server: ServerKind) => results.find((o) => o.scenario === r.scenario && o.server === server)
    const [raw, io, yoga] = [of('raw-ws'), of('socket.io'), of('yoga')]
    return [
      r.scenario,
      serverNames[r.server],
      delivered(r),
      ratio(r.deliveredPerSecond, raw?.deliveredPerSecond),
      ratio(r.deliveredPerSecond, io?.deliveredPerSecond),
      ratio(r.deliveredPerSecond, yoga?.deliveredPerSecond),
      ms(r.p50Micros),
      ms(r.p99Micros),
      ratio(r.p99Micros, raw?.p99Micros),
      fmt(r.cpuMicrosPerMessage, 1),
      ratio(r.cpuMicrosPerMessage, raw?.cpuMicrosPerMessage),
      percent(r.cpuBusy),
      fmt(r.allocBytesPerMessage),
      percent(r.gcShare),
      kb(r.idleBytesPerConnection),
      kb(r.idleHeapBytesPerConnection),
      ratio(r.idleHeapBytesPerConnection, raw?.idleHeapBytesPerConnection),
      lostCell(r),
      fmt(r.reordered),
    ]
  })
  return markdown(header, rows)
}

const other = (r: RunResult, name: string) => r.others.find((o) => o.name === name)

/** Two gateways on one Redis: subscribers on one, publishes through the other. */
export function clusterTable(results: RunResult[]): string {
  const header = [
    'server',
    'delivered msg/s',
    'x Socket.IO',
    'p50',
    'p99',
    'p99 x Socket.IO',
    "subscribers' gateway CPU µs/msg",
    'busy',
    'heap B/msg',
    'publishing gateway CPU µs/event',
    'Redis CPU µs/event',
    'lost',
    'reordered',
  ]
  // Each row beside Socket.IO on the same Redis: one Redis, or a Redis Cluster.
  const socketIo = (r: RunResult) =>
    results.find((o) => o.server === (onRedisCluster(r.server) ? 'socket.io-redis-cluster' : 'socket.io-redis'))
  const rows = results.map((r) => [
    serverNames[r.server],
    delivered(r),
    ratio(r.deliveredPerSecond, socketIo(r)?.deliveredPerSecond),
    ms(r.p50Micros),
    ms(r.p99Micros),
    ratio(r.p99Micros, socketIo(r)?.p99Micros),
    fmt(r.cpuMicrosPerMessage, 1),
    percent(r.cpuBusy),
    fmt(r.allocBytesPerMessage),
    fmt(other(r, 'publishing gateway')?.microsPerEvent ?? Number.NaN),
    fmt(other(r, 'Redis')?.microsPerEvent ?? Number.NaN),
    lostCell(r),
    fmt(r.reordered),
  ])
  return markdown(header, rows)
}

const GiB = 2 ** 30

/**
 * What one gateway process holds on `memoryGiB`: memory divided by what a connection costs (the
 * process's growth, RSS or heap whichever is larger: the heap may grow into pages the process
 * already had; and the kernel's socket memory), and the V8 heap limit divided by heap per
 * connection. Arithmetic from measured figures, not a measurement.
 */
export function capacity(r: RunResult, memoryGiB: number) {
  const perConnection =
    Math.max(r.idleBytesPerConnection, r.idleHeapBytesPerConnection) + Math.max(0, r.kernelBytesPerConnection)
  return {
    byMemory: (memoryGiB * GiB) / perConnection,
    byHeapLimit: r.heapLimit / r.idleHeapBytesPerConnection,
  }
}

/** Many connections on one gateway: connecting, memory, one fan-out to all. */
export function scaleTable(results: RunResult[], memoryGiB: number): string {
  const header = [
    'server',
    'connected',
    'handshakes/s',
    'server CPU µs/handshake',
    'KB/conn (RSS)',
    'heap KB/conn',
    'kernel KB/conn',
    'one fan-out to all',
    'delivered msg/s',
    'CPU µs/msg',
    'busy',
    'p50',
    'p99',
    `conns in ${memoryGiB} GiB (arithmetic)`,
    'conns in heap limit (arithmetic)',
    'lost',
  ]
  const rows = results.map((r) => {
    const { byMemory, byHeapLimit } = capacity(r, memoryGiB)
    return [
      serverNames[r.server],
      fmt(r.connected),
      fmt(r.handshakesPerSecond),
      fmt(r.connectCpuMicros),
      kb(r.idleBytesPerConnection),
      kb(r.idleHeapBytesPerConnection),
      kb(r.kernelBytesPerConnection),
      ms((r.connected / r.deliveredPerSecond) * 1e6),
      delivered(r),
      fmt(r.cpuMicrosPerMessage, 1),
      percent(r.cpuBusy),
      ms(r.p50Micros),
      ms(r.p99Micros),
      fmt(byMemory),
      `${fmt(byHeapLimit)} (limit ${fmt(r.heapLimit / GiB, 1)} GiB)`,
      lostCell(r),
    ]
  })
  return markdown(header, rows)
}

/** Change capture beside the realtime extension, phase by phase (bench/capture.ts). */
export function captureTable(results: CaptureResult[]): string {
  const header = [
    'path',
    'transactions',
    'offered rows/s',
    'committed rows/s',
    'delivered rows/s',
    'x extension',
    'p50',
    'p99',
    'p99 x extension',
    'max',
    'gateway CPU µs/row',
    'rows/s per gateway CPU (arithmetic)',
    'gateway busy',
    'gateway waited for CPU',
    'PostgreSQL busy (walsender)',
    'writer + subscribers busy',
    'lost',
  ]
  const names = { database: 'capture (the log)', extension: 'extension' }
  const rows = results.map((r) => {
    const base = results.find((o) => o.path === 'extension' && o.phase === r.phase && o.offered === r.offered)
    return [
      names[r.path],
      r.error ? `FAILED: ${r.error}` : r.phase,
      r.offered ? fmt(r.offered) : 'max',
      fmt(r.committedPerSecond),
      fmt(r.deliveredPerSecond),
      r.path === 'extension' ? '' : ratio(r.deliveredPerSecond, base?.deliveredPerSecond),
      ms(r.p50Micros),
      ms(r.p99Micros),
      r.path === 'extension' ? '' : ratio(r.p99Micros, base?.p99Micros),
      ms(r.maxMicros),
      fmt(r.gatewayCpuMicrosPerRow),
      fmt(1e6 / r.gatewayCpuMicrosPerRow),
      percent(r.busy.gateway),
      percent(r.busy.gatewayWaited),
      r.path === 'database' ? `${percent(r.busy.postgres)} (${percent(r.busy.walsender)})` : percent(r.busy.postgres),
      percent(r.busy.clients),
      fmt(r.lost),
    ]
  })
  return markdown(header, rows)
}
