/**
 * Helpers for room tests: connections that know their id, subscriptions that resolve once the
 * gateway runs them, and a wait for the gateway to settle back to no connection.
 *
 * graphql-ws has no "subscribed" message, and a socket's messages are handled concurrently, so a
 * test waits on the gateway's own state (hub subscribers, registry) instead of sleeping.
 */
import type { Client } from 'graphql-ws'
import { expect } from 'vitest'
import { connectWs, executeWs, subscribeWs, type Subscription } from './clients.ts'
import { settled, type TestGateway } from './gateway.ts'

export const ROOM = /* GraphQL */ `
  subscription Room($name: String!, $events: [String!]) {
    room(name: $name, events: $events) { id room event data sender sentAt }
  }
`
export const MESSAGES = /* GraphQL */ `
  subscription Messages($events: [String!]) {
    messages(events: $events) { id room event data sender sentAt }
  }
`
export const BROADCAST = /* GraphQL */ `
  mutation Broadcast($rooms: [String!]!, $event: String!, $data: JSON, $omit: ID, $omitSelf: Boolean) {
    broadcast(rooms: $rooms, event: $event, data: $data, omit: $omit, omitSelf: $omitSelf) { messageId recipients }
  }
`
export const BLAST = /* GraphQL */ `
  mutation Blast($event: String!, $data: JSON, $omit: ID, $omitSelf: Boolean) {
    blast(event: $event, data: $data, omit: $omit, omitSelf: $omitSelf) { messageId recipients }
  }
`

export type RoomMessage = {
  id: string
  room: string | null
  event: string
  data: unknown
  sender: string | null
  sentAt: string
  cursor?: string | null
}

export { settled }

export interface Connection {
  readonly client: Client
  readonly id: string
}

export function roomClients(gateway: TestGateway) {
  const open: Connection[] = []

  return {
    /** A graphql-ws connection, acknowledged, with its id. */
    async connect(): Promise<Connection> {
      const { client, ack } = connectWs(gateway.wsUrl)
      const connection = { client, id: String((await ack)?.connectionId) }
      open.push(connection)
      return connection
    },

    /** Subscribes and resolves once the gateway delivers to the subscription. */
    async subscribe<T = Record<string, RoomMessage>>(
      connection: Connection,
      query: string,
      variables?: Record<string, unknown>,
    ): Promise<Subscription<T>> {
      const before = gateway.hub.subscriberCount
      const subscription = subscribeWs<T>(connection.client, query, variables)
      await settled(() => expect(gateway.hub.subscriberCount).toBeGreaterThan(before))
      return subscription
    },

    /** Runs a query or mutation over the connection's socket and returns its data (errors fail the test). */
    async execute<T = Record<string, any>>(
      connection: Connection,
      query: string,
      variables?: Record<string, unknown>,
    ): Promise<T> {
      const result = await executeWs<T>(connection.client, query, variables)
      expect(result.errors).toBeUndefined()
      return result.data as T
    },

    /** Closes every connection and waits until the gateway holds none, in no room, with no subscriber. */
    async closeAll(): Promise<void> {
      await Promise.all(open.splice(0).map(({ client }) => client.dispose()))
      await settled(async () => {
        expect(gateway.rooms.registry.localConnectionCount).toBe(0)
        expect(gateway.hub.subscriberCount).toBe(0)
        expect(await gateway.rooms.registry.rooms()).toEqual([])
      })
    },
  }
}

/** The data of the next message of a room or messages subscription. */
export async function nextMessage(subscription: Subscription<Record<string, RoomMessage>>): Promise<RoomMessage> {
  const result = await subscription.next()
  expect(result.errors).toBeUndefined()
  return Object.values(result.data!)[0]!
}
