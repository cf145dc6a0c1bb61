/**
 * What a user writes by hand with graphql-yoga 5: a schema with the same subscriptions as
 * mizzen's, `createPubSub` topics with `filter` for ids, verbs, where and the viewer's row
 * policy, and graphql-ws's `useServer` on `ws` running Yoga's envelop pipeline (the recipe of
 * Yoga's documentation). The viewer comes from `connectionParams`.
 */
import { once, setMaxListeners } from 'node:events'
import { createServer } from 'node:http'
import { useServer } from 'graphql-ws/use/ws'
import { createPubSub, createSchema, createYoga, filter, pipe } from 'graphql-yoga'
import { WebSocketServer } from 'ws'
import type { Scenario } from '../common.ts'
import { eventFor } from './payloads.ts'
import type { BenchServer } from './server.ts'

const typeDefs = /* GraphQL */ `
  scalar JSON
  type RoomMessage { event: String!, data: JSON, sentAt: String! }
  type UserEvent { verb: String!, recordId: ID!, data: JSON }
  type Post { id: ID!, title: String!, published: Boolean! }
  type PostEvent { verb: String!, recordId: ID!, node: Post }
  input BoolFilter { equals: Boolean }
  input PostWhereInput { published: BoolFilter }
  enum ModelVerb { CREATED UPDATED DELETED MESSAGE }
  type Query { ok: Boolean }
  type Subscription {
    room(name: String!): RoomMessage!
    userEvents(ids: [ID!], verbs: [ModelVerb!]): UserEvent!
    postEvents(where: PostWhereInput): PostEvent!
  }
`

type Event = Record<string, any>

export async function startYoga(scenario: Scenario): Promise<BenchServer> {
  // Yoga's pubsub is an EventTarget with a listener per subscriber: lift Node's leak warning.
  const eventTarget = new EventTarget()
  setMaxListeners(Number.POSITIVE_INFINITY, eventTarget)
  const pubSub = createPubSub<{ room: [string, Event]; user: [Event]; post: [Event] }>({ eventTarget })
  // Subscriptions running: counted when made, uncounted when their iterator is returned (the
  // client completed it or left), so that the benchmark sees the warm-up clients go.
  let subscribed = 0
  const counted = <T>(iterable: AsyncIterable<T>): AsyncIterable<T> => {
    subscribed++
    const iterator = iterable[Symbol.asyncIterator]()
    let running = true
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => iterator.next(),
        return: (value?: unknown) => {
          if (running) subscribed--
          running = false
          return iterator.return?.(value) ?? Promise.resolve({ done: true as const, value: undefined })
        },
      }),
    }
  }
  const schema = createSchema<{ userId?: string }>({
    typeDefs,
    resolvers: {
      JSON: { serialize: (value: unknown) => value },
      Subscription: {
        room: {
          subscribe: (_: unknown, args: { name: string }) => counted(pubSub.subscribe('room', args.name)),
          resolve: (event: Event) => event,
        },
        userEvents: {
          subscribe: (_: unknown, args: { ids?: string[]; verbs?: string[] }) =>
            counted(
              pipe(
                pubSub.subscribe('user'),
                filter(
                  (event: Event) =>
                    (!args.ids || args.ids.includes(event.recordId)) &&
                    (!args.verbs || args.verbs.includes(event.verb)),
                ),
              ),
            ),
          resolve: (event: Event) => event,
        },
        postEvents: {
          subscribe: (
            _: unknown,
            args: { where?: { published?: { equals?: boolean } } },
            context: { userId?: string },
          ) =>
            counted(
              pipe(
                pubSub.subscribe('post'),
                filter((event: Event) => {
                  const node = event.node as { published: boolean; authorId: number }
                  const wanted = args.where?.published?.equals
                  const visible = node.published || String(node.authorId) === context.userId
                  return visible && (wanted === undefined || node.published === wanted)
                }),
              ),
            ),
          resolve: (event: Event) => event,
        },
      },
    },
  })
  const yoga = createYoga({ schema, graphiql: false, logging: false })
  const http = createServer(yoga)
  const wss = new WebSocketServer({ server: http, path: yoga.graphqlEndpoint })
  useServer(
    {
      execute: (args: any) => args.rootValue.execute(args),
      subscribe: (args: any) => args.rootValue.subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          userId: (ctx.connectionParams as { userId?: string } | undefined)?.userId,
        })
        const args = {
          schema,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        }
        const errors = validate(args.schema, args.document)
        return errors.length ? errors : args
      },
    },
    wss,
  )
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  return {
    port: (http.address() as { port: number }).port,
    subscribers: () => subscribed,
    publish: (stamp) => {
      const event = eventFor(scenario, stamp) as Event
      if (scenario === 'room') pubSub.publish('room', 'bench', event)
      else pubSub.publish(scenario === 'userEvents' ? 'user' : 'post', event)
    },
  }
}
