/**
 * Several gateways on one Redis and one PostgreSQL database behave as one: model events and room
 * broadcasts reach subscribers on every instance, wherever the write or the broadcast happened.
 */
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisBus } from '../src/bus/redis.ts'
import { connectWs, postGraphQL, subscribeWs, type WsClient } from './helpers/clients.ts'
import { databaseKinds, type TestDatabase } from './helpers/databases.ts'
import { startGateway, waitForSubscribers, type TestGateway } from './helpers/gateway.ts'
import { openRealtime, type RealtimeFixture } from './helpers/realtime.ts'

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const postgres = databaseKinds.find((kind) => kind.provider === 'postgresql')!

describe('two gateways on Redis and PostgreSQL', () => {
  const channelPrefix = `mizzen-cluster-${randomUUID()}:`
  let database: TestDatabase
  let a: TestGateway
  let b: TestGateway
  let onB: WsClient
  let backend: RealtimeFixture

  beforeAll(async () => {
    database = await postgres.create()
    a = await startGateway(database, { bus: await createRedisBus({ url: redisUrl, channelPrefix }) })
    b = await startGateway(database, { bus: await createRedisBus({ url: redisUrl, channelPrefix }) })
    backend = await openRealtime(database, await createRedisBus({ url: redisUrl, channelPrefix }))
    onB = connectWs(b.wsUrl)
    await onB.ack
  })
  afterAll(async () => {
    await onB?.client.dispose()
    await Promise.all([a?.close(), b?.close()])
    await backend?.close()
    await database?.drop()
  })

  it('should deliver a write made through gateway A to a subscriber on gateway B', async () => {
    const events = subscribeWs(onB.client, 'subscription { userEvents { verb node { name } } }')
    await waitForSubscribers(b, 1)
    const created = await postGraphQL(a.url, 'mutation { createUser(data: { email: "a@cluster.test", name: "from A" }) { id } }')
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
    const inRoom = subscribeWs(onB.client, 'subscription { room(name: "funSockets", events: ["hello"]) { room event data } }')
    const messages = subscribeWs(onB.client, 'subscription { messages { room event } }')
    await waitForSubscribers(b, 2)
    const sent = await postGraphQL(a.url, 'mutation { broadcast(rooms: ["funSockets"], event: "hello", data: "across") { recipients } }')
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
})
