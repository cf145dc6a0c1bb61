/**
 * Disconnects give everything back: after many connections that joined rooms and
 * subscribed close, no room, hub subscriber or bus listener is left beyond what the gateway had
 * before them.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { createMemoryBus } from '../src/bus/memory.ts'
import { postGraphQL, subscribeWs, type Subscription } from './helpers/clients.ts'
import { useFixture } from './helpers/fixture.ts'
import type { TestGateway } from './helpers/gateway.ts'
import {
  BROADCAST,
  MESSAGES,
  nextMessage,
  ROOM,
  roomClients,
  settled,
  type Connection,
  type RoomMessage,
} from './helpers/rooms.ts'

const CONNECTIONS = 1000
/** Opened and closed this many at a time, to be kind to a 2-core machine. */
const BATCH = 100

describe('rooms: disconnect', () => {
  const bus = createMemoryBus()
  const env = useFixture({ gateway: { bus } })
  let gateway: TestGateway

  beforeAll(() => {
    gateway = env.gateway
  })

  it(`should leave zero rooms, hub subscribers and bus listeners beyond the baseline after ${CONNECTIONS} connections disconnect`, async () => {
    const baseline = { busListeners: bus.listenerCount(), hubSubscribers: gateway.hub.subscriberCount }
    const rooms = roomClients(gateway)
    const connections: Connection[] = []
    const messages: Subscription<Record<string, RoomMessage>>[] = []
    for (let start = 0; start < CONNECTIONS; start += BATCH) {
      const batch = await Promise.all(Array.from({ length: BATCH }, () => rooms.connect()))
      // Each joins a room by subscribing (room-0 … room-9) and listens to everything that reaches it.
      batch.forEach((connection, i) => {
        subscribeWs(connection.client, ROOM, { name: `room-${(start + i) % 10}` })
        messages.push(subscribeWs(connection.client, MESSAGES))
      })
      connections.push(...batch)
      await settled(() => expect(gateway.hub.subscriberCount).toBe(baseline.hubSubscribers + 2 * connections.length))
    }
    expect(gateway.connectionCount).toBe(CONNECTIONS)
    await settled(async () =>
      expect((await gateway.rooms.registry.rooms()).map((room) => room.memberCount)).toEqual(
        Array(10).fill(CONNECTIONS / 10),
      ),
    )

    // The server joins all of room-0 to "shared" as well; a broadcast reaches them.
    const shared = await postGraphQL(
      gateway.url,
      'mutation { addRoomMembersToRooms(sourceRoom: "room-0", rooms: ["shared"]) { memberCount } }',
    )
    expect(shared.data).toEqual({ addRoomMembersToRooms: [{ memberCount: CONNECTIONS / 10 }] })
    expect((await postGraphQL(gateway.url, BROADCAST, { rooms: ['shared', 'room-1'], event: 'e' })).data).toEqual({
      broadcast: { messageId: expect.any(String), recipients: CONNECTIONS / 5 },
    })
    const reached = messages.filter((_, i) => i % 10 < 2)
    expect(await Promise.all(reached.map(nextMessage))).toEqual(
      reached.map((_, i) => expect.objectContaining({ room: i % 2 ? 'room-1' : 'shared' })),
    )

    for (let start = 0; start < CONNECTIONS; start += BATCH) {
      await Promise.all(connections.slice(start, start + BATCH).map(({ client }) => client.dispose()))
    }
    await settled(async () => {
      expect(gateway.connectionCount).toBe(0)
      expect(gateway.rooms.registry.localConnectionCount).toBe(0)
      expect(gateway.hub.subscriberCount).toBe(baseline.hubSubscribers)
      expect(await gateway.rooms.registry.rooms()).toEqual([])
    })
    expect(gateway.hub.topicCount).toBe(0)
    expect(bus.listenerCount()).toBe(baseline.busListeners)
  })

  it('should take a connection that closes out of its rooms, and keep delivering to the others', async () => {
    const rooms = roomClients(gateway)
    const [a, b] = [await rooms.connect(), await rooms.connect()]
    await postGraphQL(gateway.url, 'mutation ($id: ID!) { join(connectionId: $id, room: "x") { room } }', { id: a.id })
    const room = await rooms.subscribe(b, ROOM, { name: 'x' })
    await a.client.dispose()
    await settled(async () =>
      expect((await postGraphQL(gateway.url, '{ roomMembers(room: "x") }')).data).toEqual({ roomMembers: [b.id] }),
    )
    expect((await postGraphQL(gateway.url, BROADCAST, { rooms: ['x'], event: 'e' })).data?.broadcast.recipients).toBe(1)
    expect(await nextMessage(room)).toMatchObject({ event: 'e' })
    await rooms.closeAll()
  })
})
