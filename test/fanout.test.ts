/**
 * The grouped fast path (docs/architecture.md §6): subscriptions of a group share one selection, one
 * execution and one serialised result per event. Each test checks that grouped subscribers
 * receive exactly what they would have received one by one (a lone subscriber in a group of its
 * own, or Yoga's own per-subscriber path over SSE), and that what must stay apart does: other
 * variables, other viewers' row policies, a subscription's own `ids` state, a client that
 * completed, a socket that closed, the order of each connection.
 */
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { examplePolicies } from '../examples/app/policies.ts'
import { bearer, JWT_SECRET, SERVICE_KEY, userToken } from './helpers/auth.ts'
import { postGraphQL } from './helpers/clients.ts'
import type { DatabaseProvider } from '../src/db/provider.ts'
import { missing, useFixture } from './helpers/fixture.ts'
import { settled, type TestGatewayOptions } from './helpers/gateway.ts'
import type { Message, RawClient } from './helpers/raw-socket.ts'
const service = bearer(SERVICE_KEY)
const ROOM =
  'subscription Room($name: String!, $events: [String!]) { room(name: $name, events: $events) { id room event data sender cursor } }'
const MESSAGES = 'subscription { messages { id room event data cursor } }'
const BROADCAST =
  'mutation($rooms: [String!]!, $event: String!, $data: JSON) { broadcast(rooms: $rooms, event: $event, data: $data) { recipients } }'

/** Every `next` payload a raw client received for operation `id`, in order. */
const nexts = (client: RawClient, id: string) =>
  client.received.filter((m) => m.id === id && m.type === 'next').map((m) => m.payload)

function useGateway(database: DatabaseProvider, options: TestGatewayOptions = {}) {
  const fixture = useFixture({
    database,
    gateway: { auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET }, policies: examplePolicies, ...options },
  })
  const clients: RawClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()))
    await settled(() => expect([fixture.gateway.hub.subscriberCount, fixture.gateway.hub.groupCount]).toEqual([0, 0]))
  })
  return {
    get gateway() {
      return fixture.gateway
    },
    get database() {
      return fixture.database
    },
    get servers() {
      return fixture.servers
    },
    /** An acknowledged raw client, as a service or with a user's token; closed after the test. */
    async connect(authorization: Record<string, string> = service): Promise<RawClient> {
      const client = await fixture.connectRaw({ payload: authorization })
      clients.push(client)
      return client
    },
    async asService(query: string, variables?: Record<string, unknown>) {
      const result = await postGraphQL(fixture.gateway.url, query, variables, service)
      if (result.errors) throw new Error(JSON.stringify(result.errors))
      return result.data!
    },
    /** Waits until the gateway runs `subscribers` subscriptions in `groups` groups. */
    attached: (subscribers: number, groups: number) =>
      settled(() =>
        expect([fixture.gateway.hub.subscriberCount, fixture.gateway.hub.groupCount]).toEqual([subscribers, groups]),
      ),
  }
}

/** Reads the `data` of each SSE event of a subscription until `count` arrived. */
async function sseEvents(
  url: string,
  query: string,
  headers: Record<string, string>,
  count: number,
  started: () => Promise<void>,
): Promise<unknown[]> {
  const controller = new AbortController()
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
    body: JSON.stringify({ query }),
    signal: controller.signal,
  })
  const reader = response.body!.getReader()
  await started()
  const events: unknown[] = []
  let text = ''
  while (events.length < count) {
    text += new TextDecoder().decode((await reader.read()).value)
    let end
    while ((end = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, end)
      text = text.slice(end + 2)
      const data = block.split('\n').find((line) => line.startsWith('data:'))
      if (data && block.includes('event: next')) events.push(JSON.parse(data.slice(5)))
    }
  }
  controller.abort()
  return events
}

describe('grouped fan-out on sqlite', () => {
  const env = useGateway('sqlite')

  it('should give every member of a group exactly what a lone subscriber of the operation receives, executing once per group', async () => {
    const members = await Promise.all([0, 1, 2, 3].map(() => env.connect()))
    const [lone, filtered] = [await env.connect(), await env.connect()]
    for (const member of members) member.subscribe('r', ROOM, { name: 'lobby' })
    // The same operation in other words (a group of its own), and with other variables.
    lone.subscribe('r', `${ROOM} # alone`, { name: 'lobby' })
    filtered.subscribe('r', ROOM, { name: 'lobby', events: ['b'] })
    await env.attached(6, 3)
    for (const [event, data] of [
      ['a', { n: 1 }],
      ['b', [1, 'two', null]],
      ['a', 'text'],
      ['c', null],
    ] as const) {
      await env.asService(BROADCAST, { rooms: ['lobby'], event, data })
    }
    await settled(() => expect(nexts(lone, 'r')).toHaveLength(4))
    const expected = nexts(lone, 'r')
    expect(expected.map((p) => p.data.room.event)).toEqual(['a', 'b', 'a', 'c'])
    expect(expected[1].data.room).toMatchObject({
      room: 'lobby',
      data: [1, 'two', null],
      sender: null,
      cursor: expect.any(String),
    })
    for (const member of members) await settled(() => expect(nexts(member, 'r')).toEqual(expected))
    await settled(() => expect(nexts(filtered, 'r')).toEqual([expected[1]]))
  })

  it('should label a broadcast to several rooms per connection and per subscription, as one by one', async () => {
    const [inA, inB, inBoth] = [await env.connect(), await env.connect(), await env.connect()]
    for (const client of [inA, inB, inBoth]) client.subscribe('all', MESSAGES)
    inA.subscribe('ra', ROOM, { name: 'a' })
    inB.subscribe('rb', ROOM, { name: 'b' })
    inBoth.subscribe('ra', ROOM, { name: 'a' })
    inBoth.subscribe('rb', ROOM, { name: 'b' })
    await env.attached(7, 3)
    await env.asService(BROADCAST, { rooms: ['b', 'a'], event: 'hi', data: 1 })
    await settled(() => expect(nexts(inBoth, 'rb')).toHaveLength(1))
    const via = (client: RawClient, id: string) => nexts(client, id).map((p) => p.data.messages ?? p.data.room)
    const [ra] = via(inA, 'ra')
    const [rb] = via(inB, 'rb')
    expect([ra.room, rb.room, ra.id]).toEqual(['a', 'b', rb.id])
    expect(ra.cursor).not.toEqual(rb.cursor)
    // `messages` names the first targeted room the connection is in, once per connection.
    expect(via(inA, 'all')).toEqual([{ id: ra.id, room: 'a', event: 'hi', data: 1, cursor: ra.cursor }])
    expect(via(inB, 'all')).toEqual([{ id: rb.id, room: 'b', event: 'hi', data: 1, cursor: rb.cursor }])
    expect(via(inBoth, 'all')).toEqual([{ id: rb.id, room: 'b', event: 'hi', data: 1, cursor: rb.cursor }])
    expect([via(inBoth, 'ra'), via(inBoth, 'rb')]).toEqual([[ra], [rb]])
  })

  it('should give grouped WebSocket subscribers what Yoga’s own one-by-one path (SSE) gives, for model events with a where filter and relations', async () => {
    const query =
      'subscription { postEvents(where: { published: { equals: true } }) { verb recordId node { title published author { name } } previous { title } updatedFields } }'
    const members = await Promise.all([0, 1, 2].map(() => env.connect()))
    for (const member of members) member.subscribe('p', query)
    const author = (
      await env.asService('mutation { createUser(data: { email: "sse@example.com", name: "Sse" }) { id } }')
    ).createUser.id
    const writes = async () => {
      const draft = (
        await env.asService(`mutation { createPost(data: { title: "draft", authorId: "${author}" }) { id } }`)
      ).createPost.id
      await env.asService(`mutation { updatePost(id: "${draft}", data: { published: true }) { id } }`)
      await env.asService(`mutation { updatePost(id: "${draft}", data: { title: "renamed" }) { id } }`)
      await env.asService(`mutation { createPost(data: { title: "hidden", authorId: "${author}" }) { id } }`)
      await env.asService(`mutation { updatePost(id: "${draft}", data: { published: false }) { id } }`)
    }
    const overSse = await sseEvents(env.gateway.url, query, service, 3, async () => {
      await env.attached(4, 1)
      await writes()
    })
    expect(overSse).toHaveLength(3)
    for (const member of members) await settled(() => expect(nexts(member, 'p')).toEqual(overSse))
  })

  it('should keep each subscription’s own ids state in a group: one that saw a record deleted is not one that did not', async () => {
    const make = async (name: string) =>
      (await env.gateway.prisma.user.create({ data: { email: `${name}@ids.example`, name } })).id
    const [a, b] = [await make('ida'), await make('idb')]
    const query = 'subscription($ids: [ID!]) { userEvents(ids: $ids) { verb recordId node { name } } }'
    const early = await env.connect()
    early.subscribe('u', query, { ids: [String(a), String(b)] })
    await env.attached(1, 1)
    await env.gateway.prisma.user.delete({ where: { id: a } })
    await settled(() => expect(nexts(early, 'u')).toHaveLength(1))
    // Same document, same variables, same viewer: the same group, but `early` no longer watches a.
    const late = await env.connect()
    late.subscribe('u', query, { ids: [String(a), String(b)] })
    await env.attached(2, 1)
    await env.gateway.prisma.user.create({ data: { id: a, email: 'ida-again@ids.example', name: 'again' } })
    await env.gateway.prisma.user.delete({ where: { id: b } })
    await settled(() =>
      expect(early.received.filter((m) => m.id === 'u').map((m) => m.type)).toEqual(['next', 'next', 'complete']),
    )
    expect(nexts(early, 'u').map((p) => p.data.userEvents)).toEqual([
      { verb: 'DELETED', recordId: String(a), node: null },
      { verb: 'DELETED', recordId: String(b), node: null },
    ])
    await settled(() => expect(nexts(late, 'u')).toHaveLength(2))
    expect(nexts(late, 'u').map((p) => p.data.userEvents)).toEqual([
      { verb: 'CREATED', recordId: String(a), node: { name: 'again' } },
      { verb: 'DELETED', recordId: String(b), node: null },
    ])
    expect(late.received.some((m) => m.id === 'u' && m.type === 'complete')).toBe(false)
  })

  it('should never share results between viewers whose row policies differ, and share them where policies agree', async () => {
    const make = async (name: string) =>
      (await env.gateway.prisma.user.create({ data: { email: `${name}@policy.example`, name } })).id
    const [alice, bob] = [await make('alice'), await make('bob')]
    const [aliceWs, bobWs, bob2Ws, serviceWs] = [
      await env.connect(bearer(await userToken(String(alice)))),
      await env.connect(bearer(await userToken(String(bob)))),
      await env.connect(bearer(await userToken(String(bob)))),
      await env.connect(),
    ]
    const posts = 'subscription { postEvents { verb recordId node { title author { name } } } }'
    for (const client of [aliceWs, bobWs, bob2Ws, serviceWs]) {
      client.subscribe('p', posts)
      // Rooms reach no model: every viewer shares one group.
      client.subscribe('r', ROOM, { name: 'shared' })
    }
    // alice, bob (twice: one group), the service, and the room.
    await env.attached(8, 4)
    await env.gateway.prisma.post.create({ data: { title: 'bob draft', authorId: bob } })
    await env.gateway.prisma.post.create({ data: { title: 'bob public', published: true, authorId: bob } })
    await env.asService(BROADCAST, { rooms: ['shared'], event: 'e' })
    for (const client of [aliceWs, bobWs, bob2Ws, serviceWs])
      await settled(() => expect(nexts(client, 'r')).toHaveLength(1))
    await settled(() => expect(nexts(serviceWs, 'p')).toHaveLength(2))
    const titles = (client: RawClient) =>
      nexts(client, 'p').map((p) => [p.data?.postEvents?.node?.title, p.errors?.[0]?.extensions?.code ?? null])
    expect(titles(serviceWs)).toEqual([
      ['bob draft', null],
      ['bob public', null],
    ])
    expect(titles(bobWs)).toEqual([
      ['bob draft', null],
      ['bob public', null],
    ])
    expect(nexts(bob2Ws, 'p')).toEqual(nexts(bobWs, 'p'))
    // Alice sees only the public post, and not its author (a User she may not read): an error in her group only.
    await settled(() => expect(nexts(aliceWs, 'p')).toHaveLength(1))
    expect(nexts(aliceWs, 'p')[0]).toMatchObject({
      data: { postEvents: { verb: 'CREATED', node: null } },
      errors: [{ path: ['postEvents', 'node', 'author'], extensions: { code: 'FORBIDDEN' } }],
    })
    expect(JSON.stringify(aliceWs.received)).not.toContain('bob draft')
    expect(nexts(aliceWs, 'r')).toEqual(nexts(serviceWs, 'r'))
  })

  it('should send each connection its frames in delivery order under concurrent publishes, with async resolvers in the selection', async () => {
    const author = (await env.gateway.prisma.user.create({ data: { email: 'order@example.com', name: 'Order' } })).id
    const order: string[] = []
    const stop = env.gateway.bus.subscribe(
      'model:Post',
      (event) => void (event.verb === 'CREATED' && order.push(event.recordId)),
    )
    const clients = await Promise.all([0, 1, 2].map(() => env.connect()))
    // A relation read from the database (asynchronous), then a selection with none (synchronous):
    // on each connection, each event's `slow` result is delivered before its `fast` one.
    for (const client of clients)
      client.subscribe('slow', 'subscription { postEvents(verbs: [CREATED]) { recordId node { author { name } } } }')
    await env.attached(3, 1)
    for (const client of clients) client.subscribe('fast', 'subscription { postEvents(verbs: [CREATED]) { recordId } }')
    await env.attached(6, 2)
    const count = 40
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        env.asService(`mutation { createPost(data: { title: "c${i}", authorId: "${author}" }) { id } }`),
      ),
    )
    stop()
    expect(order).toHaveLength(count)
    const expected = order.flatMap((id) => [`slow:${id}`, `fast:${id}`])
    for (const client of clients) {
      await settled(() => expect(client.received.filter((m) => m.type === 'next')).toHaveLength(2 * count))
      const wire = client.received
        .filter((m: Message) => m.type === 'next')
        .map((m) => `${m.id}:${m.payload.data.postEvents.recordId}`)
      expect(wire).toEqual(expected)
    }
  })
})

describe.skipIf(missing('postgresql'))(
  'grouped fan-out on postgresql: what happens while a result is being executed',
  () => {
    const env = useGateway('postgresql', { nodeEnv: 'production' })
    let admin: pg.Client

    beforeAll(async () => {
      admin = new pg.Client({ connectionString: env.database.url })
      await admin.connect()
    })
    afterAll(async () => {
      await admin?.end()
    })

    /** A post event published as the realtime extension would, with an author to resolve. */
    const publishPost = async (authorId: number, title: string) =>
      env.gateway.bus.publish('model:Post', {
        model: 'Post',
        verb: 'CREATED',
        recordId: title,
        node: { id: 1, title, body: null, published: true, authorId },
        at: new Date().toISOString(),
      })

    it('should send nothing to a subscription completed, or a socket closed, while its group’s result was being executed', async () => {
      const author = (await env.gateway.prisma.user.create({ data: { email: 'locked@example.com', name: 'Locked' } }))
        .id
      const query = 'subscription { postEvents { recordId node { author { name } } } }'
      const [completing, closing, staying] = [await env.connect(), await env.connect(), await env.connect()]
      for (const client of [completing, closing, staying]) client.subscribe('p', query)
      await env.attached(3, 1)

      // Holds the relation read (the author) until the lock is released.
      await admin.query('BEGIN')
      await admin.query('LOCK TABLE "User" IN ACCESS EXCLUSIVE MODE')
      await publishPost(author, 'first')
      completing.send({ type: 'complete', id: 'p' })
      await completing.roundTrip()
      const closed = env.servers.closed(closing)
      await closing.close()
      await closed
      await admin.query('COMMIT')

      await settled(() => expect(nexts(staying, 'p')).toHaveLength(1))
      expect(nexts(staying, 'p')[0]).toEqual({
        data: { postEvents: { recordId: 'first', node: { author: { name: 'Locked' } } } },
      })
      await publishPost(author, 'second')
      await settled(() => expect(nexts(staying, 'p')).toHaveLength(2))
      await completing.roundTrip()
      expect(completing.received.filter((m) => m.id === 'p')).toEqual([])
      expect(closing.received.filter((m) => m.id === 'p')).toEqual([])
    })

    it('should give an execution error to its group only, masked as Yoga masks it over HTTP', async () => {
      const author = (await env.gateway.prisma.user.create({ data: { email: 'masked@example.com', name: 'Masked' } }))
        .id
      await env.gateway.prisma.post.create({ data: { title: 'exists', authorId: author } })
      const query = 'subscription { postEvents { recordId node { author { name } } } }'
      const [withAuthor, withoutAuthor] = [await env.connect(), await env.connect()]
      withAuthor.subscribe('p', query)
      withoutAuthor.subscribe('p', 'subscription { postEvents { recordId node { title } } }')
      await env.attached(2, 2)
      await admin.query('ALTER TABLE "User" RENAME TO "UserGone"')
      try {
        const http = await postGraphQL(env.gateway.url, '{ posts { author { name } } }', undefined, service)
        await publishPost(author, 'broken')
        await settled(() => expect(nexts(withAuthor, 'p')).toHaveLength(1))
        await settled(() => expect(nexts(withoutAuthor, 'p')).toHaveLength(1))
        const [failed] = nexts(withAuthor, 'p')
        expect(http.errors?.[0]).toMatchObject({ path: ['posts', 0, 'author'] })
        expect(failed.errors).toEqual([
          {
            ...http.errors![0],
            locations: [{ line: 1, column: query.indexOf('author') + 1 }],
            path: ['postEvents', 'node', 'author'],
          },
        ])
        // A missing table is the database lacking its schema: UNAVAILABLE naming it, as over HTTP.
        expect(failed.errors[0]).toMatchObject({
          message: expect.stringMatching(/^the database is unavailable/),
          extensions: { code: 'UNAVAILABLE', service: 'database' },
        })
        expect(nexts(withoutAuthor, 'p')).toEqual([
          { data: { postEvents: { recordId: 'broken', node: { title: 'broken' } } } },
        ])
      } finally {
        await admin.query('ALTER TABLE "UserGone" RENAME TO "User"')
      }
      // The group lives on: the next event resolves.
      await publishPost(author, 'mended')
      await settled(() => expect(nexts(withAuthor, 'p')).toHaveLength(2))
      expect(nexts(withAuthor, 'p')[1]).toEqual({
        data: { postEvents: { recordId: 'mended', node: { author: { name: 'Masked' } } } },
      })
    })
  },
)
