/**
 * urql (`@urql/core`) with Graphcache against a mizzen gateway.
 *
 * Queries and mutations go over HTTP (`fetchExchange`) with the token in `Authorization`;
 * subscriptions over graphql-ws (`subscriptionExchange`) with the token in `connectionParams`.
 * Graphcache normalises as Apollo's cache does, by `__typename` and `id`, and with its defaults:
 * `node` (a `User`) updates `User:<id>` and every query showing it, `previous` (a `UserPrevious`)
 * stays apart, and the events themselves (no `id` field) are kept whole, one per result.
 * `updates.Subscription.userEvents` adds created users to the `users` list and drops deleted ones.
 *
 * Live queries (`query @live`) go over graphql-ws too (`isSubscriptionOperation`): `watchLiveUsers`
 * holds the list with no event handling, each result the gateway sends written to Graphcache.
 */
import { Client, fetchExchange, subscriptionExchange, type Operation } from '@urql/core'
import { cacheExchange } from '@urql/exchange-graphcache'
import { getOperationAST } from 'graphql'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { LiveUsers, Users } from './documents.js'
import type { LiveUsersQuery, UserEventsSubscription } from './gql/graphql.js'

/** Subscriptions and `query @live` operations: their results stream, so they go over graphql-ws. */
const streams = (operation: Operation) =>
  operation.kind === 'subscription' ||
  (getOperationAST(operation.query)?.directives?.some((directive) => directive.name.value === 'live') ?? false)

/** `url`: the gateway's endpoint, e.g. `http://localhost:4000/graphql`; `getToken`: a JWT or an API key. */
export function createUrqlClient({ url, getToken }: { url: string; getToken: () => string }) {
  const ws = createClient({
    url: url.replace(/^http/, 'ws'), // the same endpoint, as ws:// or wss://
    connectionParams: () => ({ authorization: `Bearer ${getToken()}` }), // on every (re)connection
    webSocketImpl: WebSocket, // Node 20 only: browsers and Node 22+ have a WebSocket of their own
  })
  // Graphcache with its defaults; `updates` only maintains the `users` list.
  const cache = cacheExchange({
    updates: {
      Subscription: {
        userEvents(result: UserEventsSubscription, _args, cache) {
          const event = result.userEvents
          if (event.verb === 'CREATED' && event.node) {
            const user = { __typename: 'User' as const, ...event.node }
            cache.updateQuery({ query: Users }, (list) => list && { users: [...list.users, user] })
          }
          if (event.verb === 'DELETED') {
            cache.updateQuery(
              { query: Users },
              (list) => list && { users: list.users.filter((user) => user.id !== event.recordId) },
            )
            cache.invalidate({ __typename: 'User', id: event.recordId })
          }
        },
      },
    },
  })
  const client = new Client({
    url,
    fetchOptions: () => ({ headers: { authorization: `Bearer ${getToken()}` } }),
    exchanges: [
      cache,
      fetchExchange,
      subscriptionExchange({
        isSubscriptionOperation: streams,
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
        }),
      }),
    ],
  })
  return { client, close: () => ws.dispose() }
}

export type LiveUser = LiveUsersQuery['users'][number]

/**
 * Holds the `@live` users list: `onUsers` gets the complete list at once, then again after every
 * write that changes it; returns a function that stops (and completes the live query).
 */
export function watchLiveUsers(client: Client, onUsers: (users: LiveUser[]) => void) {
  const { unsubscribe } = client.query(LiveUsers, {}).subscribe(({ data, error }) => {
    if (error) return console.error('LiveUsers:', error.message)
    if (data) onUsers(data.users)
  })
  return unsubscribe
}
