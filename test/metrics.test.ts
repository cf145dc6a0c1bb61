/**
 * GET /metrics: Prometheus text with Node's defaults and mizzen's series (design §10), counting
 * what clients really see: connections, subscriptions by kind, events published, deliveries by
 * kind and their latency; and nothing at all with metrics off.
 */
import { describe, expect, it } from 'vitest'
import { executeWs, postGraphQL, subscribeWs } from './helpers/clients.ts'
import { useFixture } from './helpers/fixture.ts'
import { settled } from './helpers/gateway.ts'
import { metric, scrape } from './helpers/metrics.ts'
import { BROADCAST, MESSAGES, nextMessage, ROOM } from './helpers/rooms.ts'

describe('/metrics', () => {
  const env = useFixture({ backend: true })
  const url = () => env.gateway.url

  it('should serve every series of design §10, labelled by kind and reason, beside Node’s defaults', async () => {
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

describe('/metrics with metrics off', () => {
  const env = useFixture({ gateway: { metrics: false } })

  it('should not serve /metrics, and count nothing', async () => {
    const response = await fetch(new URL('/metrics', env.gateway.url))
    expect(response.status).toBe(404)
    expect(env.gateway.metrics.enabled).toBe(false)
    expect(await env.gateway.metrics.render()).toBe('')
  })
})
