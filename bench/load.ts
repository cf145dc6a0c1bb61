/**
 * A load generator of the benchmark, in a process of its own (pinned by the orchestrator): it
 * opens its share of the subscribers as real clients of the server under test, and counts what
 * each receives: latency from the stamp each message carries, messages lost (by sequence
 * number) and received out of order. It reports progress over IPC, which paces the publisher.
 *
 * Clients: raw `ws` for the bare ws servers; socket.io-client (WebSocket transport) for Socket.IO;
 * for GraphQL servers, graphql-transport-ws spoken over `ws` by hand (`raw`, the default: the
 * lightest client, so that the server is what saturates) or the graphql-ws client package.
 */
import { createClient } from 'graphql-ws'
import { io as socketIo } from 'socket.io-client'
import WebSocket from 'ws'
import {
  benchUsers,
  Histogram,
  nowMicros,
  subscriptionQuery,
  type LoadPlan,
  type LoadReply,
  type LoadRequest,
  type Scenario,
  type Stamp,
} from './common.ts'

const send = (reply: LoadReply) => process.send!(reply)

/** The stamp inside what a subscriber receives (the `data` of a result, or a Socket.IO message). */
function stampOf(scenario: Scenario, data: any): Stamp | undefined {
  switch (scenario) {
    case 'room':
      return data?.room?.data
    case 'userEvents':
      return data?.userEvents?.data
    case 'postEvents': {
      const [seq, t] = String(data?.postEvents?.node?.title ?? '')
        .split(':')
        .map(Number)
      return seq ? { seq, t: t! } : undefined
    }
  }
}

let lastSeq = new Int32Array(0)
let received = 0
let reordered = 0
let phase = { from: 0, to: -1 }
let histogram = new Histogram()
const closers: (() => void)[] = []

function record(connection: number, stamp: Stamp | undefined): void {
  if (!stamp) return
  const now = nowMicros()
  received++
  if (stamp.seq < lastSeq[connection]!) reordered++
  else lastSeq[connection] = stamp.seq
  if (stamp.seq >= phase.from && stamp.seq <= phase.to) histogram.record(now - stamp.t)
}

const minSeq = () => {
  let min = Number.MAX_SAFE_INTEGER
  for (const seq of lastSeq) if (seq < min) min = seq
  return lastSeq.length ? min : 0
}

/** Opens one subscriber; resolves once it is subscribed (as far as the client can tell). */
function open(plan: LoadPlan, index: number): Promise<void> {
  const connection = index - plan.offset
  const user = benchUsers[index % benchUsers.length]!
  const timeout = <T>(promise: Promise<T>) =>
    Promise.race([
      promise,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('connection timed out')), 30_000)),
    ])

  if (['raw-ws', 'ws-preframed', 'ws-redis', 'ws-redis-cluster'].includes(plan.server)) {
    const socket = new WebSocket(plan.url.replace(/^http/, 'ws'))
    closers.push(() => socket.terminate())
    socket.on('message', (raw) => record(connection, stampOf(plan.scenario, JSON.parse(String(raw)).payload?.data)))
    return timeout(
      new Promise((resolve, reject) => (socket.once('open', () => resolve()), socket.once('error', reject))),
    )
  }
  if (plan.server.startsWith('socket.io')) {
    const socket = socketIo(plan.url.replace('/graphql', ''), {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
    })
    closers.push(() => socket.disconnect())
    socket.on('m', (message: { data: Stamp }) => record(connection, message.data))
    return timeout(
      new Promise((resolve, reject) => (socket.once('connect', () => resolve()), socket.once('connect_error', reject))),
    )
  }
  const connectionParams =
    plan.scenario !== 'postEvents'
      ? {}
      : plan.server.startsWith('mizzen')
        ? { authorization: `Bearer ${plan.tokens![user]}` }
        : { userId: user }
  const query = subscriptionQuery[plan.scenario]
  const url = plan.url.replace(/^http/, 'ws')
  if (plan.client === 'graphql-ws') {
    const client = createClient({
      url,
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: 0,
      connectionParams,
      onNonLazyError: () => {},
    })
    closers.push(() => void client.dispose())
    client.subscribe(
      { query },
      {
        next: (result) => record(connection, stampOf(plan.scenario, result.data)),
        error: () => {},
        complete: () => {},
      },
    )
    return timeout(new Promise((resolve) => client.on('connected', () => resolve())))
  }
  const socket = new WebSocket(url, 'graphql-transport-ws')
  closers.push(() => socket.terminate())
  return timeout(
    new Promise((resolve, reject) => {
      socket.once('error', reject)
      socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: connectionParams })))
      socket.on('message', (raw) => {
        const text = String(raw)
        // The hot path: results only, parsed once.
        if (text.includes('"type":"next"'))
          return record(connection, stampOf(plan.scenario, JSON.parse(text).payload?.data))
        const message = JSON.parse(text)
        if (message.type === 'connection_ack') {
          socket.send(JSON.stringify({ type: 'subscribe', id: '1', payload: { query } }))
          resolve()
        } else if (message.type === 'ping') {
          socket.send(JSON.stringify({ type: 'pong' }))
        } else if (message.type === 'error' || message.type === 'complete') {
          console.error(`load: subscriber ${index} got ${text}`)
        }
      })
    }),
  )
}

async function connect(plan: LoadPlan): Promise<void> {
  lastSeq = new Int32Array(plan.connections)
  let failed = 0
  // In batches, as many clients would arrive: a burst of thousands of handshakes helps nobody.
  for (let i = 0; i < plan.connections; i += 50) {
    const batch = []
    for (let j = i; j < Math.min(i + 50, plan.connections); j++)
      batch.push(open(plan, plan.offset + j).catch(() => void failed++))
    await Promise.all(batch)
  }
  send({ type: 'connected', connections: plan.connections - failed, failed })
}

const progress = setInterval(() => send({ type: 'progress', minSeq: minSeq(), received }), 20)

process.on('message', (request: LoadRequest) => {
  switch (request.type) {
    case 'connect':
      return void connect(request.plan).catch((error: Error) =>
        send({ type: 'error', message: error.stack ?? String(error) }),
      )
    case 'phase':
      phase = { from: request.from, to: request.to }
      histogram = new Histogram()
      return
    case 'report':
      return send({ type: 'report', received, reordered, histogram: histogram.counts, minSeq: minSeq() })
    case 'close':
      clearInterval(progress)
      for (const close of closers) close()
      setTimeout(() => process.exit(0), 200)
      return
  }
})
process.on('disconnect', () => process.exit(0))
