/**
 * The client recipes of examples/clients/ (docs/client-recipes.md), each run as written against
 * a real gateway with the example app's auth and policies: Apollo Client 4 and urql with
 * Graphcache, both normalising caches with their defaults, get `node` and `previous` intact and
 * keep successive events of one record distinct; graphql-ws (resuming after a dropped socket) and
 * Yoga's SSE receive the events. The codegen config's output is current, and docs/client-recipes.md shows the
 * recipes as they are.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Kind, OperationTypeNode, type DocumentNode } from 'graphql'
import { beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  createApolloClient,
  followUserEvents,
  watchLiveUsers as watchLiveUsersWithApollo,
  type UserEvent,
} from '../examples/clients/apollo.ts'
import { Users, UserEvents } from '../examples/clients/documents.ts'
import { connect, userEvents } from '../examples/clients/graphql-ws.ts'
import { connectSse, userEventsOverSse } from '../examples/clients/sse.ts'
import { createUrqlClient, watchLiveUsers as watchLiveUsersWithUrql } from '../examples/clients/urql.ts'
import { examplePolicies } from '../examples/app/policies.ts'
import { projectRoot } from '../examples/app/schema-variants.ts'
import { JWT_SECRET, SERVICE_KEY, userToken } from './helpers/auth.ts'
import { postGraphQL } from './helpers/clients.ts'
import { useFixture } from './helpers/fixture.ts'
import { settled, waitForSubscribers, type TestGateway } from './helpers/gateway.ts'

/** What a test sees of an event: the fields the recipes' document selects, less `at`. */
const eventOf = (verb: string, id: string, name: string | null, previousName: string | null, email: string) => ({
  verb,
  recordId: id,
  node: name === null ? null : { id, name, email },
  previous: previousName === null ? null : { name: previousName, email },
})

/** Reads an async iterable into an array as it goes; `done` settles when it ends. */
function collect<T>(iterable: AsyncIterable<T>) {
  const received: T[] = []
  const done = (async () => {
    for await (const item of iterable) received.push(item)
  })()
  return { received, done }
}

/** A subscription document as a query, to read its result from the cache (`ROOT_SUBSCRIPTION`). */
const asQuery = <T extends DocumentNode>(document: T): T => ({
  ...document,
  definitions: document.definitions.map((definition) =>
    definition.kind === Kind.OPERATION_DEFINITION ? { ...definition, operation: OperationTypeNode.QUERY } : definition,
  ),
})

describe('client recipes', () => {
  const env = useFixture({
    gateway: { auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET }, policies: examplePolicies },
  })
  let gateway: TestGateway
  let n = 0

  beforeAll(() => {
    gateway = env.gateway
  })

  const asService = async (query: string, variables?: Record<string, unknown>) => {
    const result = await postGraphQL(gateway.url, query, variables, { authorization: `Bearer ${SERVICE_KEY}` })
    if (result.errors) throw new Error(JSON.stringify(result.errors))
    return result.data!
  }
  /** A new user named `name` and a JWT of theirs (with the example policies they see only their own record). */
  const newUser = async (name: string) => {
    const email = `client${n++}@example.com`
    const { createUser } = await asService('mutation ($data: UserCreateInput!) { createUser(data: $data) { id } }', {
      data: { name, email },
    })
    const id = createUser.id as string
    return { id, email, token: await userToken(id) }
  }
  const rename = (id: string, name: string) =>
    asService('mutation ($id: ID!, $name: String!) { updateUser(id: $id, data: { name: $name }) { id } }', { id, name })
  const attached = (count: number) => waitForSubscribers(gateway, count)
  beforeEach(() => attached(0)) // the previous test's subscriptions are gone

  describe('Apollo Client 4 (InMemoryCache defaults)', () => {
    it('should get node and previous intact, in the result and in the cache, and keep successive events distinct', async () => {
      const { id, email, token } = await newUser('Old')
      const { client, close } = createApolloClient({ url: gateway.url, getToken: () => token })
      env.defer(close)
      expect((await client.query({ query: Users })).data?.users).toEqual([
        { __typename: 'User', id, name: 'Old', email },
      ])

      const events: UserEvent[] = []
      const stop = followUserEvents(client, (event) => events.push(event))
      env.defer(stop)
      await attached(1)
      await rename(id, 'New')
      await settled(() => expect(events).toHaveLength(1))
      expect(events[0]).toMatchObject(eventOf('UPDATED', id, 'New', 'Old', email))
      expect(events[0]!.updatedFields).toEqual(['name'])

      // The cache: the user's current state is `node`, the stored event keeps `previous`.
      expect(client.readQuery({ query: Users })?.users).toEqual([{ __typename: 'User', id, name: 'New', email }])
      const cached = client.readQuery({ query: asQuery(UserEvents), id: 'ROOT_SUBSCRIPTION' })?.userEvents
      expect(cached).toMatchObject(eventOf('UPDATED', id, 'New', 'Old', email))
      expect(cached?.cursor).toBe(events[0]!.cursor)

      await rename(id, 'Newer')
      await settled(() => expect(events).toHaveLength(2))
      expect(events[0]).toMatchObject(eventOf('UPDATED', id, 'New', 'Old', email))
      expect(events[1]).toMatchObject(eventOf('UPDATED', id, 'Newer', 'New', email))
      expect(events[1]!.cursor).not.toBe(events[0]!.cursor)
      expect(client.readQuery({ query: Users })?.users).toEqual([{ __typename: 'User', id, name: 'Newer', email }])
      expect(client.readQuery({ query: asQuery(UserEvents), id: 'ROOT_SUBSCRIPTION' })?.userEvents).toMatchObject(
        eventOf('UPDATED', id, 'Newer', 'New', email),
      )
      // One entry per record (User:<id>); none per event, and none per past state (no id: kept in its event).
      expect(Object.keys(client.cache.extract() as object).sort()).toEqual([
        'ROOT_QUERY',
        'ROOT_SUBSCRIPTION',
        `User:${id}`,
      ])
    })

    it('should add created users to the cached list and take deleted ones out of it', async () => {
      const { client, close } = createApolloClient({ url: gateway.url, getToken: () => SERVICE_KEY })
      env.defer(close)
      const before = (await client.query({ query: Users })).data!.users
      const events: UserEvent[] = []
      env.defer(followUserEvents(client, (event) => events.push(event)))
      await attached(1)
      const { id, email } = await newUser('Created')
      await settled(() => expect(events).toHaveLength(1))
      expect(events[0]).toMatchObject(eventOf('CREATED', id, 'Created', null, email))
      expect(client.readQuery({ query: Users })?.users).toEqual([
        ...before,
        { __typename: 'User', id, name: 'Created', email },
      ])
      await asService('mutation ($id: ID!) { deleteUser(id: $id) { id } }', { id })
      await settled(() => expect(events).toHaveLength(2))
      expect(events[1]).toMatchObject(eventOf('DELETED', id, null, 'Created', email))
      expect(client.readQuery({ query: Users })?.users).toEqual(before)
    })
  })

  describe('urql with Graphcache (defaults)', () => {
    it('should get node and previous intact from the cache, and keep successive events distinct', async () => {
      const { id, email, token } = await newUser('Old')
      const { client, close } = createUrqlClient({ url: gateway.url, getToken: () => token })
      env.defer(close)
      expect((await client.query(Users, {}).toPromise()).data?.users).toEqual([{ id, name: 'Old', email }])

      const results: { data?: { userEvents: UserEvent } }[] = []
      const subscription = client.subscription(UserEvents, {}).subscribe((result) => results.push(result))
      env.defer(() => subscription.unsubscribe())
      await attached(1)
      await rename(id, 'New')
      await settled(() => expect(results).toHaveLength(1))
      // Graphcache answers with what it wrote and reads back from its store.
      expect(results[0]!.data?.userEvents).toMatchObject(eventOf('UPDATED', id, 'New', 'Old', email))
      expect(client.readQuery(Users, {})?.data?.users).toEqual([{ id, name: 'New', email }])

      await rename(id, 'Newer')
      await settled(() => expect(results).toHaveLength(2))
      expect(results[0]!.data?.userEvents).toMatchObject(eventOf('UPDATED', id, 'New', 'Old', email))
      expect(results[1]!.data?.userEvents).toMatchObject(eventOf('UPDATED', id, 'Newer', 'New', email))
      expect(results[1]!.data?.userEvents.cursor).not.toBe(results[0]!.data?.userEvents.cursor)
      expect(client.readQuery(Users, {})?.data?.users).toEqual([{ id, name: 'Newer', email }])
    })

    it('should add created users to the cached list and take deleted ones out of it', async () => {
      const { client, close } = createUrqlClient({ url: gateway.url, getToken: () => SERVICE_KEY })
      env.defer(close)
      const before = (await client.query(Users, {}).toPromise()).data!.users
      const results: { data?: { userEvents: UserEvent } }[] = []
      const subscription = client.subscription(UserEvents, {}).subscribe((result) => results.push(result))
      env.defer(() => subscription.unsubscribe())
      await attached(1)
      const { id, email } = await newUser('Created')
      await settled(() => expect(results).toHaveLength(1))
      expect(client.readQuery(Users, {})?.data?.users).toEqual([...before, { id, name: 'Created', email }])
      await asService('mutation ($id: ID!) { deleteUser(id: $id) { id } }', { id })
      await settled(() => expect(results).toHaveLength(2))
      expect(results[1]!.data?.userEvents).toMatchObject(eventOf('DELETED', id, null, 'Created', email))
      expect(client.readQuery(Users, {})?.data?.users).toEqual(before)
    })
  })

  describe('live queries (query @live over graphql-ws)', () => {
    type ListedUser = { id: string; name: string; email: string }
    /** The fields the live document selects (urql's `__typename` is not enumerable, Apollo's is). */
    const fields = (users: readonly ListedUser[]) => users.map(({ id, name, email }) => ({ id, name, email }))
    const freshUsers = async () => (await asService('{ users(orderBy: [{ id: asc }]) { id name email } }')).users
    const recipes = [
      {
        name: 'Apollo Client 4',
        watch: (token: string, onUsers: (users: ListedUser[]) => void) => {
          const { client, close } = createApolloClient({ url: gateway.url, getToken: () => token })
          env.defer(close)
          return watchLiveUsersWithApollo(client, onUsers)
        },
      },
      {
        name: 'urql with Graphcache',
        watch: (token: string, onUsers: (users: ListedUser[]) => void) => {
          const { client, close } = createUrqlClient({ url: gateway.url, getToken: () => token })
          env.defer(close)
          return watchLiveUsersWithUrql(client, onUsers)
        },
      },
    ]
    const last = (lists: ListedUser[][]) => fields(lists.at(-1) ?? [])

    it.each(recipes)(
      'should hold the live users list with $name: created, renamed and deleted users',
      async ({ watch }) => {
        const lists: ListedUser[][] = []
        const stop = watch(SERVICE_KEY, (users) => lists.push(users))
        await settled(() => expect(lists.length).toBeGreaterThan(0))
        // Over the WebSocket: the gateway holds it as a live query.
        expect(gateway.live.memberCount).toBe(1)
        expect(last(lists)).toEqual(await freshUsers())
        const { id, email } = await newUser('Live')
        await settled(() => expect(last(lists)).toContainEqual({ id, name: 'Live', email }))
        await rename(id, 'Lively')
        await settled(() => expect(last(lists)).toContainEqual({ id, name: 'Lively', email }))
        await asService('mutation ($id: ID!) { deleteUser(id: $id) { id } }', { id })
        await settled(async () => expect(last(lists)).toEqual(await freshUsers()))
        expect(last(lists).some((user) => user.id === id)).toBe(false)
        stop()
        await settled(() => expect(gateway.live.memberCount).toBe(0))
      },
    )

    it.each(recipes)(
      'should apply the viewer’s policies with $name: a user’s live list holds their own record',
      async ({ watch }) => {
        const { id, email, token } = await newUser('Own')
        const lists: ListedUser[][] = []
        const stop = watch(token, (users) => lists.push(users))
        await settled(() => expect(last(lists)).toEqual([{ id, name: 'Own', email }]))
        await rename(id, 'Own renamed')
        await settled(() => expect(last(lists)).toEqual([{ id, name: 'Own renamed', email }]))
        stop()
        await settled(() => expect(gateway.live.memberCount).toBe(0))
      },
    )
  })

  describe('graphql-ws', () => {
    it('should receive events, and resume after a dropped socket with nothing missed or repeated', async () => {
      const { id, email, token } = await newUser('Old')
      const client = connect({ url: gateway.wsUrl, getToken: () => token })
      const events = collect(userEvents(client))
      env.defer(() => (client.dispose(), events.done)) // disposing the client ends the iterator
      await attached(1)
      await rename(id, 'New')
      await settled(() => expect(events.received).toHaveLength(1))

      env.servers.last!.destroy() // the socket drops; graphql-ws reconnects after a second or so
      await attached(0)
      await rename(id, 'While away')
      await attached(1) // subscribed again, with `after:` the last cursor
      await rename(id, 'Back')
      await settled(() => expect(events.received).toHaveLength(3))
      expect(events.received).toMatchObject([
        eventOf('UPDATED', id, 'New', 'Old', email),
        eventOf('UPDATED', id, 'While away', 'New', email),
        eventOf('UPDATED', id, 'Back', 'While away', email),
      ])
      expect(new Set(events.received.map((event) => event.cursor)).size).toBe(3)
    })
    it('should reconnect with a fresh token from connectionParams when the gateway closes an expired one (4403)', async () => {
      const { id, email } = await newUser('Old')
      let token = await userToken(id, 2) // expires within 2 s: the gateway then closes the socket with 4403
      const client = connect({ url: gateway.wsUrl, getToken: () => token })
      const closes: number[] = []
      let connections = 0
      client.on('closed', (event) => closes.push((event as { code: number }).code))
      client.on('connected', () => connections++)
      const events = collect(userEvents(client))
      env.defer(() => (client.dispose(), events.done))
      await attached(1)
      token = await userToken(id) // what the next connection_init sends
      await settled(() => expect(closes).toEqual([4403]))
      await settled(() => expect(connections).toBe(2))
      await attached(1) // subscribed again on the new connection
      await rename(id, 'Renewed')
      await settled(() => expect(events.received).toHaveLength(1))
      expect(events.received).toMatchObject([eventOf('UPDATED', id, 'Renewed', 'Old', email)])
    })
  })

  describe("Yoga's SSE (graphql-sse, distinct connections)", () => {
    it('should receive events with the token in the Authorization header', async () => {
      const { id, email, token } = await newUser('Old')
      const client = connectSse({ url: gateway.url, getToken: () => token })
      const events = collect(userEventsOverSse(client))
      env.defer(() => (client.dispose(), events.done)) // disposing the client ends the iterator
      await attached(1)
      await rename(id, 'New')
      await rename(id, 'Newer')
      await settled(() => expect(events.received).toHaveLength(2))
      expect(events.received).toMatchObject([
        eventOf('UPDATED', id, 'New', 'Old', email),
        eventOf('UPDATED', id, 'Newer', 'New', email),
      ])
    })
  })
})

describe('the client codegen config', () => {
  it('should have examples/clients/gql/ up to date (npx graphql-codegen --config examples/clients/codegen.yml)', async () => {
    const { generate } = await import('@graphql-codegen/cli')
    const config = (await import('yaml')).parse(readFileSync(join(projectRoot, 'examples/clients/codegen.yml'), 'utf8'))
    const outputs: { filename: string; content: string }[] = await generate(
      { ...config, cwd: projectRoot, silent: true },
      false,
    )
    expect(outputs.map((output) => output.filename).sort()).toEqual([
      'examples/clients/gql/gql.ts',
      'examples/clients/gql/graphql.ts',
      'examples/clients/gql/index.ts',
    ])
    for (const { filename, content } of outputs)
      expect(readFileSync(join(projectRoot, filename), 'utf8'), `${filename} is stale`).toBe(content)
  })
})

describe('docs/client-recipes.md', () => {
  it('should show the client recipes and the codegen config exactly as they are in examples/clients/', () => {
    const page = readFileSync(join(projectRoot, 'docs', 'client-recipes.md'), 'utf8')
    const section = page
    const blocks = [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map(([, language, code]) => ({
      language: language!,
      code: code!,
    }))
    expect(blocks.map(({ language }) => language)).toEqual(['ts', 'ts', 'yaml', 'sh', 'ts', 'ts', 'ts', 'ts'])
    const sources = readdirSync(join(projectRoot, 'examples/clients'))
      .filter((name) => /\.(ts|yml)$/.test(name))
      .map((name) => readFileSync(join(projectRoot, 'examples/clients', name), 'utf8'))
    for (const { language, code } of blocks) {
      const shown = language === 'sh' ? code.split('#')[0]!.trim() : code
      expect(
        sources.some((source) => source.includes(shown)),
        `docs block not found verbatim in examples/clients/:\n${code}`,
      ).toBe(true)
    }
  })
})
