/**
 * Apollo Client 4 (core API, no React) against a mizzen gateway.
 *
 * Queries and mutations go over HTTP with the token in `Authorization`; subscriptions go over
 * graphql-ws (`graphql-transport-ws`) with the token in `connectionParams`, which the gateway
 * reads from `connection_init`. `followUserEvents` keeps the cache current: `node` is a `User`,
 * so the cache merges it into `User:<id>` by itself and every query showing that user updates;
 * created and deleted records are added to or taken out of the cached `users` list by hand.
 * `InMemoryCache` needs no type policy: `previous` is a `UserPrevious`, which never overwrites
 * `node`, and the events have no `id`, so they are never merged into one another.
 *
 * Live queries (`query @live`) go over graphql-ws too: `watchLiveUsers` holds the list with no
 * event handling at all, each result the gateway sends replacing it in the cache.
 */
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from '@apollo/client'
import { SetContextLink } from '@apollo/client/link/context'
import { GraphQLWsLink } from '@apollo/client/link/subscriptions'
import { getOperationAST, OperationTypeNode, type DocumentNode } from 'graphql'
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'
import { LiveUsers, UserEvents, Users } from './documents.js'
import type { LiveUsersQuery, UserEventsSubscription } from './gql/graphql.js'

/** A `query @live`: its results stream, so it goes over graphql-ws like a subscription. */
const isLive = (query: DocumentNode) =>
  getOperationAST(query)?.directives?.some((directive) => directive.name.value === 'live') ?? false

/** `url`: the gateway's endpoint, e.g. `http://localhost:4000/graphql`; `getToken`: a JWT or an API key. */
export function createApolloClient({ url, getToken }: { url: string; getToken: () => string }) {
  const ws = createClient({
    url: url.replace(/^http/, 'ws'), // the same endpoint, as ws:// or wss://
    connectionParams: () => ({ authorization: `Bearer ${getToken()}` }), // on every (re)connection
    webSocketImpl: WebSocket, // Node 20 only: browsers and Node 22+ have a WebSocket of their own
  })
  const http = new SetContextLink(({ headers }) => ({
    headers: { ...headers, authorization: `Bearer ${getToken()}` },
  })).concat(new HttpLink({ uri: url }))
  const client = new ApolloClient({
    link: ApolloLink.split(
      ({ operationType, query }) => operationType === OperationTypeNode.SUBSCRIPTION || isLive(query),
      new GraphQLWsLink(ws),
      http,
    ),
    cache: new InMemoryCache(),
  })
  return { client, close: () => (client.stop(), ws.dispose()) }
}

export type UserEvent = UserEventsSubscription['userEvents']

/** Follows `userEvents`, keeping the cached `users` list current; returns a function that stops. */
export function followUserEvents(client: ApolloClient, onEvent: (event: UserEvent) => void = () => {}) {
  const { cache } = client
  const subscription = client.subscribe({ query: UserEvents }).subscribe(({ data, error }) => {
    if (error) return console.error('userEvents:', error.message)
    const event = data!.userEvents
    if (event.verb === 'CREATED' && event.node) {
      const user = { __typename: 'User' as const, ...event.node }
      cache.updateQuery({ query: Users }, (list) => list && { users: [...list.users, user] })
    }
    if (event.verb === 'DELETED') {
      cache.evict({ id: cache.identify({ __typename: 'User', id: event.recordId }) })
      cache.gc()
    }
    // UPDATED: nothing to do, the cache already holds `node` as the user's current state.
    onEvent(event)
  })
  return () => subscription.unsubscribe()
}

export type LiveUser = LiveUsersQuery['users'][number]

/**
 * Holds the `@live` users list: `onUsers` gets the complete list at once, then again after every
 * write that changes it (each result replaces the list in the cache); returns a function that stops.
 */
export function watchLiveUsers(client: ApolloClient, onUsers: (users: LiveUser[]) => void) {
  const subscription = client.watchQuery({ query: LiveUsers }).subscribe(({ data, dataState, error }) => {
    if (error) return console.error('LiveUsers:', error.message)
    if (dataState === 'complete') onUsers(data.users)
  })
  return () => subscription.unsubscribe()
}
