/**
 * Resuming across a cluster, and a gateway cut off from Redis: two gateway processes' worth of
 * gateways on a redis-server of this file's own (the second one behind a TCP proxy, to cut it
 * off) and one PostgreSQL database.
 */
import { randomUUID } from 'node:crypto'
import type { Client } from 'graphql-ws'
import { beforeAll, describe, expect, it } from 'vitest'
import { createRedisBus, type RedisBus } from '../src/bus/redis.ts'
import { postGraphQL, subscribeWs, type Subscription } from './helpers/clients.ts'
import { missing, useFixture } from './helpers/fixture.ts'
import { settled, type TestGateway } from './helpers/gateway.ts'
import { startRedisServer, type RedisServer } from './helpers/redis-server.ts'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts'

const USER_EVENTS = 'subscription($after: String) { userEvents(after: $after) { cursor verb recordId node { name } } }'
const ROOM = 'subscription($name: String!, $after: String) { room(name: $name, after: $after) { cursor event data } }'

type UserEvent = { cursor: string; verb: string; recordId: string; node: { name: string } | null }
type RoomMessage = { cursor: string; event: string; data: unknown }

function dataOf<T>(subscription: Subscription<Record<string, T>>): T[] {
  return subscription.received.map((result) => {
    expect(result.errors).toBeUndefined()
    return Object.values(result.data!)[0]!
  })
}
const receivedAll = (subscription: Subscription<unknown>, count: number) =>
  settled(() => expect(subscription.received.length).toBe(count))

describe.skipIf(missing('postgresql', 'redis-server'))(
  'resuming across gateways, and a gateway cut off from Redis',
  () => {
    // The gateways' buses are on this file's own redis-server; membership stays in each gateway.
    const env = useFixture({ database: 'postgresql', gateways: 0 })
    let redis: RedisServer
    let proxy: TcpProxy
    let a: TestGateway
    let b: TestGateway
    let busA: RedisBus
    let busB: RedisBus
    let names = 0

    beforeAll(async () => {
      redis = await startRedisServer()
      env.defer(() => redis.stop())
      proxy = await startTcpProxy({ port: redis.port })
      // Deferred before the gateways start: closed after them.
      env.defer(() => proxy.close())
      const prefix = `cluster-${randomUUID()}:`
      // Find out fast that the link is dead, and come back fast once it heals.
      const busOptions = {
        prefix,
        redisTimeoutMs: 500,
        heartbeatMs: 100,
        handoffTimeoutMs: 200,
        redis: { retryStrategy: () => 50, connectTimeout: 500 },
      }
      busA = await createRedisBus({ url: redis.url, ...busOptions })
      busB = await createRedisBus({ url: proxy.url('redis'), ...busOptions })
      a = await env.startGateway({ bus: busA })
      b = await env.startGateway({ bus: busB })
      // A redis-server, a proxy and two gateways: more than the default 10 s on a loaded machine.
    }, 60_000)
    const connect = (gateway: TestGateway): Client => env.connect(undefined, gateway).client
    async function subscribe<T>(
      gateway: TestGateway,
      client: Client,
      query: string,
      variables?: Record<string, unknown>,
    ) {
      const before = gateway.hub.subscriberCount
      const subscription = subscribeWs<Record<string, T>>(client, query, variables)
      await settled(() => expect(gateway.hub.subscriberCount).toBeGreaterThan(before))
      return subscription
    }
    async function call(gateway: TestGateway, query: string, variables?: Record<string, unknown>) {
      const result = await postGraphQL(gateway.url, query, variables)
      expect(result.errors).toBeUndefined()
      return result.data as Record<string, any>
    }
    const createUser = (gateway: TestGateway, name: string) =>
      call(gateway, 'mutation($data: UserCreateInput!) { createUser(data: $data) { id } }', {
        data: { email: `${name}-${++names}@cluster.test`, name },
      })
    const broadcast = (gateway: TestGateway, room: string, event: string) =>
      call(
        gateway,
        'mutation($room: String!, $event: String!) { broadcast(rooms: [$room], event: $event) { recipients } }',
        { room, event },
      )

    it('should give a client back, on either gateway, exactly the 50 events and 50 messages sent through the other while it was away', async () => {
      const room = `chat-${randomUUID()}`
      const first = connect(a)
      const events = await subscribe<UserEvent>(a, first, USER_EVENTS)
      const messages = await subscribe<RoomMessage>(a, first, ROOM, { name: room })
      await createUser(a, 'seen-1')
      await broadcast(a, room, 'seen-1')
      await receivedAll(events, 1)
      await receivedAll(messages, 1)
      const cursors = { events: dataOf(events)[0]!.cursor, messages: dataOf(messages)[0]!.cursor }
      await first.dispose()
      await settled(() => expect(a.hub.subscriberCount).toBe(0))

      // While it is away, through the other gateway.
      for (let i = 0; i < 50; i++) {
        await createUser(b, `away-${i}`)
        await broadcast(b, room, `away-${i}`)
      }
      const expectedNames = Array.from({ length: 50 }, (_, i) => `away-${i}`)

      // The client comes back, on the other gateway or on the same one.
      const resumed = []
      for (const gateway of [b, a]) {
        const again = connect(gateway)
        resumed.push({
          events: await subscribe<UserEvent>(gateway, again, USER_EVENTS, { after: cursors.events }),
          messages: await subscribe<RoomMessage>(gateway, again, ROOM, { name: room, after: cursors.messages }),
        })
      }
      for (const { events: resumedEvents, messages: resumedMessages } of resumed) {
        await receivedAll(resumedEvents, 50)
        await receivedAll(resumedMessages, 50)
        expect(dataOf(resumedEvents).map((event) => event.node?.name)).toEqual(expectedNames)
        expect(dataOf(resumedMessages).map((message) => message.event)).toEqual(expectedNames)
      }
      // Then live, from either gateway, once.
      await createUser(a, 'live')
      await broadcast(b, room, 'live')
      for (const { events: resumedEvents, messages: resumedMessages } of resumed) {
        await receivedAll(resumedEvents, 51)
        await receivedAll(resumedMessages, 51)
        expect(dataOf(resumedEvents).at(-1)!.node?.name).toBe('live')
        expect(dataOf(resumedMessages).at(-1)!.event).toBe('live')
      }
    })

    it('should deliver, once its Redis connection returns, what was published elsewhere while it was cut off, and send what it published meanwhile', async () => {
      const room = `cut-${randomUUID()}`
      // The last test's clients are gone.
      await settled(() => expect(a.hub.subscriberCount + b.hub.subscriberCount).toBe(0))
      const onA = connect(a)
      const onB = connect(b)
      const eventsOnA = await subscribe<UserEvent>(a, onA, USER_EVENTS)
      const eventsOnB = await subscribe<UserEvent>(b, onB, USER_EVENTS)
      const messagesOnB = await subscribe<RoomMessage>(b, onB, ROOM, { name: room })
      proxy.cut()
      for (let i = 0; i < 10; i++) {
        await createUser(a, `from-a-${i}`)
        await broadcast(a, room, `from-a-${i}`)
      }
      // B's own writes stand and reach B's subscribers at once.
      for (let i = 0; i < 3; i++) await createUser(b, `from-b-${i}`)
      await receivedAll(eventsOnB, 3)
      expect(dataOf(eventsOnB).map((event) => event.node?.name)).toEqual(['from-b-0', 'from-b-1', 'from-b-2'])
      // Cut off for a few seconds.
      await new Promise((resolve) => setTimeout(resolve, 2000))
      expect(eventsOnB.received).toHaveLength(3)
      proxy.restore()
      await receivedAll(eventsOnB, 13)
      await receivedAll(messagesOnB, 10)
      expect(
        dataOf(eventsOnB)
          .slice(3)
          .map((event) => event.node?.name),
      ).toEqual(Array.from({ length: 10 }, (_, i) => `from-a-${i}`))
      expect(dataOf(messagesOnB).map((message) => message.event)).toEqual(
        Array.from({ length: 10 }, (_, i) => `from-a-${i}`),
      )
      // A receives B's three from B's outbox, after its own ten.
      await receivedAll(eventsOnA, 13)
      expect(dataOf(eventsOnA).map((event) => event.node?.name)).toEqual([
        ...Array.from({ length: 10 }, (_, i) => `from-a-${i}`),
        'from-b-0',
        'from-b-1',
        'from-b-2',
      ])
      // And live again both ways.
      await createUser(b, 'after')
      await receivedAll(eventsOnA, 14)
      await receivedAll(eventsOnB, 14)
    })

    it('should end its subscriptions with RESYNC_REQUIRED when it was cut off for longer than the log covers', async () => {
      // A deployment of its own whose logs keep 10 entries (about 100 in Redis, which trims whole nodes).
      const prefix = `short-${randomUUID()}:`
      const short = {
        prefix,
        history: { maxEvents: 10 },
        logMaxEvents: 10,
        redisTimeoutMs: 500,
        heartbeatMs: 100,
        redis: { retryStrategy: () => 50, connectTimeout: 500 },
      }
      const cutProxy = await startTcpProxy({ port: redis.port })
      env.defer(() => cutProxy.close())
      const gateway = await env.startGateway({ bus: await createRedisBus({ url: cutProxy.url('redis'), ...short }) })
      const publisher = await createRedisBus({ url: redis.url, ...short })
      env.defer(() => publisher.close())
      const client = connect(gateway)
      const events = await subscribe<UserEvent>(gateway, client, USER_EVENTS)
      const messages = await subscribe<RoomMessage>(gateway, client, ROOM, { name: 'short' })
      cutProxy.cut()
      const published = []
      for (let i = 0; i < 300; i++) {
        published.push(
          publisher.publish('model:User', {
            model: 'User',
            verb: 'MESSAGE',
            recordId: String(i),
            node: { id: i },
            data: i,
            at: new Date().toISOString(),
          }),
        )
        published.push(
          publisher.publish(
            'rooms:message',
            {
              message: { id: randomUUID(), event: `m${i}`, data: null, sender: null, sentAt: new Date().toISOString() },
              target: { rooms: ['short'], omit: [] },
            },
            { history: ['short'] },
          ),
        )
      }
      expect(new Set(await Promise.all(published))).toEqual(new Set(['sent']))
      cutProxy.restore()
      for (const subscription of [events, messages]) {
        await subscription.completed
        const errors = subscription.received.at(-1)?.errors
        expect(errors?.[0]?.extensions?.code).toBe('RESYNC_REQUIRED')
      }
      expect(events.received).toHaveLength(1)
      expect(messages.received).toHaveLength(1)
      // Subscribing again works, live.
      const again = await subscribe<RoomMessage>(gateway, client, ROOM, { name: 'short' })
      await publisher.publish(
        'rooms:message',
        {
          message: { id: randomUUID(), event: 'after', data: null, sender: null, sentAt: new Date().toISOString() },
          target: { rooms: ['short'], omit: [] },
        },
        { history: ['short'] },
      )
      await receivedAll(again, 1)
      expect(dataOf(again)[0]!.event).toBe('after')
    })

    it('should give a client back, on either gateway, exactly what was sent after Redis restarted on its data (append-only file)', async () => {
      const room = `restart-${randomUUID()}`
      await settled(() => expect(a.hub.subscriberCount + b.hub.subscriberCount).toBe(0))
      const first = connect(a)
      const events = await subscribe<UserEvent>(a, first, USER_EVENTS)
      const messages = await subscribe<RoomMessage>(a, first, ROOM, { name: room })
      await createUser(a, 'before')
      await broadcast(a, room, 'before')
      await receivedAll(events, 1)
      await receivedAll(messages, 1)
      const cursors = { events: dataOf(events)[0]!.cursor, messages: dataOf(messages)[0]!.cursor }
      await first.dispose()
      await settled(() => expect(a.hub.subscriberCount).toBe(0))

      // Killed and started again on its append-only file: the same data, a new server run. (While
      // a gateway has not reconnected, a resume answers UNAVAILABLE, and a client retries.)
      await redis.restart()
      await settled(async () => void (await Promise.all([busA.ping(), busB.ping()])))
      const expectedNames = Array.from({ length: 5 }, (_, i) => `after-${i}`)
      for (const name of expectedNames) {
        await createUser(b, name)
        await broadcast(b, room, name)
      }
      for (const gateway of [b, a]) {
        const again = connect(gateway)
        const resumedEvents = await subscribe<UserEvent>(gateway, again, USER_EVENTS, { after: cursors.events })
        const resumedMessages = await subscribe<RoomMessage>(gateway, again, ROOM, {
          name: room,
          after: cursors.messages,
        })
        await receivedAll(resumedEvents, 5)
        await receivedAll(resumedMessages, 5)
        expect(dataOf(resumedEvents).map((event) => event.node?.name)).toEqual(expectedNames)
        expect(dataOf(resumedMessages).map((message) => message.event)).toEqual(expectedNames)
        await again.dispose()
      }
    })
  },
)
