/**
 * Presence across gateways under faults (docs/rooms.md, Presence): gateway A in this process,
 * gateway B in a process of its own (to SIGKILL), on a Redis of their own behind a TCP proxy (to
 * cut, or to restart empty). Default liveness timings (heartbeat 10 s) and the default leave
 * grace (5 s), as deployed.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisBus } from '../src/bus/redis.ts'
import { createRedisRoomRegistry, type RedisRoomRegistry } from '../src/rooms/redis.ts'
import { JWT_SECRET, SERVICE_KEY } from './helpers/auth.ts'
import { executeWs, postGraphQL, subscribeWs } from './helpers/clients.ts'
import { databaseKinds, type TestDatabase } from './helpers/databases.ts'
import { settled, startGateway, type TestGateway } from './helpers/gateway.ts'
import { startGatewayProcess, type GatewayProcess } from './helpers/gateway-process.ts'
import { connectAs, credentials, joinRoom, member, nextEvent, watch, type Who } from './helpers/presence.ts'
import { startRedisServer, type RedisServer } from './helpers/redis-server.ts'
import { missing } from './helpers/services.ts'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts'

const sqlite = databaseKinds.find((kind) => kind.provider === 'sqlite')!
const prefix = `mizzen-presence-${randomUUID()}:`

describe.skipIf(missing('redis'))('presence over two gateways, one in a process of its own', () => {
  let redis: RedisServer
  let link: TcpProxy
  let databases: TestDatabase[] = []
  let a: TestGateway
  let registry: RedisRoomRegistry
  let b: GatewayProcess
  const cleanups: (() => unknown)[] = []
  const defer = (dispose: () => unknown) => cleanups.push(dispose)
  /** B as a connectAs target: its WebSocket URL is all the helpers use of it, but for waiting on joins. */
  const onB = () => ({ wsUrl: b.wsUrl }) as TestGateway

  const presenceOn = async (url: string, room: string) =>
    (
      await postGraphQL(
        url,
        'query ($room: String!) { presence(room: $room) { key connections } }',
        { room },
        await credentials('service'),
      )
    ).data?.presence as { key: string; connections: number }[] | undefined

  beforeAll(async () => {
    redis = await startRedisServer()
    link = await startTcpProxy({ port: redis.port })
    const url = link.url('redis')
    databases = [await sqlite.create(), await sqlite.create()]
    registry = await createRedisRoomRegistry({ url, keyPrefix: `${prefix}rooms:` })
    a = await startGateway(databases[0]!, {
      auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET },
      bus: await createRedisBus({ url, prefix }),
      rooms: { registry },
    })
    b = await startGatewayProcess('B', {
      NODE_ENV: 'production',
      REDIS_URL: url,
      MIZZEN_REDIS_PREFIX: prefix,
      DATABASE_URL: databases[1]!.url,
      MIZZEN_API_KEYS: SERVICE_KEY,
      MIZZEN_JWT_SECRET: JWT_SECRET,
      MIZZEN_MAX_CONNECTIONS_PER_IP: '10000',
      MIZZEN_MAX_MESSAGES_PER_SECOND: '10000',
    })
  })

  afterAll(async () => {
    for (const cleanup of cleanups.splice(0).reverse())
      await Promise.resolve()
        .then(cleanup)
        .catch(() => {})
    await b?.kill('SIGTERM')
    await a?.close()
    await link?.close()
    await redis?.stop()
    for (const database of databases) await database.drop()
  })

  /** A connection on B as `who`, in `room`: joined once A reads it in the room's members. */
  async function joinOnB(who: Who, room: string) {
    const connection = await connectAs(onB(), who, defer)
    subscribeWs(connection.client, 'subscription ($room: String!) { room(name: $room) { event } }', { room })
    await settled(async () =>
      expect((await registry.presence(room)).map((entry) => entry.connectionId)).toContain(connection.id),
    )
    return connection
  }

  for (const fault of ['cut', 'emptied'] as const) {
    it(`heals a Redis ${fault === 'cut' ? 'cut off' : 'restarted empty'} with no ghost and no LEAVE/JOIN storm`, async () => {
      const room = `fault-${fault}-${randomUUID()}`
      const watcher = await connectAs(a, 'service', defer)
      const alice = await connectAs(a, { user: 'alice' }, defer)
      await joinRoom(alice, room)
      await joinOnB({ user: 'bob' }, room)
      const carol = await joinOnB({ user: 'carol' }, room)
      const { subscription, sync } = await watch(watcher, room)
      expect(sync.members.map(({ key }) => key)).toEqual(['alice', 'bob', 'carol'])

      if (fault === 'cut') link.cut()
      else await redis.kill()
      // Carol leaves while Redis is away: once it is back, she leaves everywhere (after the grace), and only she.
      await carol.close()
      await sleep(3000)
      if (fault === 'cut') link.restore()
      else await redis.restart({ data: 'empty' })
      await settled(async () => {
        expect(registry.redisState).toBe('in-sync')
        expect(await presenceOn(a.url, room)).toEqual([
          { key: 'alice', connections: 1 },
          { key: 'bob', connections: 1 },
        ])
        expect(await presenceOn(b.url, room)).toEqual(await presenceOn(a.url, room))
      })
      expect(await nextEvent(subscription, 20_000)).toMatchObject({
        kind: 'LEAVE',
        count: 2,
        members: [member('carol', 'user', 0)],
      })
      // Then nothing until the next change: no member flapped through the break.
      await joinOnB({ user: 'dave' }, room)
      expect(await nextEvent(subscription)).toMatchObject({
        kind: 'JOIN',
        count: 3,
        members: [member('dave', 'user', 1)],
      })
      expect(subscription.received).toHaveLength(3)
    }, 90_000)
  }

  it('makes a SIGKILLed gateway’s members leave everywhere within 15 s; a user also on a live gateway stays', async () => {
    const room = `crash-${randomUUID()}`
    const watcher = await connectAs(a, 'service', defer)
    const erinHere = await connectAs(a, { user: 'erin' }, defer)
    await joinRoom(erinHere, room)
    await joinOnB({ user: 'erin' }, room)
    await joinOnB({ user: 'frank' }, room)
    const { subscription, sync } = await watch(watcher, room)
    expect(sync.members).toEqual([member('erin', 'user', 2), member('frank', 'user', 1)])

    const killedAt = Date.now()
    await b.kill('SIGKILL')
    const events = [await nextEvent(subscription, 20_000), await nextEvent(subscription, 20_000)]
    const elapsed = Date.now() - killedAt
    expect(events.map(({ kind, members }) => [kind, members])).toEqual([
      ['UPDATE', [member('erin', 'user', 1)]],
      ['LEAVE', [member('frank', 'user', 0)]],
    ])
    expect(events[1]!.count).toBe(1)
    expect(elapsed).toBeLessThan(15_000)
    const listed = await executeWs(
      watcher.client,
      'query ($room: String!) { presence(room: $room) { key connections } }',
      {
        room,
      },
    )
    expect(listed.data).toEqual({ presence: [{ key: 'erin', connections: 1 }] })
    console.info(`presence: a SIGKILLed gateway's member left after ${elapsed} ms`)
  }, 60_000)
})
