/**
 * Server-sent events against a mizzen gateway, for clients that cannot open a WebSocket: GraphQL
 * Yoga serves the GraphQL over SSE protocol in its "distinct connections" mode on the same
 * `/graphql` endpoint (one HTTP request, one event stream per subscription), which is what the
 * `graphql-sse` client does by default (`singleConnection: false`). The token goes in the
 * `Authorization` header. Subscriptions to model events (and `after:`) work as over WebSocket;
 * `room` and `messages` need a WebSocket.
 */
import { print } from 'graphql'
import { createClient, type Client } from 'graphql-sse'
import { UserEvents } from './documents.js'
import type { UserEventsSubscription, UserEventsSubscriptionVariables } from './gql/graphql.js'

/** `url`: the gateway's endpoint, e.g. `http://localhost:4000/graphql`; `getToken`: a JWT or an API key. */
export function connectSse({ url, getToken }: { url: string; getToken: () => string }): Client {
  // Distinct connections mode (the default, `singleConnection: false`): what Yoga serves.
  return createClient({ url, headers: () => ({ authorization: `Bearer ${getToken()}` }) })
}

/** Every event of the viewer's users (or of `ids`), as an async iterator. */
export async function* userEventsOverSse(client: Client, variables: UserEventsSubscriptionVariables = {}) {
  for await (const result of client.iterate<UserEventsSubscription>({ query: print(UserEvents), variables })) {
    if (result.errors) throw new Error(result.errors.map((error) => error.message).join('; '))
    yield result.data!.userEvents
  }
}
