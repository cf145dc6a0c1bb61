/**
 * The Redis rooms registry under Redis faults, in one process: a redis-server of the test's own,
 * killed and restarted (with its data, or empty), and a TCP proxy in front of it that cuts or
 * black-holes the connection. Local operations never wait on Redis; cluster ones fail fast with
 * UNAVAILABLE; once Redis answers, every instance rewrites its share from its local state, so no
 * ghost is left and nothing the instances did meanwhile is lost.
 */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ServiceUnavailableError } from '../../src/errors.ts'
import {
  createRedisRoomRegistry,
  type RedisRoomRegistry,
  type RedisRoomRegistryOptions,
} from '../../src/rooms/redis.ts'
import { UnknownConnectionError } from '../../src/rooms/registry.ts'
import { spawnRegistryProcess } from '../helpers/crash.ts'
import { settled } from '../helpers/gateway.ts'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.ts'
import { missing } from '../helpers/services.ts'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts'

const server = { kind: 'server' } as const
/**
 * Short timings, so that faults are seen and healed within a fraction of a second; a command to a
 * live instance gets 2 s, since a loaded 2-core CI machine once took longer than 500 ms to answer one.
 */
const fast: Partial<RedisRoomRegistryOptions> = {
  redisTimeoutMs: 300,
  peerTimeoutMs: 2000,
  heartbeatTtlMs: 900,
  sweepIntervalMs: 300,
}

let redis: RedisServer
let inspector: Redis
const open: RedisRoomRegistry[] = []
const proxies: TcpProxy[] = []

/** A proxy in front of the test's Redis, closed after the test. */
async function proxy(): Promise<TcpProxy> {
  const started = await startTcpProxy({ port: redis.port })
  proxies.push(started)
  return started
}

/** Registries on a fresh prefix, each reaching Redis at its URL and holding the given connections. */
async function cluster(members: { url: string; holds: string[] }[]) {
  const keyPrefix = `mizzen-faults-${randomUUID()}:`
  const errors: string[] = []
  const registries: RedisRoomRegistry[] = []
  for (const { url, holds } of members) {
    const registry = await createRedisRoomRegistry({
      url,
      keyPrefix,
      ...fast,
      onError: (error) => errors.push(String(error)),
    })
    open.push(registry)
    for (const id of holds) await registry.addConnection(id)
    registries.push(registry)
  }
  /** What Redis holds, read directly: each room's members, and each instance's connections. */
  const stored = async () => {
    const rooms = (await inspector.smembers(`${keyPrefix}rooms`)).sort()
    const members = Object.fromEntries(
      await Promise.all(
        rooms.map(async (room) => [room, (await inspector.smembers(`${keyPrefix}room:${room}`)).sort()]),
      ),
    )
    const owners = await inspector.hgetall(`${keyPrefix}owners`)
    return { members, connections: Object.keys(owners).sort() }
  }
  return { registries, errors, stored, keyPrefix }
}

/** The instance Redis names as holding a connection. */
const ownerOf = async (keyPrefix: string, connectionId: string) =>
  String(await inspector.hget(`${keyPrefix}owners`, connectionId))

const local = (registry: RedisRoomRegistry, room: string) =>
  [...registry.localRecipients({ rooms: [room], omit: [] }).keys()].sort()

describe.skipIf(missing('redis-server'))('redis rooms registry under Redis faults', () => {
  beforeAll(async () => {
    redis = await startRedisServer()
    inspector = new Redis(redis.url, { retryStrategy: () => 50 })
    inspector.on('error', () => {})
  })
  afterEach(async () => {
    redis.resume()
    if (!redis.running) await redis.restart()
    await Promise.all(open.splice(0).map((registry) => registry.close()))
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
  })
  afterAll(async () => {
    inspector?.disconnect()
    await redis?.stop()
  })

  it('should go on locally while Redis is down, fail cluster operations fast, and rewrite Redis from the local state once it is back', async () => {
    const {
      registries: [a, b],
      stored,
    } = await cluster([
      { url: redis.url, holds: ['a1', 'a2', 'a3'] },
      { url: redis.url, holds: ['b1'] },
    ])
    for (const id of ['a1', 'a2']) await a!.join(id, 'x', server)
    await b!.join('b1', 'x', server)
    await redis.kill()
    // Local: everything goes on, at once, and delivery sees it.
    await a!.removeConnection('a2')
    await a!.addConnection('a4')
    expect(await a!.join('a4', 'x', server)).toMatchObject({ room: 'x', connectionIds: ['a4'] })
    expect(await a!.leave('a1', 'x')).toMatchObject({ room: 'x', connectionIds: ['a1'] })
    await a!.join('a3', 'y', { kind: 'subscription', subscriptionId: 's1' })
    await a!.release('a3', 'y', 's1')
    expect(local(a!, 'x')).toEqual(['a4'])
    expect(a!.redisState).toBe('broken')
    // Cluster-wide: UNAVAILABLE, naming Redis.
    await expect(a!.members('x')).rejects.toBeInstanceOf(ServiceUnavailableError)
    await expect(a!.join('b1', 'z', server)).rejects.toMatchObject({ service: 'redis' })
    await expect(a!.recipientCount({ rooms: ['x'], omit: [] })).rejects.toBeInstanceOf(ServiceUnavailableError)
    await expect(a!.ping()).rejects.toThrow(/Redis is unavailable/)
    await b!.removeConnection('b1')

    await redis.restart()
    await settled(() => expect([a!.redisState, b!.redisState]).toEqual(['in-sync', 'in-sync']))
    expect(await stored()).toEqual({ members: { x: ['a4'] }, connections: ['a1', 'a3', 'a4'] })
    expect(await b!.members('x')).toEqual(['a4'])
    expect(await b!.recipientCount({ rooms: ['x', 'y'], omit: [] })).toBe(1)
    await b!.join('a1', 'x', server)
    expect(local(a!, 'x')).toEqual(['a1', 'a4'])
  })

  it('should write everything back when Redis comes back empty', async () => {
    const {
      registries: [a, b],
      stored,
    } = await cluster([
      { url: redis.url, holds: ['a1', 'a2'] },
      { url: redis.url, holds: ['b1'] },
    ])
    await a!.join('a1', 'x', server)
    await b!.join('b1', 'x', server)
    await b!.join('b1', 'y', server)
    await redis.restart({ data: 'empty' })
    await settled(async () =>
      expect(await stored()).toEqual({ members: { x: ['a1', 'b1'], y: ['b1'] }, connections: ['a1', 'a2', 'b1'] }),
    )
    await settled(() => expect([a!.redisState, b!.redisState]).toEqual(['in-sync', 'in-sync']))
    expect(await a!.recipientCount({ rooms: null, omit: [] })).toBe(3)
    expect(await a!.leave('b1', 'y')).toEqual({ room: 'y', connectionIds: ['b1'], memberCount: 0 })
  })

  for (const fault of ['cut', 'black-hole'] as const) {
    it(`should heal after a partition (${fault}) while Redis keeps its data: no ghost of a connection that closed meanwhile`, async () => {
      const link = await proxy()
      const {
        registries: [a, b],
        stored,
      } = await cluster([
        { url: link.url('redis'), holds: ['a1', 'a2', 'a3'] },
        { url: link.url('redis'), holds: ['b1'] },
      ])
      for (const id of ['a1', 'a2', 'a3']) await a!.join(id, 'x', server)
      await b!.join('b1', 'x', server)
      if (fault === 'cut') link.cut()
      else link.blackHole()
      // Bounded: each of these resolves or rejects within the registry's timeouts.
      await a!.removeConnection('a2')
      await a!.leave('a3', 'x')
      await expect(b!.members('x')).rejects.toBeInstanceOf(ServiceUnavailableError)
      await b!.addConnection('b2')
      await b!.join('b2', 'x', server)
      await b!.removeConnection('b1')
      link.restore()
      await settled(async () =>
        expect(await stored()).toEqual({ members: { x: ['a1', 'b2'] }, connections: ['a1', 'a3', 'b2'] }),
      )
      await settled(() => expect([a!.redisState, b!.redisState]).toEqual(['in-sync', 'in-sync']))
      expect(await a!.members('x')).toEqual(['a1', 'b2'])
      expect(await a!.recipientCount({ rooms: ['x'], omit: [] })).toBe(2)
    })
  }

  it('should answer NOT_FOUND for the connections of an instance cut off long enough to count as dead, and take them back once it returns', async () => {
    const link = await proxy()
    const {
      registries: [a, b],
    } = await cluster([
      { url: link.url('redis'), holds: ['a1'] },
      { url: redis.url, holds: ['b1'] },
    ])
    await a!.join('a1', 'x', server)
    link.cut()
    // B still reaches Redis: once A's heartbeat expired, A's connection is gone from its answers.
    await settled(async () => expect(await b!.members('x')).toEqual([]))
    await expect(b!.join('a1', 'y', server)).rejects.toBeInstanceOf(UnknownConnectionError)
    expect(await b!.recipientCount({ rooms: null, omit: [] })).toBe(1)
    // A goes on locally meanwhile.
    await a!.join('a1', 'y', server)
    link.restore()
    await settled(async () => expect(await b!.members('x')).toEqual(['a1']))
    expect(await b!.roomsOf('a1')).toEqual(['x', 'y'])
    // A writes its share back as soon as Redis answers; its command listener may resubscribe a
    // moment later, and until then an operation on its connections is UNAVAILABLE (retryable).
    await settled(async () => expect(await b!.leave('a1', 'y')).toMatchObject({ connectionIds: ['a1'] }))
  })

  it('should drop a ghost (Redis lists a connection its live instance does not hold) as soon as an operation meets it', async () => {
    const {
      registries: [a, b],
      keyPrefix,
      stored,
    } = await cluster([
      { url: redis.url, holds: ['a1'] },
      { url: redis.url, holds: ['b1'] },
    ])
    await a!.join('a1', 'x', server)
    // What a lost write leaves behind: A's connection 'ghost', in room x, which A does not hold.
    const leaveGhost = () =>
      inspector
        .multi()
        .hset(`${keyPrefix}owners`, 'ghost', a!.instanceId)
        .sadd(`${keyPrefix}instance:${a!.instanceId}:connections`, 'ghost')
        .sadd(`${keyPrefix}room:x`, 'ghost')
        .sadd(`${keyPrefix}conn:ghost`, 'x')
        .exec()
    for (const meet of [() => b!.join('ghost', 'y', server), () => a!.leave('ghost', 'x')]) {
      await leaveGhost()
      await expect(meet()).rejects.toBeInstanceOf(UnknownConnectionError)
      await settled(async () => expect(await stored()).toEqual({ members: { x: ['a1'] }, connections: ['a1', 'b1'] }))
    }
  })

  it('should count a crashed instance dead once nobody has listened for it for a third of its heartbeat TTL, long before the heartbeat expires', async () => {
    const {
      registries: [a],
      keyPrefix,
    } = await cluster([{ url: redis.url, holds: ['a1'] }])
    await a!.join('a1', 'x', server)
    // A heartbeat of 10 minutes: only its silence can make it dead within this test.
    const child = await spawnRegistryProcess(redis.url, keyPrefix, 'doomed', 'x', 600_000)
    expect(await a!.members('x')).toEqual(['a1', 'doomed'])
    await child.crash()
    // Its connections to Redis closed with it: the first look notes the silence, and it is still alive…
    await settled(async () =>
      expect(await inspector.exists(`${keyPrefix}instance:${await ownerOf(keyPrefix, 'doomed')}:deaf`)).toBe(1),
    )
    await expect(a!.join('doomed', 'y', server)).rejects.toMatchObject({ service: 'gateway' })
    expect(await a!.members('x')).toEqual(['a1', 'doomed'])
    // …until the silence is older than the grace (200 s here; written as if it had passed).
    const instance = await ownerOf(keyPrefix, 'doomed')
    await inspector.set(`${keyPrefix}instance:${instance}:deaf`, Date.now() - 300_000)
    expect(await a!.members('x')).toEqual(['a1'])
    await expect(a!.join('doomed', 'y', server)).rejects.toBeInstanceOf(UnknownConnectionError)
    expect(await inspector.exists(`${keyPrefix}instance:${instance}`)).toBe(0)
  })

  it('should keep alive an instance whose listener reconnects within the grace, however old a past silence', async () => {
    const {
      registries: [a, b],
      keyPrefix,
    } = await cluster([
      { url: redis.url, holds: ['a1'] },
      { url: redis.url, holds: ['b1'] },
    ])
    await b!.join('b1', 'x', server)
    await inspector.set(`${keyPrefix}instance:${b!.instanceId}:deaf`, Date.now() - 300_000)
    expect(await a!.members('x')).toEqual(['b1'])
    expect(await inspector.exists(`${keyPrefix}instance:${b!.instanceId}:deaf`)).toBe(0)
  })

  it('should fail cluster operations fast and keep local ones going while Redis is frozen (SIGSTOP)', async () => {
    const {
      registries: [a, b],
      stored,
    } = await cluster([
      { url: redis.url, holds: ['a1'] },
      { url: redis.url, holds: ['b1'] },
    ])
    redis.pause()
    await expect(a!.members('x')).rejects.toThrow('Redis did not answer within 300 ms')
    await a!.join('a1', 'x', server)
    await expect(a!.join('b1', 'x', server)).rejects.toBeInstanceOf(ServiceUnavailableError)
    redis.resume()
    await settled(async () => expect(await stored()).toEqual({ members: { x: ['a1'] }, connections: ['a1', 'b1'] }))
    await settled(() => expect(a!.redisState).toBe('in-sync'))
    expect(await a!.join('b1', 'x', server)).toEqual({ room: 'x', connectionIds: ['b1'], memberCount: 2 })
    expect(local(b!, 'x')).toEqual(['b1'])
  })
})
