/**
 * The baselines on bare `ws`: no protocol, no subscriptions, no per-subscriber work, each message
 * serialised once (a graphql-transport-ws `next` frame, as a GraphQL subscriber would receive it).
 * - `startRawWs`: that one string sent to every socket (`ws.send`), the floor a hand-written
 *   fan-out on `ws` reaches;
 * - `startPreframedWs`: the WebSocket frame built once (header and payload in one buffer) and
 *   written to every TCP socket under `ws`, as a fan-out that owns its transport can;
 * - `startWsOnRedis`: raw ws on two processes, the publisher's string carried by a Redis channel
 *   (what a hand-written cluster does); `startWsOnRedisCluster`: the same on a Redis Cluster,
 *   over sharded pub/sub (`SPUBLISH`, `SSUBSCRIBE`: the channel lives on its slot's primary).
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { Socket } from 'node:net'
import { Cluster, Redis } from 'ioredis'
import { WebSocketServer, type WebSocket } from 'ws'
import type { Scenario, Stamp } from '../common.ts'
import { resultDataFor } from './payloads.ts'
import type { BenchServer } from './server.ts'

const frameOf = (scenario: Scenario, stamp: Stamp) =>
  JSON.stringify({ id: '1', type: 'next', payload: { data: resultDataFor(scenario, stamp) } })

async function listen() {
  const http = createServer()
  const wss = new WebSocketServer({ server: http })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  return { wss, port: (http.address() as { port: number }).port }
}

export async function startRawWs(scenario: Scenario): Promise<BenchServer> {
  const { wss, port } = await listen()
  return {
    port,
    subscribers: () => wss.clients.size,
    publish: (stamp) => {
      const frame = frameOf(scenario, stamp)
      for (const client of wss.clients) client.send(frame)
    },
  }
}

/** An unmasked final text frame of `payload` (RFC 6455 §5.2), in one buffer. */
function textFrame(payload: Buffer): Buffer {
  const length = payload.length
  const headerLength = length < 126 ? 2 : length < 0x10000 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = 0x81
  if (length < 126) frame[1] = length
  else if (length < 0x10000) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  payload.copy(frame, headerLength)
  return frame
}

export async function startPreframedWs(scenario: Scenario): Promise<BenchServer> {
  const { wss, port } = await listen()
  return {
    port,
    subscribers: () => wss.clients.size,
    publish: (stamp) => {
      const frame = textFrame(Buffer.from(frameOf(scenario, stamp)))
      for (const client of wss.clients) {
        const socket = (client as WebSocket & { _socket: Socket })._socket
        if (client.readyState === 1) socket.write(frame)
      }
    },
  }
}

export async function startWsOnRedis(scenario: Scenario, redisUrl: string): Promise<BenchServer> {
  const { wss, port } = await listen()
  const publisher = new Redis(redisUrl)
  const subscriber = new Redis(redisUrl)
  subscriber.on('message', (_channel: string, frame: string) => {
    for (const client of wss.clients) client.send(frame)
  })
  await subscriber.subscribe('bench')
  return {
    port,
    subscribers: () => wss.clients.size,
    publish: async (stamp) => void (await publisher.publish('bench', frameOf(scenario, stamp))),
  }
}

export async function startWsOnRedisCluster(scenario: Scenario, seeds: readonly string[]): Promise<BenchServer> {
  const { wss, port } = await listen()
  const nodes = seeds.map((seed) => {
    const [host, port] = seed.split(':')
    return { host: host!, port: Number(port) }
  })
  const publisher = new Cluster(nodes)
  const subscriber = new Cluster(nodes, { shardedSubscribers: true })
  subscriber.on('smessage', (_channel: string, frame: string) => {
    for (const client of wss.clients) client.send(frame)
  })
  await subscriber.ssubscribe('bench')
  return {
    port,
    subscribers: () => wss.clients.size,
    publish: async (stamp) => void (await publisher.spublish('bench', frameOf(scenario, stamp))),
  }
}
