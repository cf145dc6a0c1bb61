import { beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { executeWs, postGraphQL, subscribeWs, type Subscription, type WsClient } from './helpers/clients.ts'
import { eachDatabase, useFixture } from './helpers/fixture.ts'
import { waitForSubscribers, type TestGateway } from './helpers/gateway.ts'
import type { RealtimeFixture } from './helpers/realtime.ts'

const EVENT_FIELDS = 'verb recordId updatedFields attribute addedIds removedIds data at'

eachDatabase('model subscriptions on $provider', (database) => {
  const env = useFixture({ database, backend: true })
  let gateway: TestGateway
  let ws: WsClient
  /** A backend service: its own Prisma client with the realtime extension, on the gateway's bus. */
  let backend: RealtimeFixture
  let n = 0
  const email = () => `s${++n}@example.com`

  const gql = async (query: string, variables?: Record<string, unknown>) => {
    const result = await postGraphQL(gateway.url, query, variables)
    if (result.errors) throw new Error(JSON.stringify(result.errors))
    return result.data!
  }
  const createUser = async (name: string) =>
    (
      await gql('mutation ($data: UserCreateInput!) { createUser(data: $data) { id } }', {
        data: { email: email(), name },
      })
    ).createUser.id as string
  const subscribe = (query: string, variables?: Record<string, unknown>): Subscription<any> =>
    subscribeWs(ws.client, query, variables)
  const attached = (count: number) => waitForSubscribers(gateway, count)
  // Each test starts when the previous one's subscriptions are gone.
  beforeEach(() => attached(0))

  beforeAll(async () => {
    gateway = env.gateway
    backend = env.backend
    ws = env.connect()
    await ws.ack
  })

  it('should deliver CREATED, UPDATED and DELETED for writes made over HTTP', async () => {
    const events = subscribe(`subscription { userEvents { ${EVENT_FIELDS} node { id name } previous { name } } }`)
    await attached(1)
    const id = await createUser('Ada')
    await gql(`mutation { updateUser(id: "${id}", data: { name: "Ada Lovelace" }) { id } }`)
    await gql(`mutation { deleteUser(id: "${id}") { id name } }`)
    const created = (await events.next()).data!.userEvents
    const updated = (await events.next()).data!.userEvents
    const deleted = (await events.next()).data!.userEvents
    expect(created).toMatchObject({ verb: 'CREATED', recordId: id, node: { id, name: 'Ada' }, previous: null })
    expect(updated).toMatchObject({
      verb: 'UPDATED',
      recordId: id,
      node: { name: 'Ada Lovelace' },
      previous: { name: 'Ada' },
      updatedFields: ['name'],
    })
    expect(deleted).toMatchObject({ verb: 'DELETED', recordId: id, node: null, previous: { name: 'Ada Lovelace' } })
    expect(new Date(deleted.at).getTime()).not.toBeNaN()
    events.stop()
  })

  it('should shape events for normalising caches: a cursor per event, recordId and no id, previous as UserPrevious', async () => {
    const events = subscribe(
      'subscription { userEvents { __typename cursor verb recordId node { __typename id name } previous { __typename name } } }',
    )
    await attached(1)
    const id = await createUser('Old')
    await gql(`mutation { updateUser(id: "${id}", data: { name: "New" }) { id } }`)
    const created = (await events.next()).data!.userEvents
    const updated = (await events.next()).data!.userEvents
    expect(created).toEqual({
      __typename: 'UserEvent',
      cursor: expect.any(String),
      verb: 'CREATED',
      recordId: id,
      node: { __typename: 'User', id, name: 'Old' },
      previous: null,
    })
    expect(updated).toEqual({
      __typename: 'UserEvent',
      cursor: expect.any(String),
      verb: 'UPDATED',
      recordId: id,
      node: { __typename: 'User', id, name: 'New' },
      previous: { __typename: 'UserPrevious', name: 'Old' },
    })
    expect(updated.cursor).not.toBe(created.cursor)
    events.stop()
  })

  it("should give events no id field, and previous only the model's scalar and enum fields but id", async () => {
    const type = async (name: string) =>
      (await gql(`{ __type(name: "${name}") { fields { name type { kind name ofType { name } } } } }`)).__type
        .fields as { name: string; type: { kind: string; name: string | null; ofType: { name: string } | null } }[]
    const eventFields = (await type('PostEvent')).map((field) => field.name)
    expect(eventFields).not.toContain('id')
    expect(eventFields).toEqual(expect.arrayContaining(['cursor', 'recordId', 'node', 'previous']))
    const previous = await type('PostPrevious')
    expect(previous.map((field) => field.name).sort()).toEqual(['authorId', 'body', 'published', 'title'])
    expect(previous.find((field) => field.name === 'authorId')!.type).toEqual({
      kind: 'NON_NULL',
      name: null,
      ofType: { name: 'ID' },
    })
  })

  it('should deliver association events for posts and tags', async () => {
    const one = await createUser('one')
    const two = await createUser('two')
    const userEvents = subscribe(
      `subscription ($ids: [ID!]) { userEvents(ids: $ids, verbs: [ADDED_TO, REMOVED_FROM]) { verb recordId attribute addedIds removedIds node { name } } }`,
      { ids: [one, two] },
    )
    const tagEvents = subscribe('subscription { tagEvents(verbs: [ADDED_TO]) { verb recordId attribute addedIds } }')
    await attached(2)
    const post = (
      await gql(`mutation { createPost(data: { title: "Hello", authorId: "${one}" }) { id author { id } } }`)
    ).createPost
    expect((await userEvents.next()).data!.userEvents).toEqual({
      verb: 'ADDED_TO',
      recordId: one,
      attribute: 'posts',
      addedIds: [post.id],
      removedIds: null,
      node: { name: 'one' },
    })

    await gql(`mutation { updatePost(id: "${post.id}", data: { author: { connect: { id: "${two}" } } }) { id } }`)
    expect((await userEvents.next()).data!.userEvents).toMatchObject({
      verb: 'REMOVED_FROM',
      recordId: one,
      attribute: 'posts',
      removedIds: [post.id],
    })
    expect((await userEvents.next()).data!.userEvents).toMatchObject({
      verb: 'ADDED_TO',
      recordId: two,
      attribute: 'posts',
      addedIds: [post.id],
    })

    const tag = (await gql(`mutation { createTag(data: { name: "tag${n++}" }) { id } }`)).createTag
    const postEvents = subscribe(
      `subscription ($ids: [ID!]) { postEvents(ids: $ids, verbs: [ADDED_TO]) { verb recordId attribute addedIds } }`,
      { ids: [post.id] },
    )
    await attached(3)
    await gql(`mutation { updatePost(id: "${post.id}", data: { tags: { connect: [{ id: "${tag.id}" }] } }) { id } }`)
    expect((await postEvents.next()).data!.postEvents).toEqual({
      verb: 'ADDED_TO',
      recordId: post.id,
      attribute: 'tags',
      addedIds: [tag.id],
    })
    expect((await tagEvents.next()).data!.tagEvents).toEqual({
      verb: 'ADDED_TO',
      recordId: tag.id,
      attribute: 'posts',
      addedIds: [post.id],
    })
    for (const s of [userEvents, tagEvents, postEvents]) s.stop()
  })

  it('should deliver writes made by a backend service through the extension, after commit, in order', async () => {
    const events = subscribe('subscription { userEvents { verb recordId node { name } previous { name } } }')
    await attached(1)
    await expect(
      backend.prisma.$transaction(async (tx) => {
        await tx.user.create({ data: { email: email(), name: 'never' } })
        throw new Error('rolled back')
      }),
    ).rejects.toThrow('rolled back')
    const made = await backend.prisma.$transaction(async (tx) => {
      const users = []
      for (const name of ['b1', 'b2', 'b3']) users.push(await tx.user.create({ data: { email: email(), name } }))
      return users
    })
    await backend.prisma.user.updateMany({ where: { id: { in: made.map((u) => u.id) } }, data: { name: 'same' } })
    const received = []
    for (let i = 0; i < 6; i++) received.push((await events.next()).data!.userEvents)
    expect(received.map((e) => [e.verb, e.node?.name, e.previous?.name ?? null])).toEqual([
      ['CREATED', 'b1', null],
      ['CREATED', 'b2', null],
      ['CREATED', 'b3', null],
      ['UPDATED', 'same', 'b1'],
      ['UPDATED', 'same', 'b2'],
      ['UPDATED', 'same', 'b3'],
    ])
    expect(received.some((e) => e.node?.name === 'never')).toBe(false)
    events.stop()
  })

  it('should deliver a post entering and leaving a where filter, and nothing for others', async () => {
    const author = await createUser('writer')
    const published = subscribe(
      'subscription { postEvents(where: { published: { equals: true } }) { verb recordId node { published title } previous { published } } }',
    )
    await attached(1)
    const draft = (await gql(`mutation { createPost(data: { title: "draft", authorId: "${author}" }) { id } }`))
      .createPost.id
    const other = (await gql(`mutation { createPost(data: { title: "other", authorId: "${author}" }) { id } }`))
      .createPost.id
    await gql(`mutation { updatePost(id: "${other}", data: { title: "other 2" }) { id } }`)
    await gql(`mutation { updatePost(id: "${draft}", data: { published: true }) { id } }`)
    await gql(`mutation { updatePost(id: "${draft}", data: { published: false }) { id } }`)
    const entered = (await published.next()).data!.postEvents
    const left = (await published.next()).data!.postEvents
    expect(entered).toMatchObject({
      verb: 'UPDATED',
      recordId: draft,
      node: { published: true },
      previous: { published: false },
    })
    expect(left).toMatchObject({
      verb: 'UPDATED',
      recordId: draft,
      node: { published: false },
      previous: { published: true },
    })
    expect(published.received).toHaveLength(2)
    published.stop()
  })

  it('should resolve relations of node on delivery', async () => {
    const author = await createUser('related')
    const events = subscribe(
      'subscription { postEvents(verbs: [CREATED]) { node { title author { name posts { title } } } } }',
    )
    await attached(1)
    await gql(`mutation { createPost(data: { title: "with author", authorId: "${author}" }) { id } }`)
    expect((await events.next()).data!.postEvents.node).toEqual({
      title: 'with author',
      author: { name: 'related', posts: [{ title: 'with author' }] },
    })
    events.stop()
  })

  it('should complete a subscription to ids once all of them are deleted', async () => {
    const a = await createUser('a')
    const b = await createUser('b')
    const events = subscribe('subscription ($ids: [ID!]) { userEvents(ids: $ids) { verb recordId } }', { ids: [a, b] })
    await attached(1)
    await gql(`mutation { deleteUser(id: "${a}") { id } }`)
    await gql(`mutation { deleteUser(id: "${b}") { id } }`)
    await events.completed
    expect(events.received.map((r) => r.data!.userEvents)).toEqual([
      { verb: 'DELETED', recordId: a },
      { verb: 'DELETED', recordId: b },
    ])
  })

  it('should deliver publishUser data as MESSAGE to subscribers of those records only', async () => {
    const a = await createUser('msg a')
    const b = await createUser('msg b')
    const events = subscribe(
      'subscription ($ids: [ID!]) { userEvents(ids: $ids) { verb recordId data node { name } } }',
      { ids: [a] },
    )
    await attached(1)
    const result = await gql('mutation ($ids: [ID!]!) { publishUser(ids: $ids, data: { text: "hi" }) }', {
      ids: [b, a],
    })
    expect(result.publishUser).toEqual([b, a])
    expect((await events.next()).data!.userEvents).toEqual({
      verb: 'MESSAGE',
      recordId: a,
      data: { text: 'hi' },
      node: { name: 'msg a' },
    })
    expect(events.received).toHaveLength(1)
    events.stop()
  })

  it('should deliver over SSE as well', async () => {
    const controller = new AbortController()
    const response = await fetch(gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription { tagEvents(verbs: [CREATED]) { verb node { name } } }' }),
      signal: controller.signal,
    })
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/)
    const reader = response.body!.getReader()
    await attached(1)
    await gql(`mutation { createTag(data: { name: "sse${n++}" }) { id } }`)
    let text = ''
    while (!text.includes('"verb":"CREATED"')) text += new TextDecoder().decode((await reader.read()).value)
    expect(text).toMatch(/"node":\{"name":"sse\d+"\}/)
    controller.abort()
  })

  describe('bad input', () => {
    it.each([
      [
        'a where on an unknown field',
        'subscription { userEvents(where: { nickname: { equals: "x" } }) { recordId } }',
        /"nickname" is not defined by type "UserWhereInput"/,
      ],
      [
        'an invalid verb',
        'subscription { userEvents(verbs: [EXPLODED]) { recordId } }',
        /Value "EXPLODED" does not exist in "ModelVerb" enum/,
      ],
      ['a malformed id', 'subscription { userEvents(ids: ["x"]) { recordId } }', /User id: "x" is not a valid id/],
      ['an empty ids list', 'subscription { userEvents(ids: []) { recordId } }', /ids must name at least one User/],
    ])('should refuse %s over HTTP and WebSocket, and keep the socket usable', async (_what, query, message) => {
      const overHttp = await postGraphQL(gateway.url, query)
      expect(overHttp.errors?.[0]?.message).toMatch(message)
      const overWs = subscribe(query)
      await overWs.completed
      expect(
        overWs.received
          .flatMap((r) => r.errors ?? [])
          .map((e) => e.message)
          .join('\n'),
      ).toMatch(message)
      expect(await executeWs(ws.client, '{ mizzenVersion }')).toMatchObject({
        data: { mizzenVersion: expect.any(String) },
      })
    })

    it('should answer NOT_FOUND for updating or deleting a missing id, and publish nothing', async () => {
      const events = subscribe('subscription { userEvents { verb recordId } }')
      await attached(1)
      for (const mutation of ['updateUser(id: "987654", data: { name: "x" })', 'deleteUser(id: "987654")']) {
        const result = await postGraphQL(gateway.url, `mutation { ${mutation} { id } }`)
        expect(result.errors?.[0]).toMatchObject({
          message: 'User 987654 not found',
          extensions: { code: 'NOT_FOUND' },
        })
      }
      const marker = await createUser('marker')
      expect((await events.next()).data!.userEvents).toEqual({ verb: 'CREATED', recordId: marker })
      events.stop()
    })

    it('should refuse publishUser data over 64 KiB, naming the limit', async () => {
      const id = await createUser('too much')
      const result = await postGraphQL(
        gateway.url,
        'mutation ($ids: [ID!]!, $data: JSON!) { publishUser(ids: $ids, data: $data) }',
        { ids: [id], data: 'x'.repeat(64 * 1024) },
      )
      expect(result.errors?.[0]).toMatchObject({
        message: 'data must be at most 65536 bytes of JSON, got 65538',
        extensions: { code: 'BAD_USER_INPUT', limit: 65536 },
      })
    })

    it("should delete a user's posts with the user: the example's Post.author cascades", async () => {
      // A foreign key that refuses the delete answers CONFLICT (test/errors.test.ts); this one cascades.
      const author = await createUser('takes posts along')
      const post = (await gql(`mutation { createPost(data: { title: "gone", authorId: "${author}" }) { id } }`))
        .createPost.id
      const result = await postGraphQL(gateway.url, `mutation { deleteUser(id: "${author}") { id } }`)
      expect(result.errors).toBeUndefined()
      expect(await gql(`{ post(id: "${post}") { id } }`)).toEqual({ post: null })
    })

    it.each([
      [
        'a duplicate unique field',
        (email: string) => `createUser(data: { email: "${email}", name: "dup" })`,
        'CONFLICT',
        /a User with this email already exists/,
      ],
      [
        'a missing required relation',
        () => 'createPost(data: { title: "orphan" })',
        'BAD_USER_INPUT',
        /Post.author is required/,
      ],
      [
        'a related record that does not exist',
        () => 'createPost(data: { title: "x", authorId: "999999" })',
        'BAD_USER_INPUT',
        /related record does not exist/,
      ],
      [
        'disconnecting a required relation',
        () => 'updatePost(id: "1", data: { author: { disconnect: true } })',
        'BAD_USER_INPUT',
        /Post.author is required and cannot be disconnected/,
      ],
    ])('should refuse %s with a clear error', async (_what, mutation, code, message) => {
      const taken = email()
      await gql(`mutation { createUser(data: { email: "${taken}", name: "taken" }) { id } }`)
      const result = await postGraphQL(gateway.url, `mutation { ${mutation(taken)} { id } }`)
      expect(result.errors?.[0]?.extensions?.code).toBe(code)
      expect(result.errors?.[0]?.message).toMatch(message)
    })
  })
})
