/**
 * Two gateway processes (`mizzen serve`, as an operator runs them) whose bus and rooms registry
 * run on a Redis Cluster of this file's own (six nodes: three primaries, three replicas;
 * MIZZEN_REDIS_CLUSTER, no REDIS_URL), and one PostgreSQL database. Broadcasts in 20 rooms and
 * model events cross gateways, topics' keys and shard channels sit on several primaries, each
 * gateway's registry share and command channels sit in its own slot, `after:` resumes on the
 * other gateway, and a primary SIGKILLed during 190 broadcasts: each one delivered or reported
 * (`complete: false`), none lost silently, and delivery goes on after the failover.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Client } from 'graphql-ws'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { connectWs, subscribeWs, type GraphQLResponse, type Subscription } from '../helpers/clients.ts'
import { databaseKinds, type TestDatabase } from '../helpers/databases.ts'
import { settled } from '../helpers/gateway.ts'
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts'
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.ts'
import { missing } from '../helpers/services.ts'

const postgres = databaseKinds.find((kind) => kind.provider === 'postgresql')!
const ROOM = 'subscription($room: String!, $after: String) { room(name: $room, after: $after) { cursor data } }'
const USER_EVENTS = 'subscription { userEvents { recordId node { name } } }'
const BROADCAST =
  'mutation($room: String!, $seq: Int!) { broadcast(rooms: [$room], event: "tick", data: { seq: $seq }) { recipients complete } }'
const CREATE_USER = 'mutation($data: UserCreateInput!) { createUser(data: $data) { id } }'

type RoomEvent = { room: { cursor: string; data: { seq: number } } }

let cluster: RedisCluster
let database: TestDatabase
let a: GatewayProcess
let b: GatewayProcess
const prefix = `rc-${randomUUID().slice(0, 8)}:`
const clients: Client[] = []

async function call<T = Record<string, any>>(
  gateway: GatewayProcess,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GraphQLResponse<T>> {
  const response = await fetch(gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(10_000),
  })
  return (await response.json()) as GraphQLResponse<T>
}

async function subscribe<T>(gateway: GatewayProcess, query: string, variables?: Record<string, unknown>) {
  const { client, ack } = connectWs(gateway.wsUrl)
  clients.push(client)
  await ack
  const subscription = subscribeWs<T>(client, query, variables)
  return { client, subscription }
}

const seqsOf = (subscription: Subscription<RoomEvent>) =>
  subscription.received.flatMap((result) => (result.data ? [result.data.room.data.seq] : []))

/** Waits until `gateway` counts `count` members in `room` (its subscribers are in place cluster-wide). */
const membersIn = (gateway: GatewayProcess, room: string, count: number) =>
  settled(async () =>
    expect(
      (await call(gateway, 'query($room: String!) { roomMembers(room: $room) }', { room })).data?.roomMembers,
    ).toHaveLength(count),
  )

describe.skipIf(missing('redis-server', 'postgresql'))('faults: two gateway processes on a Redis Cluster', () => {
  beforeAll(async () => {
    ;[cluster, database] = await Promise.all([startRedisCluster(), postgres.create()])
    const env = {
      NODE_ENV: 'production',
      MIZZEN_ALLOW_OPEN: 'true',
      MIZZEN_REDIS_CLUSTER: cluster.seeds.join(','),
      MIZZEN_REDIS_PREFIX: prefix,
      DATABASE_URL: database.url,
      MIZZEN_MAX_CONNECTIONS_PER_IP: '10000',
      MIZZEN_MAX_MESSAGES_PER_SECOND: '10000',
    }
    a = await startGatewayProcess('A', env)
    b = await startGatewayProcess('B', env)
  }, 120_000)

  afterAll(async () => {
    await Promise.all(clients.splice(0).map((client) => client.dispose()))
    await Promise.all([a?.kill('SIGTERM'), b?.kill('SIGTERM')])
    await cluster?.stop()
    await database?.drop()
  })

  it('should carry broadcasts in 20 rooms and model events across gateways, with topics on several primaries', async () => {
    const rooms = Array.from({ length: 20 }, (_, i) => `spread-${i}`)
    const members = await Promise.all(rooms.map((room) => subscribe<RoomEvent>(b, ROOM, { room })))
    const users = await subscribe<{ userEvents: { node: { name: string } } }>(b, USER_EVENTS)
    await Promise.all(rooms.map((room) => membersIn(a, room, 1)))
    for (let seq = 1; seq <= 3; seq++)
      for (const room of rooms) {
        const sent = await call(a, BROADCAST, { room, seq })
        expect(sent.data?.broadcast).toEqual({ recipients: 1, complete: true })
      }
    await settled(() => {
      for (const { subscription } of members) expect(seqsOf(subscription)).toEqual([1, 2, 3])
    })
    // Model events (topic model:User) cross too; a gateway subscribes when its first subscriber arrives.
    await sleep(500)
    expect((await call(a, CREATE_USER, { data: { email: `u-${randomUUID()}@c.test`, name: 'crossed' } })).errors).toBe(
      undefined,
    )
    await settled(() =>
      expect(users.subscription.received.map((r) => r.data?.userEvents.node.name)).toEqual(['crossed']),
    )
    // Each topic's channel is a shard channel of the primary serving its slot (a gateway
    // subscribes to a topic once a client does), and the log of each topic used is there too.
    const withChannels: number[] = []
    const logs: string[] = []
    for (const { port } of await cluster.primaries()) {
      const redis = new Redis({ port, host: '127.0.0.1' })
      const channels = (await redis.call('PUBSUB', 'SHARDCHANNELS', `${prefix}*`)) as string[]
      for (const channel of channels) if (await redis.exists(`${channel}log`)) logs.push(channel)
      redis.disconnect()
      if (channels.length) withChannels.push(port)
    }
    // presence:changed: the gateways announce the rooms whose presence changed (the joins above).
    expect(logs.sort()).toEqual([`${prefix}{model:User}`, `${prefix}{presence:changed}`, `${prefix}{rooms:message}`])
    expect(withChannels.length).toBeGreaterThanOrEqual(2)
    // The rooms registry: each gateway's keys and its two command channels (sharded) in the slot
    // of its hash tag, on the primary serving it; the index of instances lists both.
    const admin = new Redis({ port: cluster.ports[0], host: '127.0.0.1' })
    const reader = new Redis.Cluster([{ port: cluster.ports[0]!, host: '127.0.0.1' }])
    const instances = await reader.smembers(`${prefix}rooms:instances`)
    reader.disconnect()
    expect(instances).toHaveLength(2)
    for (const instance of instances) {
      const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', `${prefix}rooms:{${instance}}:`))
      const node = new Redis({ port: await cluster.primaryOf(slot), host: '127.0.0.1' })
      const channels = (await node.call('PUBSUB', 'SHARDCHANNELS', `${prefix}rooms:{${instance}}:*`)) as string[]
      expect(channels.sort()).toEqual([
        `${prefix}rooms:{${instance}}:commands:${instance}`,
        `${prefix}rooms:{${instance}}:replies:${instance}`,
      ])
      expect(await node.exists(`${prefix}rooms:{${instance}}:instance:${instance}`)).toBe(1)
      node.disconnect()
    }
    admin.disconnect()
  })

  it('should resume with after: on the other gateway exactly what was broadcast meanwhile', async () => {
    const room = `resume-${randomUUID()}`
    const first = await subscribe<RoomEvent>(a, ROOM, { room })
    await membersIn(b, room, 1)
    await call(b, BROADCAST, { room, seq: 1 })
    await settled(() => expect(seqsOf(first.subscription)).toEqual([1]))
    const cursor = first.subscription.received[0]!.data!.room.cursor
    await first.client.dispose()
    for (let seq = 2; seq <= 6; seq++) await call(a, BROADCAST, { room, seq })
    const again = await subscribe<RoomEvent>(b, ROOM, { room, after: cursor })
    await settled(() => expect(seqsOf(again.subscription)).toEqual([2, 3, 4, 5, 6]))
  })

  it('should deliver or report each of 190 broadcasts while the primary of the rooms topic is SIGKILLed, and go on after the failover', async () => {
    const room = `failover-${randomUUID()}`
    const remote = await subscribe<RoomEvent>(b, ROOM, { room })
    await membersIn(a, room, 1)
    const admin = new Redis({ port: cluster.ports[0], host: '127.0.0.1' })
    const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', `${prefix}{rooms:message}`))
    admin.disconnect()
    const victim = await cluster.primaryOf(slot)
    const answers: { seq: number; complete: boolean | undefined; code: unknown }[] = []
    for (let seq = 1; seq <= 190; seq++) {
      if (seq === 60) await cluster.kill(victim)
      const result = await call<{ broadcast: { complete: boolean } }>(a, BROADCAST, { room, seq })
      answers.push({ seq, complete: result.data?.broadcast.complete, code: result.errors?.[0]?.extensions?.code })
      await sleep(10)
    }
    await cluster.waitHealthy()
    // Every broadcast answered (none failed or hung); some said their cluster part was not complete.
    expect(answers.filter((answer) => answer.code !== undefined)).toEqual([])
    expect(answers.filter((answer) => !answer.complete).length).toBeGreaterThan(0)
    // The remote member gets all of them once Redis took them: in order, once each; none lost.
    await vi.waitFor(() => expect(seqsOf(remote.subscription).at(-1)).toBe(190), { timeout: 60_000, interval: 20 })
    expect(seqsOf(remote.subscription)).toEqual(answers.map((answer) => answer.seq))
    // Live again after the failover, on the promoted replica.
    const after = await call(a, BROADCAST, { room, seq: 191 })
    expect(after.data?.broadcast).toEqual({ recipients: 1, complete: true })
    await settled(() => expect(seqsOf(remote.subscription).at(-1)).toBe(191))
    // The rooms registry answers across gateways again (whichever slots the dead primary served).
    await Promise.all([membersIn(a, room, 1), membersIn(b, room, 1)])
    console.info(
      `cluster failover summary ${JSON.stringify({ sent: 190, incomplete: answers.filter((answer) => !answer.complete).length })}`,
    )
  }, 120_000)
})
