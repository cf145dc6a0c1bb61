/** The example app's policies (docs/auth-and-policies.md), on both databases. */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { examplePolicies } from '../examples/app/policies.ts'
import { bearer, JWT_SECRET, SERVICE_KEY, userToken } from './helpers/auth.ts'
import { connectWs, executeWs, postGraphQL, subscribeWs, type WsClient } from './helpers/clients.ts'
import { eachDatabase, useFixture } from './helpers/fixture.ts'
import { waitForSubscribers, type TestGateway } from './helpers/gateway.ts'

eachDatabase('example policies on $provider', (database) => {
  const env = useFixture({
    database,
    gateway: { auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET }, policies: examplePolicies },
  })
  let gateway: TestGateway
  let alice: { id: number }
  let bob: { id: number }
  let aliceWs: WsClient
  let aliceToken: string
  const service = { authorization: `Bearer ${SERVICE_KEY}` }

  const attached = (count: number) => waitForSubscribers(gateway, count)
  const asService = async (query: string) => {
    const result = await postGraphQL(gateway.url, query, undefined, service)
    if (result.errors) throw new Error(JSON.stringify(result.errors))
    return result.data!
  }

  beforeAll(async () => {
    gateway = env.gateway
    alice = await gateway.prisma.user.create({ data: { email: 'alice@example.com', name: 'Alice' } })
    bob = await gateway.prisma.user.create({ data: { email: 'bob@example.com', name: 'Bob' } })
    aliceToken = await userToken(String(alice.id))
    aliceWs = env.connect(bearer(aliceToken))
    await aliceWs.ack
  })
  beforeEach(() => attached(0))

  it('should never show a user someone else’s unpublished post, nor its previous state, and show its removal when unpublished', async () => {
    const events = subscribeWs(
      aliceWs.client,
      'subscription { postEvents { verb recordId node { title published } previous { title published } } }',
    )
    await attached(1)
    const hidden = (
      await asService(`mutation { createPost(data: { title: "bob draft", authorId: "${bob.id}" }) { id } }`)
    ).createPost.id
    await asService(`mutation { updatePost(id: "${hidden}", data: { title: "bob draft 2" }) { id } }`)
    const open = (
      await asService(
        `mutation { createPost(data: { title: "bob public", published: true, authorId: "${bob.id}" }) { id } }`,
      )
    ).createPost.id
    await asService(
      `mutation { updatePost(id: "${open}", data: { title: "secret new title", published: false }) { id } }`,
    )
    await asService(`mutation { updatePost(id: "${open}", data: { published: true }) { id } }`)
    const own = (
      await asService(`mutation { createPost(data: { title: "alice draft", authorId: "${alice.id}" }) { id } }`)
    ).createPost.id

    const received = []
    for (let i = 0; i < 4; i++) received.push((await events.next()).data!.postEvents)
    expect(received).toEqual([
      { verb: 'CREATED', recordId: open, node: { title: 'bob public', published: true }, previous: null },
      // Unpublished: a removal with the state Alice could see, never the new title.
      { verb: 'DELETED', recordId: open, node: null, previous: { title: 'bob public', published: true } },
      { verb: 'CREATED', recordId: open, node: { title: 'secret new title', published: true }, previous: null },
      { verb: 'CREATED', recordId: own, node: { title: 'alice draft', published: false }, previous: null },
    ])
    expect(JSON.stringify(events.received)).not.toContain('bob draft')
    events.stop()
  })

  it('should show a user only their own User record, in queries and events', async () => {
    const result = await postGraphQL(
      gateway.url,
      '{ users { name } bob: user(id: "' + bob.id + '") { name } }',
      undefined,
      bearer(aliceToken),
    )
    expect(result).toEqual({ data: { users: [{ name: 'Alice' }], bob: null } })
    const events = subscribeWs(aliceWs.client, 'subscription { userEvents { verb node { name } } }')
    await attached(1)
    await asService(`mutation { updateUser(id: "${bob.id}", data: { name: "Bobby" }) { id } }`)
    await asService(`mutation { updateUser(id: "${alice.id}", data: { name: "Alice L." }) { id } }`)
    expect((await events.next()).data!.userEvents).toEqual({ verb: 'UPDATED', node: { name: 'Alice L.' } })
    expect(events.received).toHaveLength(1)
    events.stop()
  })

  it('should refuse to resolve a related record the user may not read', async () => {
    await asService(`mutation { createPost(data: { title: "by bob", published: true, authorId: "${bob.id}" }) { id } }`)
    const result = await postGraphQL(
      gateway.url,
      '{ posts(where: { title: { equals: "by bob" } }) { title author { email } } }',
      undefined,
      bearer(aliceToken),
    )
    expect(result.errors?.[0]).toMatchObject({
      message: `not allowed to read User ${bob.id}`,
      extensions: { code: 'FORBIDDEN' },
      path: ['posts', 0, 'author'],
    })
  })

  it('should let anyone watch Tag, and only users watch Post', async () => {
    const anonymous = connectWs(gateway.wsUrl)
    await anonymous.ack
    const tags = subscribeWs(anonymous.client, 'subscription { tagEvents { verb node { name } } }')
    await attached(1)
    await asService('mutation { createTag(data: { name: "open" }) { id } }')
    expect((await tags.next()).data!.tagEvents).toEqual({ verb: 'CREATED', node: { name: 'open' } })
    const posts = subscribeWs(anonymous.client, 'subscription { postEvents { recordId } }')
    await posts.completed
    expect(posts.received[0]?.errors?.[0]).toMatchObject({
      message: 'anonymous clients may not read Post',
      extensions: { code: 'FORBIDDEN' },
    })
    tags.stop()
    await anonymous.client.dispose()
  })

  it('should refuse the same query the same way over HTTP, SSE and WebSocket', async () => {
    const query = '{ posts { id } }'
    const overHttp = await postGraphQL(gateway.url, query)
    const sse = await fetch(gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query }),
    })
    const overSse = await sse.text()
    const anonymous = connectWs(gateway.wsUrl)
    const overWs = await executeWs(anonymous.client, query)
    await anonymous.client.dispose()
    for (const errors of [overHttp.errors, overWs.errors, JSON.parse(/data: (\{.*\})/.exec(overSse)![1]!).errors]) {
      expect(errors?.[0]).toMatchObject({
        message: 'anonymous clients may not read Post',
        extensions: { code: 'FORBIDDEN' },
      })
    }
  })

  it('should keep writes and publish for services', async () => {
    for (const mutation of [
      `createPost(data: { title: "x", authorId: "${alice.id}" }) { id }`,
      `publishUser(ids: ["${alice.id}"], data: 1)`,
      `deleteUser(id: "${bob.id}") { id }`,
    ]) {
      const result = await postGraphQL(gateway.url, `mutation { ${mutation} }`, undefined, bearer(aliceToken))
      expect(result.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    }
    expect(await asService(`mutation { publishUser(ids: ["${alice.id}"], data: 1) }`)).toEqual({
      publishUser: [String(alice.id)],
    })
  })

  it('should refuse an anonymous broadcast with FORBIDDEN and accept a service one', async () => {
    const refused = await postGraphQL(
      gateway.url,
      'mutation { broadcast(rooms: ["funSockets"], event: "hello", data: "hi") { recipients } }',
    )
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    expect(
      await asService('mutation { broadcast(rooms: ["funSockets"], event: "hello", data: "hi") { recipients } }'),
    ).toEqual({ broadcast: { recipients: 0 } })
  })

  it('should let a user join open rooms and their own user room, but not reserved or others’ rooms', async () => {
    for (const [room, allowed] of [
      ['funSockets', true],
      [`user:${alice.id}`, true],
      [`user:${bob.id}`, false],
      ['staff', false],
      ['staff:ops', false],
    ] as const) {
      const joined = subscribeWs(aliceWs.client, 'subscription ($room: String!) { room(name: $room) { event } }', {
        room,
      })
      if (allowed) {
        await attached(1)
        joined.stop()
        await attached(0)
      } else {
        await joined.completed
        expect(joined.received[0]?.errors?.[0]).toMatchObject({
          message: `user ${alice.id} may not join room "${room}"`,
          extensions: { code: 'FORBIDDEN' },
        })
      }
    }
  })
})

describe('a model no policy names', () => {
  const env = useFixture({ gateways: 0 })
  it('should be closed to users and anonymous clients, and open to services', async () => {
    // Tag is left out of these policies, as a model just added to the schema would be.
    const gateway = await env.startGateway({
      auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET },
      policies: { models: { Post: { read: 'anonymous' } } },
    })
    for (const headers of [{}, bearer(await userToken('1'))]) {
      const refused = await postGraphQL(gateway.url, '{ tags { id } }', undefined, headers)
      expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    }
    expect(
      await postGraphQL(gateway.url, '{ tags { id } posts { id } }', undefined, {
        authorization: `Bearer ${SERVICE_KEY}`,
      }),
    ).toEqual({ data: { tags: [], posts: [] } })
    expect(await postGraphQL(gateway.url, '{ posts { id } }')).toEqual({ data: { posts: [] } })
    await gateway.close()
  })
})
