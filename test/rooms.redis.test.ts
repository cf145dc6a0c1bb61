/**
 * The Redis rooms registry across instances, on one Redis and on a six-node Redis Cluster of this
 * file's own: several registries on one key prefix behave as one registry, operations run where
 * the connection is held, and the connections of a dead instance are purged. (The
 * single-instance contract is in rooms.registry.test.ts.) Tests that plant or read keys name them
 * through the backend: on a cluster an instance's keys carry its hash tag (`p{<instance>}:…`).
 */
import { randomUUID } from 'node:crypto'
import { Redis, type Cluster } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createRedisRoomRegistry,
  RoomCommandTimeoutError,
  type RedisRoomRegistry,
  type RedisRoomRegistryOptions,
} from '../src/rooms/redis.ts'
import { createRedisBus } from '../src/bus/redis.ts'
import type { ModelEvent } from '../src/events.ts'
import { SharedRedis } from '../src/redis/shared.ts'
import { UnknownConnectionError } from '../src/rooms/registry.ts'
import { record } from './helpers/bus.ts'
import { spawnRegistryProcess } from './helpers/crash.ts'
import { settled } from './helpers/gateway.ts'
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster.ts'
import { describeEach, redisUrl, type Needing } from './helpers/services.ts'

const server = { kind: 'server' } as const
const userEvent = (recordId: string): ModelEvent => ({
  model: 'User',
  verb: 'MESSAGE',
  recordId,
  node: { id: Number(recordId) },
  at: new Date().toISOString(),
})

/** Where the registries run, and how a test looks at (and plants) their keys there. */
interface Backend extends Needing {
  readonly name: string
  start(): Promise<void>
  stop(): Promise<void>
  readonly target: () => { url: string } | { cluster: readonly string[] }
  /** A plain client for keys (routed by slot on a cluster). */
  readonly inspector: () => Redis | Cluster
  /** The key `name` of `instance`'s share under `keyPrefix`. */
  key(keyPrefix: string, instance: string, name: string): string
  /** Every key under `keyPrefix`. */
  keys(keyPrefix: string): Promise<string[]>
  /** Listens on `instance`'s command channel (as a live instance that never answers); returns how to stop. */
  listen(keyPrefix: string, instance: string): Promise<() => void>
  /** The target as test/helpers/registry-process.ts takes it. */
  readonly processTarget: () => string
}

const single = (): Backend => {
  let inspector: Redis
  const opened: Redis[] = []
  return {
    name: 'one redis',
    needs: ['redis'],
    async start() {
      inspector = new Redis(redisUrl)
    },
    async stop() {
      for (const redis of [inspector, ...opened.splice(0)]) redis?.disconnect()
    },
    target: () => ({ url: redisUrl }),
    inspector: () => inspector,
    key: (keyPrefix, _instance, name) => `${keyPrefix}${name}`,
    keys: (keyPrefix) => inspector.keys(`${keyPrefix}*`),
    async listen(keyPrefix, instance) {
      const listener = new Redis(redisUrl)
      opened.push(listener)
      await listener.subscribe(`${keyPrefix}commands:${instance}`)
      return () => listener.disconnect()
    },
    processTarget: () => redisUrl,
  }
}

const sharded = (): Backend => {
  let cluster: RedisCluster | undefined
  let inspector: Cluster
  const opened: Cluster[] = []
  const slotted = (keyPrefix: string, instance: string) => `${keyPrefix}{${instance}}:`
  return {
    name: 'redis cluster',
    needs: ['redis-server'],
    async start() {
      cluster = await startRedisCluster()
      inspector = new Redis.Cluster(
        cluster.seeds.map((seed) => ({ host: '127.0.0.1', port: Number(seed.split(':')[1]) })),
      )
    },
    async stop() {
      for (const redis of [inspector, ...opened.splice(0)]) redis?.disconnect()
      await cluster?.stop()
    },
    target: () => ({ cluster: cluster!.seeds }),
    inspector: () => inspector,
    key: (keyPrefix, instance, name) =>
      name === 'instances' ? `${keyPrefix}${name}` : `${slotted(keyPrefix, instance)}${name}`,
    async keys(keyPrefix) {
      const each = await Promise.all(inspector.nodes('master').map((node) => node.keys(`${keyPrefix}*`)))
      return each.flat()
    },
    async listen(keyPrefix, instance) {
      const listener = inspector.duplicate([], { shardedSubscribers: true })
      opened.push(listener)
      await listener.ssubscribe(`${slotted(keyPrefix, instance)}commands:${instance}`)
      return () => listener.disconnect()
    },
    processTarget: () => `cluster:${cluster!.seeds.join(',')}`,
  }
}

describeEach([single(), sharded()], '$name rooms registry across instances', (backend) => {
  const open: RedisRoomRegistry[] = []
  const cleanups: (() => Promise<unknown>)[] = []
  const key = backend.key
  const inspector = () => backend.inspector()

  /** Registries sharing a fresh key prefix, each holding the given connections. */
  async function cluster(holdings: string[][], options: Partial<RedisRoomRegistryOptions> = {}) {
    const keyPrefix = `mizzen-test-${randomUUID()}:`
    cleanups.push(async () => {
      for (const name of await backend.keys(keyPrefix)) await inspector().del(name)
    })
    const registries: RedisRoomRegistry[] = []
    for (const ids of holdings) {
      const registry = await createRedisRoomRegistry({ ...backend.target(), keyPrefix, ...options })
      open.push(registry)
      for (const id of ids) await registry.addConnection(id)
      registries.push(registry)
    }
    const left: [string, string, readonly string[]][] = []
    registries.forEach((registry, i) =>
      registry.onLeft((connectionId, rooms) => left.push([`instance ${i}`, connectionId, rooms])),
    )
    return { keyPrefix, registries, left }
  }

  beforeAll(() => backend.start(), 120_000)
  afterAll(() => backend.stop())
  afterEach(async () => {
    await Promise.all(open.splice(0).map((registry) => registry.close()))
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()))
  })

  describe('operations on another instance’s connection', () => {
    it('should apply a join where the connection is held before it resolves', async () => {
      const {
        registries: [a, b],
      } = await cluster([['a1'], ['b1']])
      expect(await a!.join('b1', 'x', server)).toEqual({ room: 'x', connectionIds: ['b1'], memberCount: 1 })
      // Nothing to wait for: B delivers to it already.
      expect([...b!.localRecipients({ rooms: ['x'], omit: [] }).keys()]).toEqual(['b1'])
      expect(await a!.join('a1', 'x', server)).toEqual({ room: 'x', connectionIds: ['a1'], memberCount: 2 })
      expect(await a!.join('b1', 'x', server)).toEqual({ room: 'x', connectionIds: [], memberCount: 2 })
    })

    it('should apply a leave where the connection is held, and tell onLeft there', async () => {
      const {
        registries: [a, b],
        left,
      } = await cluster([['a1'], ['b1']])
      await b!.join('b1', 'x', { kind: 'subscription', subscriptionId: 's1' })
      expect(await a!.leave('b1', 'x')).toEqual({ room: 'x', connectionIds: ['b1'], memberCount: 0 })
      expect(b!.localRecipients({ rooms: ['x'], omit: [] }).size).toBe(0)
      expect(left).toEqual([['instance 1', 'b1', ['x']]])
      expect(await a!.rooms()).toEqual([])
    })

    it('should release another instance’s subscription reason there, and ignore unknown ones', async () => {
      const {
        registries: [a, b],
      } = await cluster([['a1'], ['b1']])
      await b!.join('b1', 'x', { kind: 'subscription', subscriptionId: 's1' })
      await a!.release('b1', 'x', 's1')
      expect(await b!.roomsOf('b1')).toEqual([])
      await a!.release('nobody', 'x', 's1')
    })

    it('should reject an operation on a connection no instance holds, on every instance', async () => {
      const { registries } = await cluster([['a1'], ['b1']])
      for (const registry of registries) {
        await expect(registry.join('nobody', 'x', server)).rejects.toBeInstanceOf(UnknownConnectionError)
        await expect(registry.leave('nobody', 'x')).rejects.toThrow('no connection with id "nobody"')
        expect(await registry.roomsOf('nobody')).toBeUndefined()
      }
    })

    it('should forget a connection its instance removed', async () => {
      const {
        registries: [a, b],
      } = await cluster([['a1'], ['b1']])
      await a!.join('b1', 'x', server)
      await b!.removeConnection('b1')
      expect(await a!.members('x')).toEqual([])
      await expect(a!.join('b1', 'x', server)).rejects.toBeInstanceOf(UnknownConnectionError)
    })
  })

  describe('consistency', () => {
    it('should write to Redis in the order the holding instance applied the operations', async () => {
      const {
        registries: [a, b],
      } = await cluster([['a1'], ['b1', 'b2']])
      for (const id of ['b1', 'b2']) await b!.join(id, 'src', server)
      // Started in the same tick, as commands from other instances may be: the add applies first.
      await Promise.all([
        b!.applyLocally({ op: 'addRoomMembersToRooms', sourceRoom: 'src', rooms: ['dst'] }),
        b!.applyLocally({ op: 'leave', connectionId: 'b1', room: 'dst' }),
      ])
      expect(await b!.roomsOf('b1')).toEqual(['src'])
      expect(await a!.members('dst')).toEqual(['b2'])
    })

    it('should keep Redis in step with the holding instance under concurrent operations from both', async () => {
      const {
        registries: [a, b],
      } = await cluster([['a1'], ['b1', 'b2']])
      const rooms = ['r0', 'r1', 'r2', 'r3']
      const operations: Promise<unknown>[] = []
      for (let i = 0; i < 200; i++) {
        const registry = i % 3 === 0 ? b! : a!
        const connectionId = i % 2 ? 'b1' : 'b2'
        const room = rooms[(i * 7) % rooms.length]!
        if (i % 5 === 0) operations.push(registry.leaveAll(room))
        else if (i % 4 === 0) operations.push(registry.addRoomMembersToRooms(room, [rooms[i % rooms.length]!]))
        else if (i % 3 === 0)
          operations.push(registry.join(connectionId, room, { kind: 'subscription', subscriptionId: `s${i % 3}` }))
        else if (i % 2 === 0) operations.push(registry.leave(connectionId, room))
        else operations.push(registry.join(connectionId, room, server))
      }
      await Promise.all(operations)
      // B's own state (local) and what A reads (Redis) agree, connection by connection and room by room.
      for (const connectionId of ['b1', 'b2'])
        expect(await a!.roomsOf(connectionId)).toEqual(await b!.roomsOf(connectionId))
      for (const room of rooms) {
        const local = [...b!.localRecipients({ rooms: [room], omit: [] }).keys()].sort()
        expect(await a!.members(room)).toEqual(local)
      }
    })
  })

  describe('presence cards', () => {
    it('should show another instance’s members with who they are and their meta, and write a lost card back', async () => {
      const {
        keyPrefix,
        registries: [a, b],
      } = await cluster([['a1'], ['b1']])
      a!.identify('a1', { userId: 'ann', role: 'user' })
      await a!.setPresenceMeta('a1', 'x', { typing: true })
      await a!.join('a1', 'x', server)
      await b!.join('b1', 'x', server)
      const expected = [
        { connectionId: 'a1', userId: 'ann', role: 'user', meta: { typing: true } },
        { connectionId: 'b1', userId: null, role: 'anonymous', meta: null },
      ]
      const seenFrom = async (registry: RedisRoomRegistry) =>
        (await registry.presence('x')).map(({ metaAt, ...entry }) => entry)
      await settled(async () => expect(await seenFrom(b!)).toEqual(expected))
      expect(await seenFrom(a!)).toEqual(expected)

      // The card hash gone (Redis lost it): the next beat, within a second, writes it back.
      const cards = key(keyPrefix, a!.instanceId, `presence:${a!.instanceId}`)
      await inspector().del(cards)
      await settled(async () => expect(await inspector().exists(cards)).toBe(1))
      expect(await seenFrom(b!)).toEqual(expected)

      // Leaving clears the meta there too; closing drops the card.
      await a!.leave('a1', 'x')
      await a!.join('a1', 'x', server)
      await settled(async () => expect((await seenFrom(b!))[0]!.meta).toBeNull())
      await a!.removeConnection('a1')
      await settled(async () => expect(await inspector().hexists(cards, 'a1')).toBe(0))
      expect((await b!.presence('x')).map(({ connectionId }) => connectionId)).toEqual(['b1'])
    })
  })

  describe('cluster-wide reads', () => {
    it('should list rooms, members and a connection’s rooms over every instance', async () => {
      const {
        registries: [a, b],
      } = await cluster([['a1', 'a2'], ['b1']])
      await a!.join('a1', 'x', server)
      await b!.join('b1', 'x', server)
      await b!.join('b1', 'y', server)
      for (const registry of [a!, b!]) {
        expect(await registry.rooms()).toEqual([
          { name: 'x', memberCount: 2 },
          { name: 'y', memberCount: 1 },
        ])
        expect(await registry.members('x')).toEqual(['a1', 'b1'])
        expect(await registry.roomsOf('b1')).toEqual(['x', 'y'])
        expect(await registry.roomsOf('a2')).toEqual([])
      }
    })

    it('should count recipients over every instance, once each, without the omitted', async () => {
      const {
        registries: [a, b],
      } = await cluster([
        ['a1', 'a2'],
        ['b1', 'b2'],
      ])
      await a!.join('a1', 'x', server)
      await b!.join('b1', 'x', server)
      await b!.join('b1', 'y', server)
      expect(await a!.recipientCount({ rooms: ['x', 'y'], omit: [] })).toBe(2)
      expect(await a!.recipientCount({ rooms: ['x'], omit: ['b1', 'nobody'] })).toBe(1)
      // A connection id used as a room name addresses that connection.
      expect(await a!.recipientCount({ rooms: ['x', 'b2'], omit: [] })).toBe(3)
      expect(await a!.recipientCount({ rooms: null, omit: ['a2', 'a2', 'nobody'] })).toBe(3)
      // One room (counted without reading its members): a connection of another instance named
      // like it, omitted ids in it, out of it, on either instance.
      await a!.join('a1', 'b1', server)
      expect(await a!.recipientCount({ rooms: ['b1'], omit: [] })).toBe(2)
      expect(await b!.recipientCount({ rooms: ['b1'], omit: ['b1', 'b1'] })).toBe(1)
      expect(await a!.recipientCount({ rooms: ['b1'], omit: ['a1', 'b1', 'a2'] })).toBe(0)
      expect(await a!.recipientCount({ rooms: ['b2'], omit: ['b1'] })).toBe(1)
      expect(await b!.recipientCount({ rooms: ['x'], omit: ['a2', 'b2'] })).toBe(2)
    })
  })

  describe('on connections shared with the bus (as `mizzen serve` opens them)', () => {
    it('should leave the bus’s messages to the bus, and still answer commands from other instances', async () => {
      const keyPrefix = `mizzen-test-${randomUUID()}:`
      cleanups.push(async () => {
        for (const name of await backend.keys(keyPrefix)) await inspector().del(name)
      })
      const errors: unknown[] = []
      const onError = (error: unknown) => errors.push(error)
      const open = async () => {
        const shared = await SharedRedis.open({ ...backend.target(), epochKey: `${keyPrefix}epoch`, onError })
        const bus = await createRedisBus({ shared, prefix: keyPrefix, onError })
        const registry = await createRedisRoomRegistry({ shared, keyPrefix: `${keyPrefix}rooms:`, onError })
        cleanups.push(async () => {
          await registry.close()
          await bus.close()
          await shared.close()
        })
        return { bus, registry }
      }
      const [a, b] = [await open(), await open()]
      const heard = record(a.bus, 'model:User')
      await settled(async () => {
        await b.bus.publish('model:User', userEvent('1'))
        expect(heard.received.length).toBeGreaterThan(0)
      })
      for (let i = 0; i < 20; i++) await b.bus.publish('model:User', userEvent(String(i)))
      await settled(() => expect(heard.received.at(-1)?.payload.recordId).toBe('19'))
      // The registries' command channels ride the same subscriber connections.
      await a.registry.addConnection('a1')
      await b.registry.join('a1', 'room', server)
      expect(await a.registry.recipientCount({ rooms: ['room'], omit: [] })).toBe(1)
      expect(errors).toEqual([])
    })
  })

  describe('room-wide operations across instances', () => {
    it('should make members on every instance leave all their rooms on leaveAll', async () => {
      const {
        registries: [a, b],
        left,
      } = await cluster([['a1'], ['b1', 'b2']])
      await a!.join('a1', 'fun', server)
      await b!.join('b1', 'fun', server)
      await b!.join('b1', 'y', server)
      await b!.join('b2', 'y', server)
      expect(await a!.leaveAll('fun')).toEqual([
        { room: 'fun', connectionIds: ['a1', 'b1'], memberCount: 0 },
        { room: 'y', connectionIds: ['b1'], memberCount: 1 },
      ])
      expect(left.sort()).toEqual([
        ['instance 0', 'a1', ['fun']],
        ['instance 1', 'b1', ['fun', 'y']],
      ])
    })

    it('should add and remove the members of a room on every instance', async () => {
      const {
        registries: [a, b],
      } = await cluster([['a1'], ['b1'], ['c1']])
      await a!.join('a1', 'fun', server)
      await b!.join('b1', 'fun', server)
      expect(await a!.addRoomMembersToRooms('fun', ['y', 'fun'])).toEqual([
        { room: 'y', connectionIds: ['a1', 'b1'], memberCount: 2 },
        { room: 'fun', connectionIds: [], memberCount: 2 },
      ])
      expect(await b!.roomsOf('b1')).toEqual(['fun', 'y'])
      expect(await b!.removeRoomMembersFromRooms('fun', ['y', 'z'])).toEqual([
        { room: 'y', connectionIds: ['a1', 'b1'], memberCount: 0 },
        { room: 'z', connectionIds: [], memberCount: 0 },
      ])
      expect(await a!.rooms()).toEqual([{ name: 'fun', memberCount: 2 }])
    })
  })

  describe('failures', () => {
    it('should reject with a timeout when the holding instance does not answer', async () => {
      const {
        keyPrefix,
        registries: [a],
      } = await cluster([['a1']], { peerTimeoutMs: 200 })
      // A live instance that never answers: a heartbeat, a listener on its channel, and nothing else.
      await inspector().hset(key(keyPrefix, 'mute', 'owners'), 'm1', 'mute')
      await inspector().set(key(keyPrefix, 'mute', 'instance:mute'), '1', 'PX', 60_000)
      await inspector().sadd(key(keyPrefix, 'mute', 'instances'), 'mute')
      const stop = await backend.listen(keyPrefix, 'mute')
      cleanups.push(async () => stop())
      const join = a!.join('m1', 'x', server)
      await expect(join).rejects.toBeInstanceOf(RoomCommandTimeoutError)
      await expect(join).rejects.toThrow('gateway instance mute did not answer the rooms command "join" within 200 ms')
    })

    it('should leave a dead instance’s connections out of every answer, and answer NOT_FOUND for them', async () => {
      const {
        keyPrefix,
        registries: [a],
      } = await cluster([['a1']])
      await a!.join('a1', 'x', server)
      /** What a dead instance leaves behind: its connection in a room, and no heartbeat. */
      const dead = (name: string) => key(keyPrefix, 'dead', name)
      const leaveGhost = () =>
        Promise.all([
          inspector().hset(dead('owners'), 'ghost', 'dead'),
          inspector().sadd(dead('instance:dead:connections'), 'ghost'),
          inspector().sadd(dead('instances'), 'dead'),
          inspector().sadd(dead('room:x'), 'ghost'),
          inspector().sadd(dead('conn:ghost'), 'x'),
          ...(dead('rooms') === `${keyPrefix}rooms` ? [] : [inspector().sadd(dead('rooms'), 'x')]),
        ])
      await leaveGhost()
      expect(await a!.members('x')).toEqual(['a1'])
      expect(await inspector().sismember(dead('instances'), 'dead')).toBe(0)
      await leaveGhost()
      expect(await a!.rooms()).toEqual([{ name: 'x', memberCount: 1 }])
      await leaveGhost()
      expect(await a!.recipientCount({ rooms: ['x', 'ghost'], omit: [] })).toBe(1)
      expect(await a!.recipientCount({ rooms: null, omit: [] })).toBe(1)
      // One room is counted without reading its members: the dead instance's are left out all the same.
      await leaveGhost()
      expect(await a!.recipientCount({ rooms: ['x'], omit: [] })).toBe(1)
      expect(await inspector().sismember(dead('instances'), 'dead')).toBe(0)
      await leaveGhost()
      expect(await a!.recipientCount({ rooms: ['ghost'], omit: [] })).toBe(0)
      await leaveGhost()
      await expect(a!.join('ghost', 'y', server)).rejects.toBeInstanceOf(UnknownConnectionError)
      expect(await a!.roomsOf('ghost')).toBeUndefined()
      expect(await inspector().smembers(key(keyPrefix, a!.instanceId, 'room:x'))).toEqual(['a1'])
    })

    it('should purge the connections of a killed instance once its heartbeat expires', async () => {
      const {
        keyPrefix,
        registries: [a],
      } = await cluster([['a1']], { sweepIntervalMs: 50 })
      await a!.join('a1', 'x', server)
      const child = await spawnRegistryProcess(backend.processTarget(), keyPrefix, 'doomed', 'x')
      expect(await a!.members('x')).toEqual(['a1', 'doomed'])
      expect(await a!.roomsOf('doomed')).toEqual(['x'])
      await child.crash()
      await settled(async () => expect(await a!.members('x')).toEqual(['a1']))
      expect(await a!.roomsOf('doomed')).toBeUndefined()
    })

    it('should write its connections back when its own heartbeat expired and it was purged', async () => {
      const {
        keyPrefix,
        registries: [a],
      } = await cluster([['a1']], { heartbeatTtlMs: 300 })
      await a!.join('a1', 'x', server)
      // As after a long pause: the heartbeat expired and another instance purged the connection.
      const own = (name: string) => key(keyPrefix, a!.instanceId, name)
      await inspector().del(own(`instance:${a!.instanceId}`), own('room:x'), own('conn:a1'), own('rooms'))
      await inspector().hdel(own('owners'), 'a1')
      await settled(async () => expect(await a!.members('x')).toEqual(['a1']))
      expect(await a!.rooms()).toEqual([{ name: 'x', memberCount: 1 }])
    })
  })

  describe('close', () => {
    it('should take its connections out of the cluster and leave no key of its own', async () => {
      const {
        keyPrefix,
        registries: [a, b],
      } = await cluster([['a1'], ['b1']])
      await a!.join('a1', 'x', server)
      await a!.join('b1', 'x', server)
      await a!.close()
      expect(await b!.members('x')).toEqual(['b1'])
      await expect(b!.join('a1', 'x', server)).rejects.toBeInstanceOf(UnknownConnectionError)
      await expect(a!.join('a1', 'x', server)).rejects.toThrow('the rooms registry is closed')
      await b!.close()
      expect(await backend.keys(keyPrefix)).toEqual([])
    })
  })
})
