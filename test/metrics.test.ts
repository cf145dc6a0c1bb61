/**
 * GET /metrics: Prometheus text with Node's defaults and mizzen's series (docs/operations.md, Metrics), counting
 * what clients really see: connections, subscriptions by kind, events published, deliveries by
 * kind and their latency; and nothing at all with metrics off.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Bus } from '../src/bus/bus.ts'
import { createMemoryBus } from '../src/bus/memory.ts'
import { createRedisBus } from '../src/bus/redis.ts'
import type { ModelEvent } from '../src/events.ts'
import { executeWs, postGraphQL, subscribeWs, type Subscription } from './helpers/clients.ts'
import { missing, useFixture } from './helpers/fixture.ts'
import { settled, type TestGateway } from './helpers/gateway.ts'
import { metric, scrape } from './helpers/metrics.ts'
import { startRedisServer, type RedisServer } from './helpers/redis-server.ts'
import { BROADCAST, MESSAGES, nextMessage, ROOM } from './helpers/rooms.ts'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts'

/** The bus series, as a gateway without faults serves them. */
const quietBus = {
  mizzen_bus_outbox_messages: 0,
  mizzen_bus_outbox_bytes: 0,
  mizzen_bus_gaps_total: 0,
  mizzen_bus_replayed_total: 0,
}
const busSeries = (samples: Map<string, number>) =>
  Object.fromEntries(Object.keys(quietBus).map((name) => [name, samples.get(name)]))

/** The error code a subscription ended with. */
async function endCode(subscription: Subscription<unknown>): Promise<unknown> {
  await subscription.completed
  return subscription.received.at(-1)?.errors?.[0]?.extensions?.code
}

describe('/metrics', () => {
  const env = useFixture({ backend: true })
  const url = () => env.gateway.url

  it('should serve every series of docs/operations.md, labelled by kind and reason, beside Node’s defaults', async () => {
    const samples = await scrape(url())
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
      'mizzen_connections',
      'mizzen_subscriptions{kind="model"}',
      'mizzen_subscriptions{kind="room"}',
      'mizzen_subscriptions{kind="messages"}',
      'mizzen_subscriptions{kind="live"}',
      'mizzen_events_published_total',
      'mizzen_deliveries_total{kind="model"}',
      'mizzen_deliveries_total{kind="room"}',
      'mizzen_deliveries_total{kind="messages"}',
      'mizzen_deliveries_total{kind="live"}',
      'mizzen_deliveries_dropped_total{reason="slow_consumer"}',
      'mizzen_deliveries_dropped_total{reason="outbox_overflow"}',
      'mizzen_deliveries_dropped_total{reason="publish_failed"}',
      'mizzen_bus_errors_total',
      'mizzen_delivery_latency_seconds_bucket{le="+Inf"}',
      'mizzen_delivery_latency_seconds_count',
      'mizzen_delivery_latency_seconds_sum',
      'mizzen_bus_outbox_messages',
      'mizzen_bus_outbox_bytes',
      'mizzen_bus_gaps_total',
      'mizzen_bus_replayed_total',
      'mizzen_resyncs_total{reason="malformed"}',
      'mizzen_resyncs_total{reason="other-history"}',
      'mizzen_resyncs_total{reason="other-epoch"}',
      'mizzen_resyncs_total{reason="trimmed"}',
    ]) {
      expect(samples.has(name), name).toBe(true)
    }
  })

  it('should answer HEAD with no body and refuse other methods', async () => {
    const head = await fetch(new URL('/metrics', url()), { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe('')
    const post = await fetch(new URL('/metrics', url()), { method: 'POST' })
    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toBe('GET, HEAD')
  })

  it('should count open connections and running subscriptions by kind, and let them go when they end', async () => {
    const before = await scrape(url())
    const [a, b] = [env.connect(), env.connect()]
    await Promise.all([a.ack, b.ack])
    const room = subscribeWs(a.client, ROOM, { name: 'gauges' })
    const messages = subscribeWs(a.client, MESSAGES)
    const events = subscribeWs(b.client, 'subscription { userEvents { verb } }')
    await settled(async () => {
      const now = await scrape(url())
      expect(now.get('mizzen_connections')).toBe(before.get('mizzen_connections')! + 2)
      for (const kind of ['model', 'room', 'messages'])
        expect(now.get(`mizzen_subscriptions{kind="${kind}"}`), kind).toBe(
          before.get(`mizzen_subscriptions{kind="${kind}"}`)! + 1,
        )
    })
    room.stop()
    messages.stop()
    events.stop()
    await Promise.all([a.client.dispose(), b.client.dispose()])
    await settled(async () => {
      const now = await scrape(url())
      for (const name of [
        'mizzen_connections',
        'mizzen_subscriptions{kind="model"}',
        'mizzen_subscriptions{kind="room"}',
        'mizzen_subscriptions{kind="messages"}',
      ]) {
        expect(now.get(name), name).toBe(before.get(name))
      }
    })
  })

  it('should count a broadcast once as published and once per recipient as delivered, and observe its latency', async () => {
    const clients = [env.connect(), env.connect(), env.connect()]
    await Promise.all(clients.map((c) => c.ack))
    const subscriptions = clients.map((c) => subscribeWs(c.client, ROOM, { name: 'counted' }))
    await settled(async () =>
      expect((await postGraphQL(url(), '{ roomMembers(room: "counted") }')).data?.roomMembers).toHaveLength(3),
    )
    const before = await scrape(url())
    const sent = await postGraphQL(url(), BROADCAST, { rooms: ['counted'], event: 'hello', data: 1 })
    expect(sent.data?.broadcast.recipients).toBe(3)
    for (const subscription of subscriptions) expect((await nextMessage(subscription)).event).toBe('hello')
    const after = await scrape(url())
    expect(after.get('mizzen_events_published_total')! - before.get('mizzen_events_published_total')!).toBe(1)
    expect(
      after.get('mizzen_deliveries_total{kind="room"}')! - before.get('mizzen_deliveries_total{kind="room"}')!,
    ).toBe(3)
    // One observation per message's fan-out on this gateway, not one per recipient.
    expect(
      after.get('mizzen_delivery_latency_seconds_count')! - before.get('mizzen_delivery_latency_seconds_count')!,
    ).toBe(1)
    expect(after.get('mizzen_delivery_latency_seconds_sum')!).toBeGreaterThanOrEqual(
      before.get('mizzen_delivery_latency_seconds_sum')!,
    )
  })

  it('should count model events: the gateway’s own writes as published, every subscriber’s result as delivered', async () => {
    const [a, b] = [env.connect(), env.connect()]
    await Promise.all([a.ack, b.ack])
    const first = subscribeWs(a.client, 'subscription { userEvents { verb node { name } } }')
    const second = subscribeWs(b.client, 'subscription { userEvents(verbs: [CREATED]) { node { name } } }')
    // A third that the filter keeps out: no result, so no delivery.
    const filtered = subscribeWs(b.client, 'subscription { userEvents(verbs: [DELETED]) { verb } }')
    await settled(async () => expect(await metric(url(), 'mizzen_subscriptions{kind="model"}')).toBe(3))
    const before = await scrape(url())
    const created = await executeWs(
      a.client,
      'mutation { createUser(data: { email: "counted@metrics.test", name: "Counted" }) { id } }',
    )
    expect(created.errors).toBeUndefined()
    await first.next()
    await second.next()
    // A backend service's write reaches the same subscribers; it is that service's publish, not the gateway's.
    await env.backend.prisma.user.create({ data: { email: 'backend@metrics.test', name: 'From backend' } })
    await first.next()
    await second.next()
    const after = await scrape(url())
    expect(after.get('mizzen_events_published_total')! - before.get('mizzen_events_published_total')!).toBe(1)
    expect(
      after.get('mizzen_deliveries_total{kind="model"}')! - before.get('mizzen_deliveries_total{kind="model"}')!,
    ).toBe(4)
    expect(
      after.get('mizzen_delivery_latency_seconds_count')! - before.get('mizzen_delivery_latency_seconds_count')!,
    ).toBe(2)
    expect(filtered.received).toEqual([])
  })
})

describe('/metrics of the bus: the memory bus', () => {
  const env = useFixture({ gateways: 0 })
  let gateway: TestGateway

  beforeAll(async () => {
    // A history of two messages, to trim past a cursor quickly.
    gateway = await env.startGateway({ bus: createMemoryBus({ history: { maxEvents: 2 } }) })
  })

  it('should serve the bus series at 0, having no outbox and no log to lose', async () => {
    expect(busSeries(await scrape(gateway.url))).toEqual(quietBus)
  })

  it('should count the cursors it refuses with RESYNC_REQUIRED, by reason', async () => {
    const { client } = env.connect(undefined, gateway)
    const room = `resync-${randomUUID()}`
    const listening = subscribeWs<{ room: { cursor: string } }>(client, ROOM_WITH_CURSOR, { name: room })
    await settled(() => expect(gateway.hub.subscriberCount).toBe(1))
    const broadcast = () => postGraphQL(gateway.url, BROADCAST, { rooms: [room], event: 'e', data: null })
    await broadcast()
    const cursor = (await listening.next()).data!.room.cursor
    listening.stop()
    const before = await scrape(gateway.url)
    const refused = async (query: string, variables: Record<string, unknown>) =>
      expect(await endCode(subscribeWs(client, query, variables)), JSON.stringify(variables)).toBe('RESYNC_REQUIRED')
    await refused(ROOM_WITH_CURSOR, { name: room, after: 'not-a-cursor' })
    await refused(ROOM_WITH_CURSOR, { name: `${room}-other`, after: cursor })
    await refused(ROOM_WITH_CURSOR, { name: `${room}-other-too`, after: cursor })
    for (let i = 0; i < 3; i++) await broadcast()
    await refused(ROOM_WITH_CURSOR, { name: room, after: cursor })
    const after = await scrape(gateway.url)
    const added = (reason: string) =>
      after.get(`mizzen_resyncs_total{reason="${reason}"}`)! - before.get(`mizzen_resyncs_total{reason="${reason}"}`)!
    expect({
      malformed: added('malformed'),
      'other-history': added('other-history'),
      'other-epoch': added('other-epoch'),
      trimmed: added('trimmed'),
    }).toEqual({ malformed: 1, 'other-history': 2, 'other-epoch': 0, trimmed: 1 })
  })
})

const ROOM_WITH_CURSOR = /* GraphQL */ `
  subscription Room($name: String!, $after: String) {
    room(name: $name, after: $after) { cursor event }
  }
`

describe.skipIf(missing('redis-server'))('/metrics of the bus: the Redis bus', () => {
  const env = useFixture({ gateways: 0 })
  let redis: RedisServer
  let proxy: TcpProxy
  let other: Bus
  let gateway: TestGateway
  const prefix = `metrics-${randomUUID()}:`
  // Short logs, to lose a break's messages quickly; fast to notice a dead link and to come back.
  const busOptions = {
    prefix,
    history: { maxEvents: 10 },
    logMaxEvents: 10,
    redisTimeoutMs: 500,
    heartbeatMs: 100,
    handoffTimeoutMs: 200,
  }

  beforeAll(async () => {
    redis = await startRedisServer()
    proxy = await startTcpProxy({ port: redis.port })
    // The gateway reaches Redis through the proxy, to be cut off; another process does not.
    gateway = await env.startGateway({ bus: await createRedisBus({ url: proxy.url('redis'), ...busOptions }) })
    other = await createRedisBus({ url: redis.url, ...busOptions })
  })
  afterAll(async () => {
    await other?.close()
    await proxy?.close()
    await redis?.stop()
  })

  it('should serve its outbox depth, its gaps and its replays as the bus counts them', async () => {
    expect(busSeries(await scrape(gateway.url))).toEqual(quietBus)
    // Cut off: a broadcast waits in the outbox.
    proxy.cut()
    const sent = await postGraphQL(gateway.url, BROADCAST, { rooms: ['nobody'], event: 'queued', data: 'x' })
    expect(sent.errors).toBeUndefined()
    const queued = await scrape(gateway.url)
    expect(queued.get('mizzen_bus_outbox_messages')).toBe(1)
    expect(queued.get('mizzen_bus_outbox_bytes')).toBeGreaterThan(0)
    proxy.restore()
    await settled(async () => expect(busSeries(await scrape(gateway.url))).toEqual(quietBus))
    // Redis comes back empty: the gateway sends again what it handed over in the replay window, the broadcast.
    await redis.restart({ data: 'empty' })
    await settled(async () =>
      expect(busSeries(await scrape(gateway.url))).toEqual({ ...quietBus, mizzen_bus_replayed_total: 1 }),
    )
    // Cut off again while another process publishes more than the log keeps: the gateway cannot catch up.
    proxy.cut()
    const event = (id: number): ModelEvent => ({
      model: 'User',
      verb: 'CREATED',
      recordId: String(id),
      node: { id },
      at: new Date().toISOString(),
    })
    await Promise.all(Array.from({ length: 300 }, (_, id) => other.publish('model:User', event(id))))
    proxy.restore()
    await settled(async () =>
      expect(busSeries(await scrape(gateway.url))).toEqual({
        ...quietBus,
        mizzen_bus_replayed_total: 1,
        mizzen_bus_gaps_total: 1,
      }),
    )
  })
})

describe('/metrics with metrics off', () => {
  const env = useFixture({ gateway: { metrics: false } })

  it('should not serve /metrics, and count nothing', async () => {
    const response = await fetch(new URL('/metrics', env.gateway.url))
    expect(response.status).toBe(404)
    expect(env.gateway.metrics.enabled).toBe(false)
    expect(await env.gateway.metrics.render()).toBe('')
  })
})
