// How the benchmark combines a run's passes (bench/passes.ts): the order alternates, each group
// of figures comes from one pass, and a loss in any pass is reported.
import { describe, expect, it } from 'vitest'
import type { RunResult } from '../bench/fanout.ts'
import { combinePasses, passOrder } from '../bench/passes.ts'

function pass(figures: Partial<RunResult>): RunResult {
  return {
    scenario: 'room',
    server: 'mizzen',
    subscribers: 100,
    connected: 100,
    handshakesPerSecond: 1000,
    connectCpuMicros: 300,
    deliveredPerSecond: 100_000,
    cpuMicrosPerMessage: 10,
    cpuBusy: 0.9,
    allocBytesPerMessage: 400,
    gcShare: 0.01,
    others: [],
    p50Micros: 5000,
    p99Micros: 20_000,
    fixedRate: 20_000,
    latencyMessages: 60,
    idleBytesPerConnection: 4000,
    idleHeapBytesPerConnection: 3800,
    kernelBytesPerConnection: 5000,
    heapLimit: 4e9,
    lost: 0,
    reordered: 0,
    ...figures,
  }
}

describe('bench passes', () => {
  it('alternates the order: forward, reverse, forward', () => {
    expect(passOrder(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c'])
    expect(passOrder(['a', 'b', 'c'], 1)).toEqual(['c', 'b', 'a'])
    expect(passOrder(['a', 'b', 'c'], 2)).toEqual(['a', 'b', 'c'])
  })

  it('takes each group of figures from the pass that is best at it, and adds up what was lost', () => {
    const slow = pass({
      deliveredPerSecond: 80_000,
      cpuMicrosPerMessage: 9,
      allocBytesPerMessage: 390,
      p99Micros: 15_000,
      p50Micros: 6000,
      lost: 2,
    })
    const fast = pass({
      deliveredPerSecond: 120_000,
      cpuMicrosPerMessage: 11,
      allocBytesPerMessage: 410,
      p99Micros: 25_000,
      reordered: 1,
    })
    const combined = combinePasses([slow, fast])
    expect(combined.deliveredPerSecond).toBe(120_000)
    // CPU and the allocation of that round come from the same pass.
    expect([combined.cpuMicrosPerMessage, combined.allocBytesPerMessage]).toEqual([9, 390])
    expect([combined.p50Micros, combined.p99Micros]).toEqual([6000, 15_000])
    expect([combined.lost, combined.reordered]).toEqual([2, 1])
    expect(combined.passes).toHaveLength(2)
  })

  it('skips a failed pass, and still reports its error', () => {
    const failed = pass({
      deliveredPerSecond: Number.NaN,
      cpuMicrosPerMessage: Number.NaN,
      p99Micros: Number.NaN,
      error: 'stalled',
    })
    const combined = combinePasses([failed, pass({ cpuMicrosPerMessage: 12 })])
    expect(combined.cpuMicrosPerMessage).toBe(12)
    expect(combined.deliveredPerSecond).toBe(100_000)
    expect(combined.error).toBe('stalled')
  })
})
