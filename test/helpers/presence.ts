/** Clients for presence tests: connections as a role, joining rooms, watching presence. */
import { expect } from 'vitest'
import { bearer, SERVICE_KEY, userToken } from './auth.ts'
import { connectWs, subscribeWs, type Subscription } from './clients.ts'
import { settled, type TestGateway } from './gateway.ts'

export const PRESENCE = /* GraphQL */ `
  subscription ($room: String!) {
    presence(room: $room) { kind room count at members { key userId role connections meta } }
  }
`
export const JOIN_ROOM = /* GraphQL */ `
  subscription ($room: String!, $presence: JSON) { room(name: $room, presence: $presence) { event } }
`

export interface PresenceMemberData {
  key: string
  userId: string | null
  role: string
  connections: number
  meta: unknown
}

export interface PresenceEventData {
  kind: 'SYNC' | 'JOIN' | 'LEAVE' | 'UPDATE'
  room: string
  count: number
  at: string
  members: PresenceMemberData[]
}

/** Who a test connection is: a service, an anonymous client, or the user with this id. */
export type Who = 'service' | 'anonymous' | { user: string }

export interface PresenceConnection {
  readonly id: string
  readonly gateway: TestGateway
  readonly client: ReturnType<typeof connectWs>['client']
  close(): Promise<void>
}

export async function credentials(who: Who): Promise<Record<string, string>> {
  if (who === 'service') return bearer(SERVICE_KEY)
  if (who === 'anonymous') return {}
  return bearer(await userToken(who.user))
}

/** A graphql-ws connection to `gateway` as `who`, acknowledged; closed by `defer` after the test. */
export async function connectAs(
  gateway: TestGateway,
  who: Who,
  defer: (dispose: () => unknown) => void,
): Promise<PresenceConnection> {
  const { client, ack } = connectWs(gateway.wsUrl, await credentials(who))
  const id = String((await ack)?.connectionId)
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await client.dispose()
  }
  defer(close)
  return { id, gateway, client, close }
}

/** Joins `room` with a `room` subscription (and meta) and waits until the gateway holding the connection has it in. */
export async function joinRoom(connection: PresenceConnection, room: string, meta?: unknown) {
  const subscription = subscribeWs(connection.client, JOIN_ROOM, { room, presence: meta ?? null })
  await settled(async () => expect(await connection.gateway.rooms.registry.roomsOf(connection.id)).toContain(room))
  return subscription
}

/** Watches the presence of `room`; resolves with the subscription and its SYNC event. */
export async function watch(connection: PresenceConnection, room: string) {
  const subscription = subscribeWs<{ presence: PresenceEventData }>(connection.client, PRESENCE, { room })
  const first = await subscription.next(10_000)
  expect(first.errors).toBeUndefined()
  return { subscription, sync: first.data!.presence }
}

/** The next presence event's data (errors fail the test). */
export async function nextEvent(
  subscription: Subscription<{ presence: PresenceEventData }>,
  timeoutMs = 10_000,
): Promise<PresenceEventData> {
  const result = await subscription.next(timeoutMs)
  expect(result.errors).toBeUndefined()
  return result.data!.presence
}

/** The members as the test compares them (no `at`). */
export const member = (key: string, role: string, connections: number, meta: unknown = null, userId?: string) => ({
  key,
  userId: userId ?? (role === 'user' ? key : null),
  role,
  connections,
  meta,
})
