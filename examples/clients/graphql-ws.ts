/**
 * graphql-ws on its own against a mizzen gateway: the protocol the gateway speaks
 * (`graphql-transport-ws`), with the token in `connectionParams` and no cache.
 *
 * `userEvents` yields every event as it arrives and resumes where it left off: graphql-ws
 * reconnects after a dropped socket and subscribes again with the same payload, so the recipe
 * keeps the last `cursor` in the variables it sends, and the gateway replays what was missed
 * (`after:`) before going on live. A `RESYNC_REQUIRED` error means the history no longer reaches
 * back that far: reload with a query, then subscribe again without `after`.
 */
import { print } from 'graphql'
import { createClient, type Client } from 'graphql-ws'
import WebSocket from 'ws'
import { UserEvents } from './documents.js'
import type { UserEventsSubscription, UserEventsSubscriptionVariables } from './gql/graphql.js'

/** `url`: the gateway's WebSocket endpoint, e.g. `ws://localhost:4000/graphql`; `getToken`: a JWT or an API key. */
export function connect({ url, getToken }: { url: string; getToken: () => string }): Client {
  return createClient({
    url,
    connectionParams: () => ({ authorization: `Bearer ${getToken()}` }), // on every (re)connection
    webSocketImpl: WebSocket, // Node 20 only: browsers and Node 22+ have a WebSocket of their own
    retryAttempts: Infinity, // the default gives up after 5 attempts in a row
  })
}

/** Every event of the viewer's users (or of `ids`), from `after` (a cursor) on when given. */
export async function* userEvents(client: Client, variables: UserEventsSubscriptionVariables = {}) {
  // graphql-ws sends this very object again on each reconnection: the latest cursor goes with it.
  const payload = { query: print(UserEvents), variables: { ...variables } }
  for await (const result of client.iterate<UserEventsSubscription>(payload)) {
    if (result.errors) throw new Error(result.errors.map((error) => error.message).join('; '))
    const event = result.data!.userEvents
    payload.variables.after = event.cursor
    yield event
  }
}
