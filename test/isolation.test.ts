/**
 * Isolation between viewers by construction (docs/auth-and-policies.md, Groups and isolation):
 * a group executes each event once for all its members, with a context built from the group
 * key's viewer part alone. Viewers whose row filters differ never share a result; a resolver
 * that reads what the key does not hold (the viewer's id, the connection) fails for every
 * member instead of answering them all with one member's value.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createSchema, createYoga } from 'graphql-yoga'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { dataModel as dataModelMeta } from '../examples/app/database.ts'
import { examplePolicies } from '../examples/app/policies.ts'
import { ViewerAccess } from '../src/auth/access.ts'
import { createAuthenticator } from '../src/auth/authenticator.ts'
import type { Policies } from '../src/auth/policies.ts'
import { anonymous, type Viewer } from '../src/auth/viewer.ts'
import type { GatewayContext, ServerContext } from '../src/context.ts'
import { policyViewer } from '../src/delivery/grouping.ts'
import { DeliveryHub } from '../src/delivery/hub.ts'
import { groupContext } from '../src/delivery/isolation.ts'
import { IsolationError } from '../src/errors.ts'
import { createLogger } from '../src/logger.ts'
import { linkDataModel } from '../src/models/data-model.ts'
import { defaultLimits } from '../src/transport/limits.ts'
import { attachWebSocket, type WebSocketTransport } from '../src/transport/websocket.ts'
import { bearer, JWT_SECRET, SERVICE_KEY, userToken } from './helpers/auth.ts'
import { connectWs, subscribeWs, type WsClient } from './helpers/clients.ts'
import { useFixture } from './helpers/fixture.ts'
import { settled } from './helpers/gateway.ts'
import type { RawClient } from './helpers/raw-socket.ts'

const dataModel = linkDataModel(dataModelMeta)
const model = (name: string) => dataModel.models.find((each) => each.name === name)!

/** Every `next` payload a raw client received for operation `id`, in order. */
const nexts = (client: RawClient, id: string) =>
  client.received.filter((m) => m.id === id && m.type === 'next').map((m) => m.payload)

describe("a group's context", () => {
  const policies: Policies = {
    models: { Post: { read: 'user', filter: (viewer) => ({ authorId: viewer.id }) }, User: { read: 'service' } },
  }
  const alice: Viewer = { role: 'user', id: '1', claims: { sub: '1', org: 'acme' } }
  const server = {} as ServerContext
  const context = groupContext(server, new ViewerAccess(alice, policies).policyView([model('Post'), model('User')]))

  it('should hold the role and what the policies made of the viewer for the models reached', () => {
    expect(context.viewer.role).toBe('user')
    expect(context.access.rowFilter(model('Post'))).toEqual({ authorId: { equals: 1 } })
    expect(() => context.access.assertRead('Post')).not.toThrow()
  })

  it('should throw IsolationError, naming what was read, for anything about one member', () => {
    for (const read of [
      () => context.viewer.id,
      () => context.viewer.claims,
      () => context.connectionId,
      () => (context as unknown as Record<string, unknown>).request,
    ]) {
      expect(read).toThrow(IsolationError)
    }
    expect(() => context.viewer.id).toThrow("context.viewer.id is not part of this subscription's group key")
  })

  it('should answer for no model the selection set does not reach, and for no write or room check', () => {
    expect(() => context.access.rowFilter(model('Tag'))).toThrow(
      "context.access.rowFilter(Tag) is not part of this subscription's group key: the subscription's selection set does not reach Tag",
    )
    expect(() => context.access.assertWrite('Post')).toThrow(IsolationError)
    expect(() => context.access.assertJoin('lobby')).toThrow(IsolationError)
  })

  it('should refuse a model the group may not read naming the group, never one member', () => {
    expect(() => context.access.assertRead('User')).toThrow('users may not read User')
    // What it would see of such a model: nothing.
    expect(context.access.rowFilter(model('User'))).toEqual({ id: { in: [] } })
  })

  it('should not be written to: it is shared by the members and the events', () => {
    expect(() => {
      ;(context as unknown as Record<string, unknown>).cache = new Map()
    }).toThrow(IsolationError)
  })

  it('should hold no role when the selection set reaches no model (everyone shares it)', () => {
    const rooms = groupContext(server, new ViewerAccess(alice, policies).policyView([]))
    expect(() => rooms.viewer.role).toThrow(IsolationError)
  })
})

describe('viewers with different row filters on the example policies', () => {
  const env = useFixture({
    gateway: { auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET }, policies: examplePolicies },
  })
  const groups = () => [env.gateway.hub.subscriberCount, env.gateway.hub.groupCount]

  it('should never share a result: two users subscribed to the same document each receive only their own rows', async () => {
    const make = async (name: string) =>
      (await env.gateway.prisma.user.create({ data: { email: `${name}@isolation.example`, name } })).id
    const [alice, bob] = [await make('alice'), await make('bob')]
    const aliceWs = await env.connectRaw({ payload: bearer(await userToken(String(alice))) })
    const bobWs = await env.connectRaw({ payload: bearer(await userToken(String(bob))) })
    const users = 'subscription { userEvents(verbs: [UPDATED]) { verb recordId node { name } } }'
    const posts = 'subscription { postEvents { verb recordId node { title authorId } } }'
    for (const client of [aliceWs, bobWs]) {
      client.subscribe('u', users)
      client.subscribe('p', posts)
    }
    // One group per viewer and document: their filters differ.
    await settled(() => expect(groups()).toEqual([4, 4]))
    for (const [id, name] of [
      [alice, 'alice'],
      [bob, 'bob'],
    ] as const) {
      await env.gateway.prisma.user.update({ where: { id }, data: { name: `${name} renamed` } })
      await env.gateway.prisma.post.create({ data: { title: `${name} draft`, authorId: id } })
    }
    await settled(() => expect(nexts(bobWs, 'p')).toHaveLength(1))
    await settled(() => expect(nexts(aliceWs, 'p')).toHaveLength(1))
    const seen = (client: RawClient) => ({
      users: nexts(client, 'u').map((p) => p.data.userEvents.node.name),
      posts: nexts(client, 'p').map((p) => p.data.postEvents.node.title),
    })
    expect(seen(aliceWs)).toEqual({ users: ['alice renamed'], posts: ['alice draft'] })
    expect(seen(bobWs)).toEqual({ users: ['bob renamed'], posts: ['bob draft'] })
    expect(JSON.stringify(aliceWs.received)).not.toContain('bob')
    expect(JSON.stringify(bobWs.received)).not.toContain('alice')
    await Promise.all([aliceWs.close(), bobWs.close()])
    await settled(() => expect(groups()).toEqual([0, 0]))
  })

  it('should name the group, not its first member, when a relation the group may not read is refused', async () => {
    const gateway = await env.startGateway({
      auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET },
      // Every user sees published posts, whoever they are: one group for all users; nobody but services reads User.
      policies: { models: { Post: { read: 'user', filter: () => ({ published: true }) }, User: { read: 'service' } } },
    })
    const author = (await gateway.prisma.user.create({ data: { email: 'author@isolation.example', name: 'A' } })).id
    const members: RawClient[] = []
    for (const user of ['41', '42']) {
      const client = await env.connectRaw({ payload: bearer(await userToken(user)), gateway })
      client.subscribe('p', 'subscription { postEvents { recordId node { title author { name } } } }')
      members.push(client)
    }
    await settled(() => expect([gateway.hub.subscriberCount, gateway.hub.groupCount]).toEqual([2, 1]))
    await gateway.prisma.post.create({ data: { title: 'open', published: true, authorId: author } })
    for (const member of members) {
      await settled(() => expect(nexts(member, 'p')).toHaveLength(1))
      expect(nexts(member, 'p')[0].errors).toMatchObject([
        {
          message: 'users may not read User',
          path: ['postEvents', 'node', 'author'],
          extensions: { code: 'FORBIDDEN' },
        },
      ])
      expect(JSON.stringify(member.received)).not.toMatch(/user 4[12]/)
    }
    await Promise.all(members.map((member) => member.close()))
  })
})

describe('a resolver that reads outside the group key', () => {
  // A test gateway whose schema adds fields reading the viewer and the connection during an
  // event's execution: the group key holds the role and the Post policies, not who the viewer is.
  const policies: Policies = { models: { Post: { read: 'user' } } }
  const hub = new DeliveryHub()
  let server: Server
  let transport: WebSocketTransport
  let url: string
  const clients: WsClient[] = []

  beforeAll(async () => {
    const schema = createSchema<Record<string, unknown>>({
      typeDefs: /* GraphQL */ `
        type Query { ok: Boolean }
        type Post { id: ID!, title: String!, seenBy: String, mine: Boolean, connection: String }
        type Subscription { posts: Post! }
      `,
      resolvers: {
        Subscription: {
          posts: {
            subscribe: (_parent: unknown, _args: unknown, context: GatewayContext) => {
              context.access.assertRead('Post')
              return context.hub.subscribe('posts', { see: (post: unknown) => post })
            },
            resolve: (post: unknown) => post,
          },
        },
        Post: {
          seenBy: (_post: unknown, _args: unknown, context: GatewayContext) => context.viewer.role,
          mine: (post: { authorId: string }, _args: unknown, context: GatewayContext) =>
            post.authorId === context.viewer.id,
          connection: (_post: unknown, _args: unknown, context: GatewayContext) => context.connectionId,
        },
      },
    })
    const yoga = createYoga<Record<string, unknown>, Record<string, unknown>>({
      schema,
      logging: false,
      maskedErrors: false,
      context: (initial) => {
        const viewer = (initial.viewer as Viewer | undefined) ?? anonymous
        return { hub, connectionId: initial.connectionId, viewer, access: new ViewerAccess(viewer, policies) }
      },
    })
    server = createServer(yoga)
    transport = attachWebSocket({
      httpServer: server,
      path: '/graphql',
      yoga,
      hub,
      viewerPart: policyViewer(schema, dataModel),
      authenticator: createAuthenticator({ jwtSecret: JWT_SECRET }),
      limits: defaultLimits,
      allowedOrigins: [],
      logger: createLogger('silent'),
      isProduction: false,
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`
  })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map(({ client }) => client.dispose()))
    await settled(() => expect(hub.subscriberCount).toBe(0))
  })
  afterAll(async () => {
    await transport.close(0)
    await new Promise((resolve) => server.close(resolve))
  })

  const connect = async (user: string) => {
    const ws = connectWs(url, bearer(await userToken(user)))
    clients.push(ws)
    await ws.ack
    return ws
  }

  it('should fail the field for every member rather than answer with the first member’s viewer', async () => {
    const [alice, bob] = [await connect('alice'), await connect('bob')]
    const query = 'subscription { posts { title seenBy mine } }'
    const [toAlice, toBob] = [subscribeWs(alice.client, query), subscribeWs(bob.client, query)]
    // Same document, same role and Post policies: one group, one execution per event.
    await settled(() => expect([hub.subscriberCount, hub.groupCount]).toEqual([2, 1]))
    hub.deliver('posts', { id: '1', title: 'by alice', authorId: 'alice' })
    for (const events of [toAlice, toBob]) {
      const result = await events.next()
      // The role is in the key: readable. Whose post it is depends on who asks: not in the key, never answered.
      expect(result.data).toEqual({ posts: { title: 'by alice', seenBy: 'user', mine: null } })
      expect(result.errors).toMatchObject([
        {
          message: expect.stringContaining("context.viewer.id is not part of this subscription's group key"),
          path: ['posts', 'mine'],
        },
      ])
    }
  })

  it('should not tell members the connection of another', async () => {
    const [one, two] = [await connect('alice'), await connect('alice')]
    const query = 'subscription { posts { title connection } }'
    const streams = [subscribeWs(one.client, query), subscribeWs(two.client, query)]
    await settled(() => expect([hub.subscriberCount, hub.groupCount]).toEqual([2, 1]))
    hub.deliver('posts', { id: '2', title: 'any', authorId: 'bob' })
    for (const events of streams) {
      const result = await events.next()
      expect(result.data).toEqual({ posts: { title: 'any', connection: null } })
      expect(result.errors?.[0]?.message).toContain("context.connectionId is not part of this subscription's group key")
    }
  })

  it('should keep the full viewer for what runs once per subscriber (the subscribe resolver)', async () => {
    const anonymousWs = connectWs(url)
    clients.push(anonymousWs)
    await anonymousWs.ack
    const refused = subscribeWs(anonymousWs.client, 'subscription { posts { title } }')
    await refused.completed
    expect(refused.received[0]?.errors?.[0]?.message).toBe('anonymous clients may not read Post')
  })
})
