/**
 * Presence and the membership read rule (docs/rooms.md, Presence; docs/auth-and-policies.md),
 * from outside: real graphql-ws clients with JWTs and API keys. One contract over one gateway in
 * memory and over two gateways sharing Redis (watchers on the first, members on the second).
 */
import { randomUUID } from 'node:crypto'
import { afterEach, expect, it } from 'vitest'
import { JWT_SECRET, SERVICE_KEY } from './helpers/auth.ts'
import { executeWs, postGraphQL, subscribeWs } from './helpers/clients.ts'
import { describeEach, useFixture } from './helpers/fixture.ts'
import type { TestGateway } from './helpers/gateway.ts'
import {
  connectAs,
  credentials,
  joinRoom,
  member,
  nextEvent,
  PRESENCE,
  watch,
  type PresenceEventData,
  type Who,
} from './helpers/presence.ts'
import type { Service } from './helpers/services.ts'

const GRACE_MS = 800

const backends = [
  { name: 'one gateway in memory', bus: 'memory' as const, gateways: 1, needs: [] as Service[] },
  { name: 'two gateways on Redis', bus: 'redis' as const, gateways: 2, needs: ['redis'] as Service[] },
]

describeEach(backends, 'presence: $name', ({ bus, gateways }) => {
  const env = useFixture({
    bus,
    gateways,
    gateway: {
      auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET },
      policies: {
        rooms: [
          { match: /^lobby-/, members: 'anonymous' },
          { match: /^vault-/, members: 'service' },
        ],
      },
      rooms: { presence: { leaveGraceMs: GRACE_MS } },
    },
  })
  // A gateway on Redis that reports an error (as `mizzen serve` would log it) fails the test.
  afterEach(() => expect(env.takeRedisErrors()).toEqual([]))
  /** Where the watchers are. */
  const near = () => env.gateways[0]!
  /** Where the members are (the other gateway on Redis). */
  const far = () => env.gateways[env.gateways.length - 1]!
  const connect = (gateway: TestGateway, who: Who) => connectAs(gateway, who, env.defer)
  const post = async (gateway: TestGateway, who: Who, query: string, variables?: Record<string, unknown>) =>
    postGraphQL(gateway.url, query, variables, await credentials(who))
  const codes = (result: { errors?: readonly { extensions?: { code?: unknown } }[] }) =>
    (result.errors ?? []).map((error) => error.extensions?.code)
  /** Both reads refused (non-null fields: graphql-js reports the first error and nulls the data). */
  const refusedReads = (result: { errors?: readonly { extensions?: { code?: unknown } }[]; data?: unknown }) => {
    expect(new Set(codes(result))).toEqual(new Set(['FORBIDDEN']))
    expect(result.data).toBeNull()
  }
  const READS = 'query ($room: String!) { roomMembers(room: $room) presence(room: $room) { key connections } }'

  it('lets only the room’s members and services read its members and presence, and services alone list the rooms', async () => {
    const room = `club-${randomUUID()}`
    const alice = await connect(far(), { user: 'alice' })
    await joinRoom(alice, room)

    // Anonymous, and a user with no connection in the room: FORBIDDEN, over HTTP and WebSocket.
    for (const who of ['anonymous', { user: 'bob' }] as Who[]) {
      refusedReads(await post(near(), who, READS, { room }))
      refusedReads(await post(near(), who, 'query ($room: String!) { presence(room: $room) { key } }', { room }))
      expect(codes(await post(near(), who, '{ rooms { name } }'))).toEqual(['FORBIDDEN'])
    }
    const stranger = await connect(near(), 'anonymous')
    const refused = subscribeWs(stranger.client, PRESENCE, { room })
    await refused.completed
    expect(codes(refused.received[0]!)).toEqual(['FORBIDDEN'])

    // The same user over HTTP, with no connection of its own: a connection of theirs is in the room.
    const asAlice = await post(near(), { user: 'alice' }, READS, { room })
    expect(asAlice.errors).toBeUndefined()
    expect(asAlice.data).toEqual({ roomMembers: [alice.id], presence: [{ key: 'alice', connections: 1 }] })
    expect(codes(await post(near(), { user: 'alice' }, '{ rooms { name } }'))).toEqual(['FORBIDDEN'])

    // A service reads everything.
    const asService = await post(near(), 'service', READS, { room })
    expect(asService.data).toEqual(asAlice.data)
    const listed = await post(near(), 'service', '{ rooms { name memberCount } }')
    expect(listed.data?.rooms).toContainEqual({ name: room, memberCount: 1 })

    // An anonymous connection may watch once it is in the room; `connection` is its own.
    await joinRoom(stranger, room)
    const { sync } = await watch(stranger, room)
    expect(sync.members.map(({ key }) => key).sort()).toEqual(['alice', stranger.id].sort())
    const own = await executeWs(stranger.client, '{ connection { id rooms } }')
    expect(own.data).toEqual({ connection: { id: stranger.id, rooms: [room] } })
  })

  it('lets a room’s `members` policy widen and narrow who reads', async () => {
    const lobby = `lobby-${randomUUID()}`
    const vault = `vault-${randomUUID()}`
    const alice = await connect(far(), { user: 'alice' })
    await joinRoom(alice, lobby)
    await joinRoom(alice, vault)
    // Widened: anyone reads the lobby.
    const open = await post(near(), 'anonymous', READS, { room: lobby })
    expect(open.errors).toBeUndefined()
    expect(open.data?.roomMembers).toEqual([alice.id])
    // Narrowed: not even a member reads the vault, a service does.
    refusedReads(await post(near(), { user: 'alice' }, READS, { room: vault }))
    refusedReads(await executeWs(alice.client, READS, { room: vault }))
    expect((await post(near(), 'service', READS, { room: vault })).data?.roomMembers).toEqual([alice.id])
  })

  it('ends a member’s watch once it is no longer in the room, and only then; a service’s goes on', async () => {
    const room = `club-${randomUUID()}`
    const service = await connect(near(), 'service')
    const { subscription: serviceWatch } = await watch(service, room)
    /** The events of `subscription` up to the first one `matches` accepts (errors fail the test). */
    const until = async (subscription: typeof serviceWatch, matches: (event: PresenceEventData) => boolean) => {
      for (;;) if (matches(await nextEvent(subscription))) return
    }
    // An anonymous member watches for its own connection; a user from a connection outside the
    // room, for a connection of theirs in it (on the other gateway, on Redis).
    const stranger = await connect(near(), 'anonymous')
    const strangerIn = await joinRoom(stranger, room)
    const { subscription: strangerWatch } = await watch(stranger, room)
    const erin = await connect(far(), { user: 'erin' })
    const erinIn = await joinRoom(erin, room)
    const erinWatcher = await connect(near(), { user: 'erin' })
    const { subscription: erinWatch } = await watch(erinWatcher, room)

    // Both seen in (events are batched: a member in and out within one batch is never shown).
    await until(serviceWatch, (event) => event.count === 2)
    strangerIn.stop()
    await strangerWatch.completed
    expect(codes(strangerWatch.received.at(-1)!)).toEqual(['FORBIDDEN'])
    // Erin is still in: her watch goes on and sees the stranger leave after the grace.
    await until(erinWatch, (event) => event.kind === 'LEAVE' && event.members.some(({ key }) => key === stranger.id))

    erinIn.stop()
    await erinWatch.completed
    expect(codes(erinWatch.received.at(-1)!)).toEqual(['FORBIDDEN'])
    // The service reads every room whoever is in it.
    const frank = await connect(far(), { user: 'frank' })
    await joinRoom(frank, room)
    await until(serviceWatch, (event) => event.kind === 'JOIN' && event.members.some(({ key }) => key === 'frank'))
  })

  it('sends SYNC, one JOIN per user, UPDATE for a second connection, for meta and for a closed one, and LEAVE after the grace', async () => {
    const room = `doc-${randomUUID()}`
    const bob = await connect(far(), { user: 'bob' })
    await joinRoom(bob, room, { color: 'blue' })
    const watcher = await connect(near(), 'service')
    const { subscription, sync } = await watch(watcher, room)
    expect(sync).toMatchObject({ kind: 'SYNC', room, count: 1, members: [member('bob', 'user', 1, { color: 'blue' })] })
    expect(Date.parse(sync.at)).not.toBeNaN()

    const alice1 = await connect(far(), { user: 'alice' })
    await joinRoom(alice1, room, { cursor: 1 })
    expect(await nextEvent(subscription)).toMatchObject({
      kind: 'JOIN',
      count: 2,
      members: [member('alice', 'user', 1, { cursor: 1 })],
    })

    // A second connection of the same user, on the other gateway: the same member, counted twice.
    const alice2 = await connect(near(), { user: 'alice' })
    await joinRoom(alice2, room)
    expect(await nextEvent(subscription)).toMatchObject({
      kind: 'UPDATE',
      count: 2,
      members: [member('alice', 'user', 2, { cursor: 1 })],
    })

    // Its most recent meta wins.
    const updated = await executeWs(
      alice2.client,
      'mutation ($room: String!) { updatePresence(room: $room, meta: { cursor: 2 }) }',
      { room },
    )
    expect(updated).toEqual({ data: { updatePresence: true } })
    expect(await nextEvent(subscription)).toMatchObject({
      kind: 'UPDATE',
      members: [member('alice', 'user', 2, { cursor: 2 })],
    })

    await alice2.close()
    expect(await nextEvent(subscription)).toMatchObject({
      kind: 'UPDATE',
      count: 2,
      members: [member('alice', 'user', 1, { cursor: 1 })],
    })

    const closedAt = Date.now()
    await alice1.close()
    const leave = await nextEvent(subscription)
    // Between the grace and 5 s after it.
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(GRACE_MS)
    expect(Date.now() - closedAt).toBeLessThan(GRACE_MS + 5000)
    expect(leave).toMatchObject({ kind: 'LEAVE', count: 1, members: [member('alice', 'user', 0, { cursor: 1 })] })
    const listed = await executeWs(
      watcher.client,
      'query ($room: String!) { presence(room: $room) { key connections meta } }',
      {
        room,
      },
    )
    expect(listed.data).toEqual({ presence: [{ key: 'bob', connections: 1, meta: { color: 'blue' } }] })
  })

  it('sends neither LEAVE nor JOIN for a user who reconnects within the grace', async () => {
    const room = `flaky-${randomUUID()}`
    const watcher = await connect(near(), 'service')
    const first = await connect(far(), { user: 'carol' })
    await joinRoom(first, room)
    const { subscription, sync } = await watch(watcher, room)
    expect(sync.members).toEqual([member('carol', 'user', 1)])

    await first.close()
    const again = await connect(near(), { user: 'carol' })
    await joinRoom(again, room)
    // Past the grace, then a join that must be the next event: nothing came for carol in between.
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 500))
    const dave = await connect(far(), { user: 'dave' })
    await joinRoom(dave, room)
    expect(await nextEvent(subscription)).toMatchObject({
      kind: 'JOIN',
      count: 2,
      members: [member('dave', 'user', 1)],
    })
    expect(subscription.received).toHaveLength(2)
  })

  it('keys anonymous and service connections by connection id, one member each', async () => {
    const room = `mixed-${randomUUID()}`
    const watcher = await connect(near(), 'service')
    await joinRoom(watcher, room)
    const anonymous = [await connect(far(), 'anonymous'), await connect(far(), 'anonymous')]
    for (const connection of anonymous) await joinRoom(connection, room, { name: connection.id.slice(0, 4) })
    const listed = await executeWs(
      watcher.client,
      'query ($room: String!) { presence(room: $room) { key userId role connections meta } }',
      {
        room,
      },
    )
    expect(listed.data?.presence).toEqual(
      [
        member(watcher.id, 'service', 1),
        ...anonymous.map((connection) => member(connection.id, 'anonymous', 1, { name: connection.id.slice(0, 4) })),
      ].sort((a, b) => (a.key < b.key ? -1 : 1)),
    )
  })

  it('refuses meta over the limit, updatePresence over HTTP, and for a room the connection is not in', async () => {
    const room = `limits-${randomUUID()}`
    const alice = await connect(near(), { user: 'alice' })
    const tooBig = { text: 'x'.repeat(2000) }
    const refused = subscribeWs(
      alice.client,
      'subscription ($room: String!, $meta: JSON) { room(name: $room, presence: $meta) { event } }',
      {
        room,
        meta: tooBig,
      },
    )
    await refused.completed
    expect(codes(refused.received[0]!)).toEqual(['BAD_USER_INPUT'])
    expect(await alice.gateway.rooms.registry.roomsOf(alice.id)).toEqual([])

    const update = 'mutation ($room: String!, $meta: JSON!) { updatePresence(room: $room, meta: $meta) }'
    expect(codes(await executeWs(alice.client, update, { room, meta: { ok: true } }))).toEqual(['BAD_USER_INPUT'])
    await joinRoom(alice, room)
    expect(codes(await executeWs(alice.client, update, { room, meta: tooBig }))).toEqual(['BAD_USER_INPUT'])
    expect(codes(await post(near(), { user: 'alice' }, update, { room, meta: { ok: true } }))).toEqual([
      'WEBSOCKET_REQUIRED',
    ])
    expect(codes(await executeWs(alice.client, 'query { presence(room: "") { key } }'))).toEqual(['BAD_USER_INPUT'])
  })

  it('batches many joins into few events that carry all of them', async () => {
    const room = `crowd-${randomUUID()}`
    const watcher = await connect(near(), 'service')
    const { subscription } = await watch(watcher, room)
    const users = Array.from({ length: 12 }, (_, i) => `user-${i}`)
    const connections = await Promise.all(users.map((user) => connect(far(), { user })))
    await Promise.all(connections.map((connection) => joinRoom(connection, room)))
    const joined = new Set<string>()
    const events: PresenceEventData[] = []
    while (joined.size < users.length) {
      const event = await nextEvent(subscription)
      events.push(event)
      expect(event.kind).toBe('JOIN')
      for (const { key } of event.members) joined.add(key)
    }
    expect([...joined].sort()).toEqual([...users].sort())
    expect(events.length).toBeLessThan(users.length)
    expect(events.at(-1)!.count).toBe(users.length)
  })
})
