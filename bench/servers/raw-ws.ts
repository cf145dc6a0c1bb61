/**
 * The baseline: a bare `ws` server that serialises each message once (a graphql-transport-ws
 * `next` frame, as a GraphQL subscriber would receive it) and sends that one string to every
 * socket. No protocol, no subscriptions, no per-subscriber work: the floor for fan-out on `ws`.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'
import type { Scenario } from '../common.ts'
import { resultDataFor } from './payloads.ts'
import type { BenchServer } from './server.ts'

export async function startRawWs(scenario: Scenario): Promise<BenchServer> {
  const http = createServer()
  const wss = new WebSocketServer({ server: http })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  return {
    port: (http.address() as { port: number }).port,
    subscribers: () => wss.clients.size,
    publish: (stamp) => {
      const frame = JSON.stringify({ id: '1', type: 'next', payload: { data: resultDataFor(scenario, stamp) } })
      for (const client of wss.clients) client.send(frame)
    },
  }
}
