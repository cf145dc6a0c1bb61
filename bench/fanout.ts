/**
 * One measured fan-out: N subscribers on a deployment (one server process, or two gateways on a
 * Redis), then, in order:
 *   1. connecting: the subscribers connect and subscribe from load-generator processes pinned to
 *      CPU 1, in batches of 50 per generator (as clients arrive, not in one burst): handshakes per
 *      second (wall clock, from the moment the started generators are told to connect until the
 *      server counts every subscription) and the server's CPU time per connection;
 *   then a warm-up: 20 messages as fast as delivery allows (JIT, buffers), not measured;
 *   2. idle memory: the server's RSS and heap after a full GC, less before any connection, per
 *      connection (and the kernel's socket memory: slab caches from /proc/meminfo, TCP buffers
 *      from /proc/net/sockstat);
 *   3. fixed rate: messages published at `fixedRate` deliveries per second in all: first a lead-in
 *      of one second that is not measured (the change from the warm-up's burst: the first fan-out
 *      after it was the slowest of the phase for every server), then for `seconds`, and at least
 *      `MIN_LATENCY_FANOUTS` messages (one slow fan-out of twelve would otherwise decide p99 on its
 *      own): latency percentiles (each message carries the time it was due, so that a
 *      publisher held up by its server's busy event loop counts the wait);
 *   4. as fast as delivery allows: the publisher stays at most a small window of messages ahead
 *      of the slowest subscriber, for `rounds` rounds of `seconds`: delivered messages per second,
 *      the server's CPU time per delivered message (`process.cpuUsage`), the heap it allocated
 *      per delivered message and its share of time in garbage collection, each from the best
 *      round (on a shared machine other processes slow some rounds down; none speeds one up);
 *      the other measured processes' CPU (the publishing gateway, Redis) from that round too;
 *   5. every message is accounted for: those that never arrive (waited for, with a deadline) are
 *      counted lost, those that arrive after a later one are counted reordered.
 * Every wait has a deadline, so a stuck run reports its error instead of hanging.
 */
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { SignJWT } from 'jose'
import {
  BENCH_JWT_SECRET,
  benchUsers,
  Histogram,
  type LoadPlan,
  type LoadReply,
  type LoadRequest,
  type Scenario,
  type ServerKind,
  type ServerReply,
  type ServerRequest,
} from './common.ts'
import { ask, reply, sleep, spawnNode, stop } from './processes.ts'

/** Cumulative CPU time of a process other than the server subscribers connect to, µs. */
export interface Meter {
  readonly name: string
  read(): Promise<number>
}

/** Where subscribers connect and messages are published. */
export interface Deployment {
  /** The server process subscribers connect to (counts, memory, CPU, heap). */
  readonly front: ChildProcess
  readonly port: number
  /** The process that publishes: the front itself on one gateway, another gateway in a cluster. */
  readonly publisher: ChildProcess
  /** Other processes whose CPU is measured (the publishing gateway, Redis). */
  readonly meters: readonly Meter[]
  stop(): Promise<void>
}

/**
 * Messages the latency phase measures at least: at 5,000 subscribers and 20,000 deliveries/s,
 * 3 s are twelve fan-outs, whose deliveries are 8% of the samples each, so that p99 was the
 * slowest fan-out's own median, whatever the others did.
 */
const MIN_LATENCY_FANOUTS = 40

/** Messages the latency phase measures, after its lead-in: `seconds` at `fixedRate` deliveries/s, and at least MIN_LATENCY_FANOUTS. */
export const latencyMessageCount = (fixedRate: number, subscribers: number, seconds: number) =>
  Math.max(MIN_LATENCY_FANOUTS, Math.round((fixedRate / subscribers) * seconds))

export interface FanoutSettings {
  subscribers: number
  seconds: number
  rounds: number
  /** Deliveries per second in all, for the latency phase. */
  fixedRate: number
  loadgens: number
  client: LoadPlan['client']
  /** File descriptors each load generator must hold (raised with prlimit when needed). */
  descriptors?: number
  /**
   * Clients that connect, subscribe and leave before the idle-memory baseline is read, so that
   * what the server compiles and caches once (JIT code, lazily built tables) is not counted per
   * connection. 0: none.
   */
  warmup: number
}

export interface RunResult {
  scenario: Scenario
  server: ServerKind
  subscribers: number
  connected: number
  /** Subscriptions made per second while connecting (wall clock, load generators included). */
  handshakesPerSecond: number
  /** The server's CPU time per connection made (handshake, connection_init, subscribe), µs. */
  connectCpuMicros: number
  /** Delivered messages per second, publishing as fast as delivery allows (best round). */
  deliveredPerSecond: number
  /** Server CPU time per delivered message in that phase, µs (best round). */
  cpuMicrosPerMessage: number
  /** Server CPU time / wall time in that phase (1 = one core busy). */
  cpuBusy: number
  /** JS heap the server allocated per delivered message, bytes (that round). */
  allocBytesPerMessage: number
  /** Share of the server's CPU time spent in garbage collection (that round). */
  gcShare: number
  /** The other measured processes in that round: CPU µs per delivered message, and per event (message published). */
  others: { name: string; microsPerMessage: number; microsPerEvent: number }[]
  /** Latency at the fixed rate, µs. */
  p50Micros: number
  p99Micros: number
  /** The fixed rate, deliveries per second in all (messages evenly spaced at it). */
  fixedRate: number
  /** Messages whose deliveries the latency figures are measured over (after the lead-in). */
  latencyMessages: number
  /** Server RSS growth per idle subscribed connection, bytes (and its heap growth). */
  idleBytesPerConnection: number
  idleHeapBytesPerConnection: number
  /**
   * Kernel memory per connection: slab and TCP buffers, both loopback ends halved; read
   * machine-wide, so approximate on a busy machine, bytes.
   */
  kernelBytesPerConnection: number
  /** V8's heap limit in the server process, bytes. */
  heapLimit: number
  lost: number
  reordered: number
  error?: string
}

/**
 * Kernel memory that sockets take, machine-wide: the slab caches (socket, inode, file and TCP
 * structures; /proc/meminfo `Slab`) and the pages of TCP buffers (/proc/net/sockstat `mem`).
 */
function kernelSocketBytes(): number {
  try {
    const slab = /^Slab:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))
    const tcp = /^TCP:.* mem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))
    return slab && tcp ? Number(slab[1]) * 1024 + Number(tcp[1]) * 4096 : Number.NaN
  } catch {
    return Number.NaN
  }
}

interface LoadState {
  minSeq: number
  received: number
}

async function tokens(): Promise<Record<string, string>> {
  const secret = new TextEncoder().encode(BENCH_JWT_SECRET)
  const signed = await Promise.all(
    benchUsers.map(async (user) => [
      user,
      await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setExpirationTime('2h').sign(secret),
    ]),
  )
  return Object.fromEntries(signed) as Record<string, string>
}

/**
 * `settings.warmup` clients connect and subscribe (from one load generator on the other CPU),
 * then leave; resolves once the server counts none of them. What the server keeps after that is
 * what it keeps whatever its number of connections (code compiled for the connection path,
 * grown tables), which the idle-memory baseline read next then holds.
 */
async function warmUp(
  front: ChildProcess,
  plan: Omit<LoadPlan, 'connections' | 'offset'>,
  settings: FanoutSettings,
): Promise<void> {
  const generator = spawnNode('load.ts', [], 1, { descriptors: settings.descriptors })
  try {
    generator.send({
      type: 'connect',
      plan: { ...plan, connections: settings.warmup, offset: 0 },
    } satisfies LoadRequest)
    await reply(generator, (m: LoadReply) => m.type === 'connected', 600_000, 'warm-up clients connecting')
    const deadline = Date.now() + 60_000
    while ((await ask(front, { type: 'count' }, 'count')).subscribers < settings.warmup) {
      if (Date.now() > deadline) throw new Error('warm-up subscriptions did not all start within 60 s')
      await sleep(20)
    }
    generator.send({ type: 'close' } satisfies LoadRequest)
    while ((await ask(front, { type: 'count' }, 'count')).subscribers > 0) {
      if (Date.now() > deadline + 60_000) throw new Error('warm-up clients did not all leave within 60 s')
      await sleep(20)
    }
  } finally {
    generator.kill()
  }
}

export async function measureFanout(
  scenario: Scenario,
  server: ServerKind,
  settings: FanoutSettings,
  deploy: () => Promise<Deployment>,
): Promise<RunResult> {
  const { subscribers, seconds, rounds, fixedRate, loadgens, client } = settings
  const result: RunResult = {
    scenario,
    server,
    subscribers,
    connected: 0,
    handshakesPerSecond: Number.NaN,
    connectCpuMicros: Number.NaN,
    deliveredPerSecond: Number.NaN,
    cpuMicrosPerMessage: Number.NaN,
    cpuBusy: Number.NaN,
    allocBytesPerMessage: Number.NaN,
    gcShare: Number.NaN,
    others: [],
    p50Micros: Number.NaN,
    p99Micros: Number.NaN,
    fixedRate: Number.NaN,
    latencyMessages: 0,
    idleBytesPerConnection: Number.NaN,
    idleHeapBytesPerConnection: Number.NaN,
    kernelBytesPerConnection: Number.NaN,
    heapLimit: Number.NaN,
    lost: 0,
    reordered: 0,
  }
  const generators: ChildProcess[] = []
  let deployment: Deployment | undefined
  try {
    deployment = await deploy()
    const { front, publisher, port } = deployment
    const signed = await tokens()
    if (settings.warmup > 0)
      await warmUp(
        front,
        { url: `http://127.0.0.1:${port}/graphql`, server, scenario, client, tokens: signed },
        settings,
      )
    const before = await ask(front, { type: 'memory' }, 'memory')
    const kernelBefore = kernelSocketBytes()
    result.heapLimit = before.heapLimit

    // Subscribers, from load generators on the other CPU, started (a `node` with tsx each) before
    // the clock starts: their first progress report says they run.
    const states: LoadState[] = []
    for (let i = 0; i < loadgens; i++) {
      const generator = spawnNode('load.ts', [], 1, { descriptors: settings.descriptors })
      generators.push(generator)
      const state: LoadState = { minSeq: 0, received: 0 }
      states.push(state)
      generator.on('message', (message: LoadReply) => {
        if (message.type === 'progress') Object.assign(state, { minSeq: message.minSeq, received: message.received })
      })
    }
    await Promise.all(
      generators.map((g) => reply(g, (m: LoadReply) => m.type === 'progress', 60_000, 'load generator starting')),
    )
    let offset = 0
    const connectCpuStart = await ask(front, { type: 'cpu' }, 'cpu')
    const connectStart = performance.now()
    for (const [i, generator] of generators.entries()) {
      const connections = Math.floor(subscribers / loadgens) + (i < subscribers % loadgens ? 1 : 0)
      const plan: LoadPlan = {
        url: `http://127.0.0.1:${port}/graphql`,
        server,
        scenario,
        connections,
        offset,
        client,
        tokens: signed,
      }
      generator.send({ type: 'connect', plan } satisfies LoadRequest)
      offset += connections
    }
    const connectedReplies = await Promise.all(
      generators.map((g) =>
        reply<Extract<LoadReply, { type: 'connected' }>>(
          g,
          (m) => m.type === 'connected',
          600_000,
          'subscribers connecting',
        ),
      ),
    )
    result.connected = connectedReplies.reduce((sum, r) => sum + r.connections, 0)
    const deadline = Date.now() + 60_000
    while ((await ask(front, { type: 'count' }, 'count')).subscribers < result.connected) {
      if (Date.now() > deadline) throw new Error('subscriptions did not all start within 60 s')
      await sleep(20)
    }
    const connectSeconds = (performance.now() - connectStart) / 1000
    const connectCpuEnd = await ask(front, { type: 'cpu' }, 'cpu')
    result.handshakesPerSecond = result.connected / connectSeconds
    result.connectCpuMicros =
      (connectCpuEnd.user + connectCpuEnd.system - connectCpuStart.user - connectCpuStart.system) / result.connected
    const idle = await ask(front, { type: 'memory' }, 'memory')
    result.idleBytesPerConnection = (idle.rss - before.rss) / result.connected
    result.idleHeapBytesPerConnection = (idle.heapUsed - before.heapUsed) / result.connected
    result.kernelBytesPerConnection = (kernelSocketBytes() - kernelBefore) / 2 / result.connected

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
    publisher.send({ type: 'credit', upTo: 20 } satisfies ServerRequest)
    await drain(20)
    seq = (await ask(publisher, { type: 'stop-publishing' }, 'published')).last
    expected += seq * result.connected

    // Fixed rate: latency, after a lead-in at the same rate that is not measured.
    const perSecond = fixedRate / result.connected
    const leadIn = Math.max(1, Math.round(perSecond))
    const count = latencyMessageCount(fixedRate, result.connected, seconds)
    toAll({ type: 'phase', from: seq + leadIn + 1, to: seq + leadIn + count })
    publisher.send({ type: 'rate', from: seq + 1, count: leadIn + count, perSecond } satisfies ServerRequest)
    const ratePublished = await reply<Extract<ServerReply, { type: 'published' }>>(
      publisher,
      (m) => m.type === 'published',
      ((leadIn + count) / perSecond) * 1000 + 60_000,
      'fixed rate',
    )
    await drain(ratePublished.last)
    const latency = new Histogram()
    for (const report of await reports()) latency.merge(report.histogram)
    result.p50Micros = latency.percentile(0.5)
    result.p99Micros = latency.percentile(0.99)
    result.fixedRate = perSecond * result.connected
    result.latencyMessages = count
    expected += (ratePublished.last - seq) * result.connected
    seq = ratePublished.last

    // As fast as delivery allows: throughput and CPU per message, the best of a few rounds.
    toAll({ type: 'phase', from: seq + 1, to: Number.MAX_SAFE_INTEGER })
    let lastCredit = seq
    let stalled = false
    const meters = deployment.meters
    for (let round = 0; round < rounds && !stalled; round++) {
      const cpuStart = await ask(front, { type: 'cpu' }, 'cpu')
      const othersStart = await Promise.all(meters.map((meter) => meter.read()))
      const receivedStart = received()
      const started = performance.now()
      let stalledSince = started
      let lastReceived = receivedStart
      while (performance.now() - started < seconds * 1000) {
        const credit = minSeq() + window
        if (credit > lastCredit) {
          publisher.send({ type: 'credit', upTo: credit } satisfies ServerRequest)
          lastCredit = credit
        }
        await sleep(10)
        if (received() !== lastReceived) [lastReceived, stalledSince] = [received(), performance.now()]
        else if (performance.now() - stalledSince > 10_000) {
          stalled = true
          break
        }
      }
      const cpuEnd = await ask(front, { type: 'cpu' }, 'cpu')
      const othersEnd = await Promise.all(meters.map((meter) => meter.read()))
      const elapsed = (performance.now() - started) / 1000
      const delivered = received() - receivedStart
      const cpuMicros = cpuEnd.user + cpuEnd.system - cpuStart.user - cpuStart.system
      if (!(delivered / elapsed <= result.deliveredPerSecond)) result.deliveredPerSecond = delivered / elapsed
      if (!(cpuMicros / delivered >= result.cpuMicrosPerMessage)) {
        result.cpuMicrosPerMessage = cpuMicros / delivered
        result.cpuBusy = cpuMicros / 1e6 / elapsed
        result.allocBytesPerMessage = (cpuEnd.allocated - cpuStart.allocated) / delivered
        result.gcShare = (cpuEnd.gcMicros - cpuStart.gcMicros) / cpuMicros
        const events = delivered / result.connected
        result.others = meters.map((meter, i) => ({
          name: meter.name,
          microsPerMessage: (othersEnd[i]! - othersStart[i]!) / delivered,
          microsPerEvent: (othersEnd[i]! - othersStart[i]!) / events,
        }))
      }
    }
    const last = (await ask(publisher, { type: 'stop-publishing' }, 'published')).last
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
    await Promise.all(generators.map((generator) => stop(generator)))
    await deployment?.stop()
  }
  return result
}
