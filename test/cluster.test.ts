/**
 * Several gateways on one Redis and one PostgreSQL database behave as one: model events and room
 * broadcasts reach subscribers on every instance, wherever the write or the broadcast happened,
 * and room membership is one registry for all of them.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Client } from 'graphql-ws'
import { Redis } from 'ioredis'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { connectWs, postGraphQL, subscribeWs, type GraphQLResponse, type WsClient } from './helpers/clients.ts'
import { spawnRegistryProcess } from './helpers/crash.ts'
import { scripts } from '../src/rooms/redis-scripts.ts'
import { missing, redisUrl, useFixture } from './helpers/fixture.ts'
import { settled, waitForSubscribers, type TestGateway } from './helpers/gateway.ts'
import type { RealtimeFixture } from './helpers/realtime.ts'
import { MESSAGES, nextMessage, roomClients, type Connection } from './helpers/rooms.ts'

describe.skipIf(missing('redis', 'postgresql'))('two gateways on Redis and PostgreSQL', () => {
  // A short sweep, so that a killed instance is purged soon after its heartbeat expires.
  const env = useFixture({
    database: 'postgresql',
    bus: 'redis',
    gateways: 2,
    backend: true,
    registryOptions: { sweepIntervalMs: 100 },
  })
  const keyPrefix = `${env.prefix}rooms:`
  let a: TestGateway
  let b: TestGateway
  let onB: WsClient
  let backend: RealtimeFixture

  // Nothing any test here does is a Redis fault: a gateway that reports one (as `mizzen serve`
  // would log it) fails the test it happened in.
  afterEach(() => expect(env.takeRedisErrors()).toEqual([]))

  beforeAll(async () => {
    ;[a, b] = env.gateways as [TestGateway, TestGateway]
    backend = env.backend
    onB = env.connect(undefined, b)
    await onB.ack
  })

  it('should deliver a write made through gateway A to a subscriber on gateway B', async () => {
    const events = subscribeWs(onB.client, 'subscription { userEvents { verb node { name } } }')
    await waitForSubscribers(b, 1)
    const created = await postGraphQL(
      a.url,
      'mutation { createUser(data: { email: "a@cluster.test", name: "from A" }) { id } }',
    )
    expect(created.errors).toBeUndefined()
    expect((await events.next()).data!.userEvents).toEqual({ verb: 'CREATED', node: { name: 'from A' } })
    events.stop()
    await waitForSubscribers(b, 0)
  })

  it('should deliver a backend service’s write to subscribers on both gateways, once each', async () => {
    const onA = connectWs(a.wsUrl)
    const onAEvents = subscribeWs(onA.client, 'subscription { userEvents(verbs: [CREATED]) { node { name } } }')
    const onBEvents = subscribeWs(onB.client, 'subscription { userEvents(verbs: [CREATED]) { node { name } } }')
    await Promise.all([waitForSubscribers(a, 1), waitForSubscribers(b, 1)])
    await backend.prisma.user.create({ data: { email: 'svc@cluster.test', name: 'from a service' } })
    await backend.prisma.user.create({ data: { email: 'svc2@cluster.test', name: 'second' } })
    for (const events of [onAEvents, onBEvents]) {
      expect((await events.next()).data!.userEvents.node.name).toBe('from a service')
      expect((await events.next()).data!.userEvents.node.name).toBe('second')
      expect(events.received).toHaveLength(2)
    }
    onAEvents.stop()
    onBEvents.stop()
    await onA.client.dispose()
    await Promise.all([waitForSubscribers(a, 0), waitForSubscribers(b, 0)])
  })

  it('should deliver a broadcast sent to gateway A to room members on gateway B, and a blast to all', async () => {
    const inRoom = subscribeWs(
      onB.client,
      'subscription { room(name: "funSockets", events: ["hello"]) { room event data } }',
    )
    const messages = subscribeWs(onB.client, 'subscription { messages { room event } }')
    await waitForSubscribers(b, 2)
    const sent = await postGraphQL(
      a.url,
      'mutation { broadcast(rooms: ["funSockets"], event: "hello", data: "across") { recipients } }',
    )
    expect(sent.errors).toBeUndefined()
    expect((await inRoom.next()).data!.room).toEqual({ room: 'funSockets', event: 'hello', data: 'across' })
    expect((await messages.next()).data!.messages).toEqual({ room: 'funSockets', event: 'hello' })
    await postGraphQL(a.url, 'mutation { blast(event: "everyone") { recipients } }')
    expect((await messages.next()).data!.messages).toEqual({ room: null, event: 'everyone' })
    inRoom.stop()
    messages.stop()
  })

  it('should report /ready while Redis answers', async () => {
    const response = await fetch(new URL('/ready', b.url))
    expect(await response.json()).toMatchObject({ status: 'ready', checks: { database: 'ok', bus: 'ok' } })
  })

  describe('shared room membership', () => {
    const CHANGE = 'room connectionIds memberCount'
    /** Connections opened by the current test; `onB` stays open throughout, so roomClients' closeAll does not fit here. */
    const opened: Client[] = []
    async function connect(gateway: TestGateway): Promise<Connection> {
      const { client, ack } = connectWs(gateway.wsUrl)
      opened.push(client)
      return { client, id: String((await ack)?.connectionId) }
    }
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((client) => client.dispose()))
      await settled(async () => {
        expect(await a.rooms.registry.rooms()).toEqual([])
        expect(a.rooms.registry.localConnectionCount + b.rooms.registry.localConnectionCount).toBe(1)
      })
    })
    /** POSTs a mutation or query to a gateway and returns its data (errors fail the test). */
    async function call<T = Record<string, any>>(
      gateway: TestGateway,
      query: string,
      variables?: Record<string, unknown>,
    ): Promise<T> {
      const result = await postGraphQL<T>(gateway.url, query, variables)
      expect(result.errors).toBeUndefined()
      return result.data as T
    }
    const broadcast = (gateway: TestGateway, rooms: string[], event: string) =>
      call(
        gateway,
        'mutation($rooms: [String!]!, $event: String!) { broadcast(rooms: $rooms, event: $event) { recipients } }',
        { rooms, event },
      )
    const roomMembers = async (gateway: TestGateway, room: string) =>
      (await call(gateway, 'query($room: String!) { roomMembers(room: $room) }', { room })).roomMembers

    it('should make a join sent to A take effect on B before it returns', async () => {
      const clients = roomClients(b)
      const onB2 = await connect(b)
      const messages = await clients.subscribe(onB2, MESSAGES)
      const joined = await call(a, `mutation($id: ID!) { join(connectionId: $id, room: "lobby") { ${CHANGE} } }`, {
        id: onB2.id,
      })
      expect(joined.join).toEqual({ room: 'lobby', connectionIds: [onB2.id], memberCount: 1 })
      // Right after: the broadcast reaches B's connection, through the room it was joined to.
      expect((await broadcast(a, ['lobby'], 'welcome')).broadcast).toEqual({ recipients: 1 })
      expect(await nextMessage(messages)).toMatchObject({ room: 'lobby', event: 'welcome' })
      messages.stop()
    })

    it('should make a leave sent to A take effect on B before it returns', async () => {
      const clients = roomClients(b)
      const onB2 = await connect(b)
      const messages = await clients.subscribe(onB2, MESSAGES)
      await call(a, `mutation($id: ID!) { join(connectionId: $id, room: "lobby") { ${CHANGE} } }`, { id: onB2.id })
      const left = await call(a, `mutation($id: ID!) { leave(connectionId: $id, room: "lobby") { ${CHANGE} } }`, {
        id: onB2.id,
      })
      expect(left.leave).toEqual({ room: 'lobby', connectionIds: [onB2.id], memberCount: 0 })
      expect((await broadcast(a, ['lobby'], 'missed')).broadcast).toEqual({ recipients: 0 })
      // The next message B's connection receives is the one sent to it directly, not the room's.
      await broadcast(a, [onB2.id], 'direct')
      expect(await nextMessage(messages)).toMatchObject({ room: onB2.id, event: 'direct' })
      messages.stop()
    })

    it('should list the members and rooms of both gateways, and count recipients on both', async () => {
      const clientsB = roomClients(b)
      const [onA1, onB1, onB2] = [await connect(a), await connect(b), await connect(b)]
      for (const { id } of [onA1, onB1])
        await call(b, 'mutation($id: ID!) { join(connectionId: $id, room: "both") { memberCount } }', { id })
      await call(a, 'mutation($id: ID!) { join(connectionId: $id, room: "onlyB") { memberCount } }', { id: onB2.id })
      for (const gateway of [a, b]) {
        expect(await roomMembers(gateway, 'both')).toEqual([onA1.id, onB1.id].sort())
        expect((await call(gateway, 'query { rooms { name memberCount } }')).rooms).toEqual([
          { name: 'both', memberCount: 2 },
          { name: 'onlyB', memberCount: 1 },
        ])
        expect((await broadcast(gateway, ['both', 'onlyB'], 'count')).broadcast).toEqual({ recipients: 3 })
      }
      const onB1Rooms = await clientsB.execute(onB1, 'query { connection { id rooms } }')
      expect(onB1Rooms.connection).toEqual({ id: onB1.id, rooms: ['both'] })
    })

    it('should count a broadcast’s recipients over Redis only when the operation selects them', async () => {
      // What Redis runs, seen through MONITOR: the count is one script call (mizzenRoomsRecipients)
      // on this fixture's prefix; a marker sent after each mutation tells when all it ran was seen.
      const countSha = createHash('sha1').update(scripts.mizzenRoomsRecipients).digest('hex')
      const inspector = new Redis(redisUrl)
      const monitor = await inspector.monitor()
      let counts = 0
      const markers = new Set<string>()
      monitor.on('monitor', (_time: string, args: string[]) => {
        const [command, sha, , prefix] = args
        // ioredis sends a script's body (EVAL, which MONITOR shows escaped) the first time on a
        // connection, its sha (EVALSHA) after: the test counts once the gateway has sent it.
        if (command?.toLowerCase() === 'evalsha' && sha === countSha && prefix === keyPrefix) counts++
        if (command?.toLowerCase() === 'echo') markers.add(args[1]!)
      })
      const countsOf = async (query: string) => {
        const before = counts
        const data = await call(a, query)
        const marker = randomUUID()
        await inspector.echo(marker)
        await settled(() => expect(markers.has(marker)).toBe(true))
        return { data, counted: counts - before }
      }
      try {
        const member = await connect(b)
        await call(a, 'mutation($id: ID!) { join(connectionId: $id, room: "counted") { memberCount } }', {
          id: member.id,
        })
        await call(a, 'mutation { broadcast(rooms: ["counted"], event: "e") { recipients } }')
        const unasked = await countsOf('mutation { broadcast(rooms: ["counted"], event: "e") { messageId complete } }')
        expect(unasked.data.broadcast.complete).toBe(true)
        expect(unasked.counted).toBe(0)
        const blast = await countsOf('mutation { blast(event: "e") { complete } }')
        expect(blast).toEqual({ data: { blast: { complete: true } }, counted: 0 })
        const asked = await countsOf(
          'mutation { broadcast(rooms: ["counted"], event: "e") { ...Counted } } fragment Counted on BroadcastResult { n: recipients }',
        )
        expect(asked).toEqual({ data: { broadcast: { n: 1 } }, counted: 1 })
      } finally {
        monitor.disconnect()
        inspector.disconnect()
      }
    })

    it('should run leaveAll and addRoomMembersToRooms on the members of both gateways', async () => {
      const clientsB = roomClients(b)
      const [onA1, onB1] = [await connect(a), await connect(b)]
      const messagesB = await clientsB.subscribe(onB1, MESSAGES)
      for (const { id } of [onA1, onB1])
        await call(a, 'mutation($id: ID!) { join(connectionId: $id, room: "team") { memberCount } }', { id })
      const added = await call(
        b,
        `mutation { addRoomMembersToRooms(sourceRoom: "team", rooms: ["news"]) { ${CHANGE} } }`,
      )
      expect(added.addRoomMembersToRooms).toEqual([
        { room: 'news', connectionIds: [onA1.id, onB1.id].sort(), memberCount: 2 },
      ])
      expect((await broadcast(b, ['news'], 'headline')).broadcast).toEqual({ recipients: 2 })
      expect(await nextMessage(messagesB)).toMatchObject({ room: 'news', event: 'headline' })
      const left = await call(a, `mutation { leaveAll(room: "team") { ${CHANGE} } }`)
      expect(left.leaveAll).toEqual([
        { room: 'news', connectionIds: [onA1.id, onB1.id].sort(), memberCount: 0 },
        { room: 'team', connectionIds: [onA1.id, onB1.id].sort(), memberCount: 0 },
      ])
      expect((await call(b, 'query { rooms { name } }')).rooms).toEqual([])
      messagesB.stop()
    })

    it('should drop a connection that closes on B from the rooms A lists', async () => {
      const onB2 = await connect(b)
      await call(a, 'mutation($id: ID!) { join(connectionId: $id, room: "brief") { memberCount } }', { id: onB2.id })
      expect(await roomMembers(a, 'brief')).toEqual([onB2.id])
      await onB2.client.dispose()
      await settled(async () => expect(await roomMembers(a, 'brief')).toEqual([]))
    })

    it('should answer NOT_FOUND on both gateways for a connection no gateway holds', async () => {
      for (const gateway of [a, b]) {
        const result: GraphQLResponse = await postGraphQL(
          gateway.url,
          'mutation { join(connectionId: "nobody", room: "x") { memberCount } }',
        )
        expect(result.errors?.[0]?.extensions?.code).toBe('NOT_FOUND')
      }
    })

    it('should purge the connections of an instance that dies without cleanup', async () => {
      const instance = await spawnRegistryProcess(redisUrl, keyPrefix, 'doomed-connection', 'wake')
      expect(await roomMembers(a, 'wake')).toEqual(['doomed-connection'])
      await instance.crash()
      await settled(async () => expect(await roomMembers(a, 'wake')).toEqual([]))
      const result = await postGraphQL(
        b.url,
        'mutation { join(connectionId: "doomed-connection", room: "x") { memberCount } }',
      )
      expect(result.errors?.[0]?.extensions?.code).toBe('NOT_FOUND')
    })
  })
})

describe.skipIf(missing('redis'))('a gateway whose peer does not answer a rooms command', () => {
  const env = useFixture({ registry: 'redis', gateways: 0, registryOptions: { peerTimeoutMs: 200 } })
  it('should answer UNAVAILABLE, with the instance and the timeout, rather than an internal error', async () => {
    const keyPrefix = `${env.prefix}rooms:`
    const inspector = env.redis
    const mute = await env.connectRedis()
    const gateway = await env.startGateway({ nodeEnv: 'production', allowOpen: true })
    // A live instance that never answers: a heartbeat and a listener on its channel, nothing else.
    await inspector.hset(`${keyPrefix}owners`, 'muted-connection', 'mute')
    await inspector.set(`${keyPrefix}instance:mute`, '1', 'PX', 60_000)
    await mute.subscribe(`${keyPrefix}commands:mute`)
    const result = await postGraphQL(
      gateway.url,
      'mutation { join(connectionId: "muted-connection", room: "x") { memberCount } }',
    )
    expect(result.errors?.[0]).toMatchObject({
      message: 'gateway instance mute did not answer the rooms command "join" within 200 ms',
      extensions: { code: 'UNAVAILABLE' },
    })
  })
})
