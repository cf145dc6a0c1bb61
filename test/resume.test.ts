/**
 * Resuming subscriptions with `after:` (docs/resuming.md; docs/architecture.md §7), as a client sees it, on SQLite and
 * PostgreSQL, with the memory bus and the Redis bus: a client reads some events, goes away,
 * comes back with its last cursor and gets exactly what it missed, in order, then live ones;
 * filters and policies apply to the replay; a cursor the history no longer reaches, or that is
 * not one, answers RESYNC_REQUIRED.
 */
import { randomUUID } from 'node:crypto'
import type { Client } from 'graphql-ws'
import { afterEach, beforeAll, expect, it } from 'vitest'
import { createMemoryBus } from '../src/bus/memory.ts'
import { createRedisBus } from '../src/bus/redis.ts'
import { deleteRedisKeys } from './helpers/bus.ts'
import { postGraphQL, subscribeWs, type ExecutionResult, type Subscription } from './helpers/clients.ts'
import { describeEach, eachDatabase, redisUrl, useFixture } from './helpers/fixture.ts'
import { settled, type TestGateway } from './helpers/gateway.ts'

const busKinds = [{ bus: 'memory' as const }, { bus: 'redis' as const, needs: ['redis'] as const }]

const USER_EVENTS = /* GraphQL */ `
  subscription UserEvents($after: String, $where: UserWhereInput) {
    userEvents(after: $after, where: $where) { cursor verb recordId node { name } }
  }
`
const POST_EVENTS = /* GraphQL */ `
  subscription PostEvents($after: String) {
    postEvents(after: $after) { cursor verb recordId }
  }
`
const ROOM = /* GraphQL */ `
  subscription Room($name: String!, $after: String) {
    room(name: $name, after: $after) { cursor room event data }
  }
`

type UserEvent = { cursor: string; verb: string; recordId: string; node: { name: string } | null }
type RoomMessage = { cursor: string | null; room: string; event: string; data: unknown }

/**
 * The events without their cursors: a cursor is a position, and one event may carry different
 * ones on different paths (live on the gateway that published it, elsewhere, replayed); each of
 * them resumes right after it.
 */
const withoutCursors = <T extends { cursor: unknown }>(events: T[]) =>
  events.map(({ cursor: _cursor, ...rest }) => rest)

/** The data of every event a subscription received so far (errors fail the test). */
function dataOf<T>(subscription: Subscription<Record<string, T>>): T[] {
  return subscription.received.map((result) => {
    expect(result.errors).toBeUndefined()
    return Object.values(result.data!)[0]!
  })
}

/** Waits until a subscription has received `count` events. */
const receivedAll = (subscription: Subscription<unknown>, count: number) =>
  settled(() => expect(subscription.received.length).toBe(count))

/** The error a subscription ended with. */
async function endedWith(subscription: Subscription<unknown>): Promise<ExecutionResult<unknown>['errors']> {
  await subscription.completed
  const last = subscription.received.at(-1)
  expect(last?.errors).toBeDefined()
  return last!.errors
}

eachDatabase('resuming on $provider', (provider) => {
  describeEach(busKinds, 'with the $bus bus', ({ bus }) => {
    const env = useFixture({ database: provider, bus })
    // A gateway on Redis that reports an error (as `mizzen serve` would log it) fails the test.
    afterEach(() => expect(env.takeRedisErrors()).toEqual([]))

    let gateway: TestGateway
    let client: Client
    let names = 0

    beforeAll(() => {
      gateway = env.gateway
      client = env.connect().client
      if (bus === 'redis') env.defer(() => deleteRedisKeys(redisUrl, env.prefix))
    })

    const gql = async (query: string, variables?: Record<string, unknown>) => {
      const result = await postGraphQL(gateway.url, query, variables)
      expect(result.errors).toBeUndefined()
      return result.data as Record<string, any>
    }
    const createUser = async (name: string) =>
      (
        await gql('mutation($data: UserCreateInput!) { createUser(data: $data) { id } }', {
          data: { email: `${name}-${++names}@resume.test`, name },
        })
      ).createUser.id as string
    /** Subscribes, and resolves once the gateway runs the subscription. */
    async function subscribe<T>(
      query: string,
      variables?: Record<string, unknown>,
    ): Promise<Subscription<Record<string, T>>> {
      const before = gateway.hub.subscriberCount
      const subscription = subscribeWs<Record<string, T>>(client, query, variables)
      await settled(() => expect(gateway.hub.subscriberCount).toBeGreaterThan(before))
      return subscription
    }
    /** Stops a subscription and waits until the gateway let it go. */
    async function stop(subscription: Subscription<unknown>): Promise<void> {
      const before = gateway.hub.subscriberCount
      subscription.stop()
      await settled(() => expect(gateway.hub.subscriberCount).toBeLessThan(before))
    }

    it('should replay exactly the model events published while the client was away, in order, then go on live', async () => {
      // A subscriber that never went away: what the resumed one must match.
      const reference = await subscribe<UserEvent>(USER_EVENTS)
      const first = await subscribe<UserEvent>(USER_EVENTS)
      const ada = await createUser('ada')
      await createUser('bob')
      await receivedAll(first, 2)
      const last = dataOf(first)[1]!.cursor
      await stop(first)
      // Away: seven events.
      for (const name of ['cy', 'di', 'ed', 'flo', 'gus']) await createUser(name)
      await gql(`mutation { updateUser(id: "${ada}", data: { name: "ada lovelace" }) { id } }`)
      await gql(`mutation { deleteUser(id: "${ada}") { id } }`)
      const resumed = await subscribe<UserEvent>(USER_EVENTS, { after: last })
      await receivedAll(resumed, 7)
      await receivedAll(reference, 9)
      expect(withoutCursors(dataOf(resumed))).toEqual(withoutCursors(dataOf(reference).slice(2)))
      expect(dataOf(resumed).map((event) => event.verb)).toEqual([
        'CREATED',
        'CREATED',
        'CREATED',
        'CREATED',
        'CREATED',
        'UPDATED',
        'DELETED',
      ])
      // Then live, once.
      await createUser('hal')
      await receivedAll(reference, 10)
      await receivedAll(resumed, 8)
      expect(withoutCursors(dataOf(resumed))).toEqual(withoutCursors(dataOf(reference).slice(2)))
      // A replayed event's cursor and the live one of the same event resume alike.
      const fromReplayed = await subscribe<UserEvent>(USER_EVENTS, { after: dataOf(resumed)[4]!.cursor })
      const fromLive = await subscribe<UserEvent>(USER_EVENTS, { after: dataOf(reference)[6]!.cursor })
      for (const each of [fromReplayed, fromLive]) {
        await receivedAll(each, 3)
        expect(withoutCursors(dataOf(each))).toEqual(withoutCursors(dataOf(reference).slice(7)))
      }
      for (const each of [reference, resumed, fromReplayed, fromLive]) await stop(each)
    })

    it('should lose and repeat nothing when events are published while the replay is read', async () => {
      const reference = await subscribe<UserEvent>(USER_EVENTS)
      await createUser('before')
      await receivedAll(reference, 1)
      const cursor = dataOf(reference)[0]!.cursor
      for (let i = 0; i < 5; i++) await createUser(`missed${i}`)
      // Resume while twenty more are being written.
      const writes = Promise.all(Array.from({ length: 20 }, (_, i) => createUser(`during${i}`)))
      const resumed = subscribeWs<Record<string, UserEvent>>(client, USER_EVENTS, { after: cursor })
      await writes
      await receivedAll(reference, 26)
      await receivedAll(resumed, 25)
      expect(withoutCursors(dataOf(resumed))).toEqual(withoutCursors(dataOf(reference).slice(1)))
      await stop(resumed)
      await stop(reference)
    })

    it('should apply the subscription’s filters to the replay', async () => {
      const first = await subscribe<UserEvent>(USER_EVENTS, { where: { name: { startsWith: 'keep' } } })
      await createUser('keep0')
      await receivedAll(first, 1)
      const cursor = dataOf(first)[0]!.cursor
      await stop(first)
      for (const name of ['skip1', 'keep2', 'skip3', 'keep4']) await createUser(name)
      const resumed = await subscribe<UserEvent>(USER_EVENTS, {
        after: cursor,
        where: { name: { startsWith: 'keep' } },
      })
      await receivedAll(resumed, 2)
      expect(dataOf(resumed).map((event) => event.node?.name)).toEqual(['keep2', 'keep4'])
      await stop(resumed)
    })

    it('should replay what a room received while the client was away, in order, then go on live', async () => {
      const room = `lobby-${randomUUID()}`
      const broadcast = (event: string) =>
        gql('mutation($room: String!, $event: String!) { broadcast(rooms: [$room], event: $event) { recipients } }', {
          room,
          event,
        })
      const first = await subscribe<RoomMessage>(ROOM, { name: room })
      await broadcast('m1')
      await broadcast('m2')
      await receivedAll(first, 2)
      const cursor = dataOf(first)[1]!.cursor
      expect(cursor).toEqual(expect.any(String))
      await stop(first)
      for (const event of ['m3', 'm4', 'm5']) await broadcast(event)
      // Another room's messages are not this room's history.
      await gql('mutation { broadcast(rooms: ["elsewhere"], event: "other") { recipients } }')
      const resumed = await subscribe<RoomMessage>(ROOM, { name: room, after: cursor })
      await receivedAll(resumed, 3)
      await broadcast('m6')
      await receivedAll(resumed, 4)
      expect(dataOf(resumed).map((message) => message.event)).toEqual(['m3', 'm4', 'm5', 'm6'])
      expect(dataOf(resumed).every((message) => message.room === room && typeof message.cursor === 'string')).toBe(true)
      // The cursors of replayed and live messages resume too.
      await stop(resumed)
      const again = await subscribe<RoomMessage>(ROOM, { name: room, after: dataOf(resumed)[0]!.cursor })
      await receivedAll(again, 3)
      expect(dataOf(again).map((message) => message.event)).toEqual(['m4', 'm5', 'm6'])
      await stop(again)
    })

    it('should resume over SSE as over WebSocket', async () => {
      const first = await subscribe<UserEvent>(USER_EVENTS)
      await createUser('sse-seen')
      await receivedAll(first, 1)
      const cursor = dataOf(first)[0]!.cursor
      await stop(first)
      for (const name of ['sse-1', 'sse-2']) await createUser(name)
      const controller = new AbortController()
      const response = await fetch(gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: USER_EVENTS, variables: { after: cursor } }),
        signal: controller.signal,
      })
      expect(response.headers.get('content-type')).toMatch(/text\/event-stream/)
      const reader = response.body!.getReader()
      let text = ''
      while (!text.includes('"sse-2"')) text += new TextDecoder().decode((await reader.read()).value)
      expect([...text.matchAll(/"name":"([^"]+)"/g)].map((match) => match[1])).toEqual(['sse-1', 'sse-2'])
      controller.abort()
      await settled(() => expect(gateway.hub.subscriberCount).toBe(0))
    })

    it('should answer RESYNC_REQUIRED for a cursor that is not one, or another topic’s, and end the subscription', async () => {
      const users = await subscribe<UserEvent>(USER_EVENTS)
      await createUser('cursor')
      await receivedAll(users, 1)
      const userCursor = dataOf(users)[0]!.cursor
      await stop(users)
      for (const [query, variables] of [
        [USER_EVENTS, { after: 'not-a-cursor' }],
        [USER_EVENTS, { after: '' }],
        [POST_EVENTS, { after: userCursor }],
        [ROOM, { name: 'some-room', after: userCursor }],
      ] as const) {
        const subscription = subscribeWs(client, query, variables)
        const errors = await endedWith(subscription)
        expect(errors?.[0]?.extensions?.code, JSON.stringify(variables)).toBe('RESYNC_REQUIRED')
      }
      await settled(() => expect(gateway.hub.subscriberCount).toBe(0))
    })
  })

  describeEach(busKinds, 'with the $bus bus and a short history', ({ bus }) => {
    const env = useFixture({ database: provider, bus, gateways: 0 })
    // A gateway on Redis that reports an error (as `mizzen serve` would log it) fails the test.
    afterEach(() => expect(env.takeRedisErrors()).toEqual([]))

    let gateway: TestGateway
    let client: Client

    beforeAll(async () => {
      const history = { maxEvents: 10 }
      gateway = await env.startGateway({
        // The model topics' log is their history: with Redis, trim it as the history.
        bus:
          bus === 'redis'
            ? await createRedisBus({ url: redisUrl, prefix: env.prefix, history, logMaxEvents: history.maxEvents })
            : createMemoryBus({ history }),
      })
      client = env.connect(undefined, gateway).client
      if (bus === 'redis') env.defer(() => deleteRedisKeys(redisUrl, env.prefix))
    })

    it('should answer RESYNC_REQUIRED once the history no longer reaches back to the cursor', async () => {
      const room = `busy-${randomUUID()}`
      const first = subscribeWs<Record<string, RoomMessage>>(client, ROOM, { name: room })
      await settled(() => expect(gateway.hub.subscriberCount).toBe(1))
      const broadcast = (event: string) =>
        postGraphQL(
          gateway.url,
          'mutation($room: String!, $event: String!) { broadcast(rooms: [$room], event: $event) { recipients } }',
          { room, event },
        )
      await broadcast('seen')
      await receivedAll(first, 1)
      const cursor = Object.values(first.received[0]!.data!)[0]!.cursor!
      first.stop()
      await settled(() => expect(gateway.hub.subscriberCount).toBe(0))
      // Redis trims whole nodes of about 100 entries: send well past that.
      for (let i = 0; i < 250; i++) await broadcast(`m${i}`)
      const resumed = subscribeWs(client, ROOM, { name: room, after: cursor })
      const errors = await endedWith(resumed)
      expect(errors?.[0]?.extensions?.code).toBe('RESYNC_REQUIRED')
      expect(errors?.[0]?.message).toMatch(/no longer reaches back/)
      await settled(() => expect(gateway.hub.subscriberCount).toBe(0))
    })
  })
})
