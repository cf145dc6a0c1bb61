/**
 * Live queries (`query @live`) on one gateway (SQLite, in-memory bus): results that follow the
 * database through writes made by the gateway and by a backend service, policies, limits, and
 * the HTTP transports. The two-gateway convergence test is live.cluster.test.ts.
 */
import { applyLiveQueryJSONPatch } from '@n1ru4l/graphql-live-query-patch-json-patch'
import { describe, expect, it } from 'vitest'
import { examplePolicies } from '../examples/app/policies.ts'
import { notStreamableMessage } from '../src/live/plugin.ts'
import { bearer, JWT_SECRET, SERVICE_KEY, userToken } from './helpers/auth.ts'
import { executeWs, postGraphQL, subscribeWs, type ExecutionResult } from './helpers/clients.ts'
import { useFixture } from './helpers/fixture.ts'
import { scrape } from './helpers/metrics.ts'
import { settled, type TestGateway } from './helpers/gateway.ts'

/** Waits until the gateway holds `count` live queries (they join their group once their context is made). */
const waitForLive = (gateway: TestGateway, count: number) => settled(() => expect(gateway.live.memberCount).toBe(count))

describe('live queries on one gateway', () => {
  const env = useFixture({ backend: true, gateway: { limits: { maxSubscriptionsPerConnection: 3 } } })
  const USERS = 'query Users @live { users(orderBy: [{ id: asc }]) { id name email } }'
  const plainUsers = () =>
    postGraphQL(env.gateway.url, 'query Users { users(orderBy: [{ id: asc }]) { id name email } }')

  it('should send the query’s result first, then a new result for each create, update and delete made elsewhere', async () => {
    const seed = await env.backend.prisma.user.create({ data: { email: 'seed@live.test', name: 'seed' } })
    const { client } = env.connect()
    const live = subscribeWs(client, USERS)
    expect(await live.next()).toEqual(await plainUsers())

    const created = await env.backend.prisma.user.create({ data: { email: 'new@live.test', name: 'new' } })
    const afterCreate = await live.next()
    expect(afterCreate).toEqual(await plainUsers())
    expect(afterCreate.data!.users.map((user: { name: string }) => user.name)).toEqual(['seed', 'new'])

    await env.backend.prisma.user.update({ where: { id: created.id }, data: { name: 'renamed' } })
    expect((await live.next()).data!.users[1].name).toBe('renamed')

    await env.backend.prisma.user.delete({ where: { id: seed.id } })
    const afterDelete = await live.next()
    expect(afterDelete).toEqual(await plainUsers())
    expect(afterDelete.data!.users).toHaveLength(1)
    live.stop()
    await waitForLive(env.gateway, 0)
    expect(env.gateway.live.groupCount).toBe(0)
  })

  it('should send nothing for writes to models the query does not read, nor for writes that change nothing', async () => {
    const { client } = env.connect()
    const live = subscribeWs(client, USERS)
    await live.next()
    const [user] = await env.backend.prisma.user.findMany({ orderBy: { id: 'asc' }, take: 1 })
    await env.backend.prisma.tag.create({ data: { name: 'unrelated' } })
    // Same value: the extension publishes no change, and the result would be equal anyway.
    await env.backend.prisma.user.update({ where: { id: user!.id }, data: { name: user!.name } })
    // A post is read by no field of this query either.
    await env.backend.prisma.post.create({ data: { title: 'not read', authorId: user!.id } })
    // The next result is the one this write makes: nothing was sent in between.
    await env.backend.prisma.user.update({ where: { id: user!.id }, data: { name: 'marker' } })
    const next = await live.next()
    expect(next.data!.users[0].name).toBe('marker')
    expect(live.received).toHaveLength(2)
    live.stop()
  })

  it('should update a user’s posts relation when a post is created for them', async () => {
    const author = await env.backend.prisma.user.create({ data: { email: 'author@live.test', name: 'author' } })
    const { client } = env.connect()
    const live = subscribeWs(client, `query @live { user(id: "${author.id}") { name posts { title } } }`)
    expect((await live.next()).data).toEqual({ user: { name: 'author', posts: [] } })
    await postGraphQL(
      env.gateway.url,
      `mutation { createPost(data: { title: "first", authorId: "${author.id}" }) { id } }`,
    )
    expect((await live.next()).data).toEqual({ user: { name: 'author', posts: [{ title: 'first' }] } })
    await env.backend.prisma.post.create({ data: { title: 'second', authorId: author.id } })
    expect((await live.next()).data).toEqual({
      user: { name: 'author', posts: [{ title: 'first' }, { title: 'second' }] },
    })
    live.stop()
  })

  it('should answer a query without @live once, and a query with @live(if: false) once', async () => {
    const { client } = env.connect()
    const plain = await executeWs(client, '{ users { id } }')
    expect(plain.errors).toBeUndefined()
    const off = await executeWs(client, 'query ($live: Boolean) @live(if: $live) { users { id } }', { live: false })
    expect(off).toEqual(plain)
    expect(env.gateway.live.memberCount).toBe(0)
  })

  it('should execute once per change for every client holding the same query, on one or several connections', async () => {
    const clients = [env.connect(), env.connect()].map(({ client }) => client)
    const lives = [subscribeWs(clients[0]!, USERS), subscribeWs(clients[0]!, USERS), subscribeWs(clients[1]!, USERS)]
    const first = await Promise.all(lives.map((live) => live.next()))
    expect(new Set(first.map((result) => JSON.stringify(result))).size).toBe(1)
    expect(env.gateway.live.groupCount).toBe(1)
    const before = env.gateway.live.executions
    const metricsBefore = await scrape(env.gateway.url)
    expect(metricsBefore.get('mizzen_subscriptions{kind="live"}')).toBe(3)
    await env.backend.prisma.user.create({ data: { email: 'shared@live.test', name: 'shared' } })
    const next = await Promise.all(lives.map((live) => live.next()))
    expect(new Set(next.map((result) => JSON.stringify(result))).size).toBe(1)
    expect(env.gateway.live.executions - before).toBe(1)
    const metricsAfter = await scrape(env.gateway.url)
    expect(
      metricsAfter.get('mizzen_deliveries_total{kind="live"}')! -
        metricsBefore.get('mizzen_deliveries_total{kind="live"}')!,
    ).toBe(3)
    for (const live of lives) live.stop()
    await waitForLive(env.gateway, 0)
    expect((await scrape(env.gateway.url)).get('mizzen_subscriptions{kind="live"}')).toBe(0)
  })

  it('should coalesce a burst of writes into few executions, the last result equal to a fresh query', async () => {
    const { client } = env.connect()
    const live = subscribeWs(client, USERS)
    await live.next()
    const before = env.gateway.live.executions
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        env.backend.prisma.user.create({ data: { email: `burst${i}@live.test`, name: `burst ${i}` } }),
      ),
    )
    const fresh = await plainUsers()
    await settled(() => expect(live.received.at(-1)).toEqual(fresh))
    // 30 commits, one group: a handful of executions (the throttle's pace), not 30.
    const executions = env.gateway.live.executions - before
    console.info(`live burst: 30 concurrent creates, ${executions} executions, ${live.received.length - 1} results`)
    expect(executions).toBeLessThan(30)
    live.stop()
  })

  it('should count a live query as a subscription for the per-connection limit', async () => {
    const { client } = env.connect()
    const lives = [0, 1, 2].map(() => subscribeWs(client, USERS))
    await Promise.all(lives.map((live) => live.next()))
    const refused = subscribeWs(client, USERS)
    await refused.completed
    expect(refused.received[0]!.errors![0]).toMatchObject({ extensions: { code: 'RATE_LIMITED' } })
    lives[0]!.stop()
    await waitForLive(env.gateway, 2)
    const again = subscribeWs(client, USERS)
    expect((await again.next()).data).toBeDefined()
    for (const live of [...lives, again]) live.stop()
  })

  it('should refuse @live on fields that read no model, at validation', async () => {
    const { client } = env.connect()
    const live = subscribeWs(client, 'query @live { users { id } connection { id } }')
    await live.completed
    expect(live.received[0]!.errors![0]!.message).toMatch(/"connection" reads no model/)
    const overHttp = await postGraphQL(env.gateway.url, 'query @live { mizzenVersion }')
    expect(overHttp.errors![0]).toMatchObject({
      message: expect.stringMatching(/"mizzenVersion" reads no model/),
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    })
  })

  it('should answer bad input once, as the plain query, and a malformed directive at validation', async () => {
    const { client } = env.connect()
    const tooMany = subscribeWs(client, 'query @live { users(take: 5000) { id } }')
    await tooMany.completed
    expect(tooMany.received).toHaveLength(1)
    expect(tooMany.received[0]!.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT' })
    const badThrottle = subscribeWs(client, 'query @live(throttle: "soon") { users { id } }')
    await badThrottle.completed
    expect(badThrottle.received[0]!.errors![0]!.message).toMatch(/Int cannot represent/)
    const onMutation = subscribeWs(client, 'mutation @live { deleteUser(id: "1") { id } }')
    await onMutation.completed
    expect(onMutation.received[0]!.errors![0]!.message).toMatch(/may not be used on MUTATION/)
    expect(env.gateway.live.memberCount).toBe(0)
  })

  it('should let go of every live query and group when clients vanish without completing', async () => {
    const sockets = await Promise.all(Array.from({ length: 10 }, () => env.connectRaw()))
    for (const [i, socket] of sockets.entries())
      socket.send({ id: '1', type: 'subscribe', payload: { query: i % 2 ? USERS : 'query @live { posts { id } }' } })
    await waitForLive(env.gateway, 10)
    expect(env.gateway.live.groupCount).toBe(2)
    for (const socket of sockets) socket.socket.terminate()
    await waitForLive(env.gateway, 0)
    expect(env.gateway.live.groupCount).toBe(0)
  })

  describe('patches (@n1ru4l/graphql-live-query-patch, JSON patch)', () => {
    it('should send revision 1 complete, then JSON patches that the n1ru4l client applies to the fresh result', async () => {
      const { client } = env.connect()
      const raw: Record<string, any>[] = []
      const source = (async function* () {
        for await (const message of client.iterate({ query: USERS, extensions: { livePatch: 'json-patch' } })) {
          raw.push(message)
          yield message
        }
      })()
      const applied = applyLiveQueryJSONPatch(source)[Symbol.asyncIterator]()
      expect((await applied.next()).value).toEqual(await plainUsers())
      expect(raw[0]).toMatchObject({ revision: 1, data: expect.any(Object) })
      const created = await env.backend.prisma.user.create({ data: { email: 'patch@live.test', name: 'patched' } })
      expect((await applied.next()).value).toEqual(await plainUsers())
      await env.backend.prisma.user.update({ where: { id: created.id }, data: { name: 'patched again' } })
      expect((await applied.next()).value).toEqual(await plainUsers())
      expect(raw.slice(1).map(({ revision, data }) => ({ revision, data }))).toEqual([
        { revision: 2, data: undefined },
        { revision: 3, data: undefined },
      ])
      const last = (await plainUsers()).data!.users.length - 1
      expect(raw[2]!.patch).toEqual([{ op: 'replace', path: `/users/${last}/name`, value: 'patched again' }])
      await applied.return?.()
      await waitForLive(env.gateway, 0)
    })

    it('should give a client that asks for patches and one that does not the same group, each its own form', async () => {
      const { client } = env.connect()
      const patches: Record<string, unknown>[] = []
      const stopPatched = client.subscribe(
        { query: USERS, extensions: { livePatch: 'json-patch' } },
        {
          next: (message) => void patches.push(message as Record<string, unknown>),
          error: () => {},
          complete: () => {},
        },
      )
      const plain = subscribeWs(client, USERS)
      await plain.next()
      await settled(() => expect(patches).toHaveLength(1))
      expect(env.gateway.live.groupCount).toBe(1)
      await env.backend.prisma.user.create({ data: { email: 'both@live.test', name: 'both' } })
      const next = await plain.next()
      await settled(() => expect(patches).toHaveLength(2))
      expect(next.data!.users.at(-1).name).toBe('both')
      expect(patches[1]).toEqual({
        patch: [{ op: 'add', path: `/users/${next.data!.users.length - 1}`, value: next.data!.users.at(-1) }],
        revision: 2,
      })
      stopPatched()
      plain.stop()
    })

    it('should refuse an unknown patch format with BAD_USER_INPUT', async () => {
      const { client } = env.connect()
      const errors = await new Promise<unknown>((resolve) =>
        client.subscribe(
          { query: USERS, extensions: { livePatch: 'merge-patch' } },
          { next: () => {}, error: resolve, complete: () => resolve(undefined) },
        ),
      )
      expect(errors).toEqual([
        expect.objectContaining({
          message: 'extensions.livePatch must be one of "json-patch", got "merge-patch"',
          extensions: { code: 'BAD_USER_INPUT' },
        }),
      ])
      expect(env.gateway.live.memberCount).toBe(0)
    })
  })

  describe('over HTTP', () => {
    it('should stream a live query over SSE: the result, then each new one', async () => {
      const controller = new AbortController()
      const response = await fetch(env.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: USERS }),
        signal: controller.signal,
      })
      expect(response.headers.get('content-type')).toMatch(/text\/event-stream/)
      const events = sseEvents(response.body!)
      expect(await events.next()).toEqual(await plainUsers())
      await waitForLive(env.gateway, 1)
      await env.backend.prisma.user.create({ data: { email: 'sse@live.test', name: 'over sse' } })
      const next = await events.next()
      expect(next.data!.users.at(-1).name).toBe('over sse')
      controller.abort()
      await waitForLive(env.gateway, 0)
    })

    it('should stream patches over SSE to a client that asks for them', async () => {
      const controller = new AbortController()
      const response = await fetch(env.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: USERS, extensions: { livePatch: 'json-patch' } }),
        signal: controller.signal,
      })
      const events = sseEvents(response.body!)
      const first = (await events.next()) as Record<string, any>
      expect(first).toEqual({ ...(await plainUsers()), revision: 1 })
      await waitForLive(env.gateway, 1)
      await env.backend.prisma.user.create({ data: { email: 'sse-patch@live.test', name: 'sse patch' } })
      const patch = (await events.next()) as Record<string, any>
      expect(patch).toMatchObject({ revision: 2, patch: [{ op: 'add', value: { name: 'sse patch' } }] })
      expect(patch.data).toBeUndefined()
      controller.abort()
      await waitForLive(env.gateway, 0)
    })

    it('should answer a plain JSON POST of a live query with 406 and an error saying how to ask for it', async () => {
      const response = await fetch(env.gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
        body: JSON.stringify({ query: USERS }),
      })
      expect(response.status).toBe(406)
      expect(await response.json()).toEqual({
        errors: [{ message: notStreamableMessage, extensions: { code: 'BAD_USER_INPUT' } }],
      })
      expect(env.gateway.live.memberCount).toBe(0)
    })
  })
})

describe('live queries under the example policies', () => {
  const env = useFixture({
    backend: true,
    gateway: { auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET }, policies: examplePolicies },
  })

  it('should refuse an anonymous live users query with FORBIDDEN, as the plain query, and complete', async () => {
    const { client } = env.connect()
    // Aligned so that the error's location is the same in both.
    const plain = await executeWs(client, 'query       { users { id } }')
    expect(plain.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN' })
    const live = subscribeWs(client, 'query @live { users { id } }')
    await live.completed
    expect(live.received).toEqual([plain])
    expect(env.gateway.live.memberCount).toBe(0)
  })

  it('should run every execution under the viewer’s policies: a post that stops being readable leaves', async () => {
    const alice = await env.backend.prisma.user.create({ data: { email: 'alice@policy.test', name: 'alice' } })
    const bob = await env.backend.prisma.user.create({ data: { email: 'bob@policy.test', name: 'bob' } })
    const post = await env.backend.prisma.post.create({
      data: { title: 'by bob', published: true, authorId: bob.id },
    })
    await env.backend.prisma.post.create({ data: { title: 'alice draft', authorId: alice.id } })
    const { client } = env.connect(bearer(await userToken(String(alice.id))))
    const live = subscribeWs(client, 'query @live { posts(orderBy: [{ id: asc }]) { title } }')
    expect((await live.next()).data!.posts).toEqual([{ title: 'by bob' }, { title: 'alice draft' }])
    await env.backend.prisma.post.update({ where: { id: post.id }, data: { published: false } })
    expect((await live.next()).data!.posts).toEqual([{ title: 'alice draft' }])
    // Bob's drafts stay out of alice's result: nothing to send for them.
    await env.backend.prisma.post.create({ data: { title: 'bob draft', authorId: bob.id } })
    await env.backend.prisma.post.create({ data: { title: 'alice second', authorId: alice.id } })
    expect((await live.next()).data!.posts).toEqual([{ title: 'alice draft' }, { title: 'alice second' }])
    expect(live.received).toHaveLength(3)
    live.stop()
  })

  it('should share a group between viewers whose policies read the same, and not between others', async () => {
    const token = (sub: string) => userToken(sub)
    const lives = await Promise.all(
      ['900', '901'].map(async (sub) =>
        subscribeWs(env.connect(bearer(await token(sub))).client, 'query @live { tags { name } }'),
      ),
    )
    const service = subscribeWs(env.connect(bearer(SERVICE_KEY)).client, 'query @live { tags { name } }')
    await Promise.all([...lives, service].map((live) => live.next()))
    // Tags are open to all: two users read them alike and share; the key holds the role, so the service has its own.
    expect(env.gateway.live.groupCount).toBe(2)
    const posts = await Promise.all(
      ['900', '901'].map(async (sub) =>
        subscribeWs(env.connect(bearer(await token(sub))).client, 'query @live { posts { title } }'),
      ),
    )
    await Promise.all(posts.map((live) => live.next()))
    // Each user's row filter on posts names them: one group each.
    expect(env.gateway.live.groupCount).toBe(4)
    for (const live of [...lives, service, ...posts]) live.stop()
  })
})

/** Reads `next` events of a server-sent event stream as results. */
function sseEvents(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  return {
    async next(): Promise<ExecutionResult<Record<string, any>>> {
      for (;;) {
        const match = /event: next\ndata: (.*)\n\n/.exec(buffer)
        if (match) {
          buffer = buffer.slice(match.index + match[0].length)
          return JSON.parse(match[1]!)
        }
        const { value, done } = await reader.read()
        if (done) throw new Error('the stream ended')
        buffer += decoder.decode(value, { stream: true })
      }
    },
  }
}
