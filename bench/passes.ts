/**
 * Passes: every fan-out run of a suite is measured BENCH_PASSES times (2 by default), in order and
 * then in reverse order (A B C, C B A, A B C, …), so that each server has an early and a late turn
 * and a machine that drifts (another tenant's load rising or falling over the minutes of a suite)
 * does not favour whichever server ran first. Measured on this host with one pass, the same code
 * moved by ±20% from run to run (docs/performance.md, How far the figures move).
 *
 * A server's reported figures are the best of its passes, as each pass already reports the best
 * of its rounds: other processes slow a pass down, none speeds one up. Each group of figures that
 * belongs together is taken from one pass (the CPU per message with the allocation and GC share
 * of that round). Messages lost or reordered are added up over the passes: a loss in any pass is
 * reported. Every pass's own result is kept in the JSON beside the combined one.
 */
import type { RunResult } from './fanout.ts'

/** The order of the runs in pass `pass` (0-based): forward on even passes, reversed on odd ones. */
export function passOrder<T>(runs: readonly T[], pass: number): T[] {
  return pass % 2 === 0 ? [...runs] : [...runs].reverse()
}

/** The pass with the lowest (or highest) finite value of `figure`; the first pass when none is finite. */
function bestBy(passes: readonly RunResult[], figure: (r: RunResult) => number, higherIsBetter = false): RunResult {
  let best: RunResult | undefined
  for (const pass of passes) {
    const value = figure(pass)
    if (!Number.isFinite(value)) continue
    if (!best || (higherIsBetter ? value > figure(best) : value < figure(best))) best = pass
  }
  return best ?? passes[0]!
}

/** One result from a run's passes (same scenario and server): see the module comment. */
export function combinePasses(passes: readonly RunResult[]): RunResult & { passes?: RunResult[] } {
  if (passes.length === 0) throw new Error('combinePasses: no passes')
  if (passes.length === 1) return passes[0]!
  const throughput = bestBy(passes, (r) => r.deliveredPerSecond, true)
  const cpu = bestBy(passes, (r) => r.cpuMicrosPerMessage)
  const latency = bestBy(passes, (r) => r.p99Micros)
  const connecting = bestBy(passes, (r) => r.connectCpuMicros)
  const memory = bestBy(passes, (r) => r.idleHeapBytesPerConnection)
  const failed = passes.find((r) => r.error)
  return {
    ...throughput,
    connected: Math.min(...passes.map((r) => r.connected)),
    handshakesPerSecond: connecting.handshakesPerSecond,
    connectCpuMicros: connecting.connectCpuMicros,
    cpuMicrosPerMessage: cpu.cpuMicrosPerMessage,
    cpuBusy: cpu.cpuBusy,
    allocBytesPerMessage: cpu.allocBytesPerMessage,
    gcShare: cpu.gcShare,
    others: cpu.others,
    p50Micros: latency.p50Micros,
    p99Micros: latency.p99Micros,
    fixedRate: latency.fixedRate,
    latencyMessages: latency.latencyMessages,
    idleBytesPerConnection: memory.idleBytesPerConnection,
    idleHeapBytesPerConnection: memory.idleHeapBytesPerConnection,
    kernelBytesPerConnection: memory.kernelBytesPerConnection,
    heapLimit: memory.heapLimit,
    lost: passes.reduce((sum, r) => sum + r.lost, 0),
    reordered: passes.reduce((sum, r) => sum + r.reordered, 0),
    error: failed?.error,
    passes: [...passes],
  }
}
