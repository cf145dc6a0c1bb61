/** The contract every rooms registry keeps; each implementation is listed in `registries`. */
import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { MemoryRoomRegistry } from '../src/rooms/memory.ts'
import { createRedisRoomRegistry } from '../src/rooms/redis.ts'
import { UnknownConnectionError, type RoomRegistry } from '../src/rooms/registry.ts'
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster.ts'
import { describeEach, redisUrl, type Needing } from './helpers/services.ts'

/** A six-node Redis Cluster of this file's own, started by the first registry that needs it. */
let cluster: Promise<RedisCluster> | undefined
afterAll(async () => {
  await (await cluster)?.stop()
})

/** Registries made by the current test, closed after it. */
const created: RoomRegistry[] = []

const registries: (Needing & { name: string; create: () => Promise<RoomRegistry> })[] = [
  { name: 'memory', create: async () => new MemoryRoomRegistry() },
  {
    name: 'redis',
    needs: ['redis'],
    // A fresh prefix per registry: runs never see each other's keys.
    create: () => createRedisRoomRegistry({ url: redisUrl, keyPrefix: `mizzen-test-${randomUUID()}:` }),
  },
  {
    name: 'redis cluster',
    needs: ['redis-server'],
    create: async () => {
      cluster ??= startRedisCluster()
      const { seeds } = await cluster
      return createRedisRoomRegistry({ cluster: seeds, keyPrefix: `mizzen-test-${randomUUID()}:` })
    },
  },
]

afterEach(async () => {
  await Promise.all(created.splice(0).map((registry) => registry.close?.()))
})

const server = { kind: 'server' } as const
const subscription = (subscriptionId: string) => ({ kind: 'subscription', subscriptionId }) as const

describeEach(registries, '$name rooms registry', ({ create }) => {
  /** A registry holding connections `a`, `b` and `c`, recording what `onLeft` reports. */
  async function setup() {
    const registry = await create()
    created.push(registry)
    for (const id of ['a', 'b', 'c']) await registry.addConnection(id)
    const left: [string, readonly string[]][] = []
    registry.onLeft((connectionId, rooms) => left.push([connectionId, rooms]))
    return { registry, left }
  }

  describe('connections', () => {
    it('should hold a new connection in no room', async () => {
      const { registry } = await setup()
      expect(await registry.roomsOf('a')).toEqual([])
      expect(await registry.roomsOf('nobody')).toBeUndefined()
      expect(registry.localConnectionCount).toBe(3)
    })

    it('should take a removed connection out of every room and delete emptied rooms', async () => {
      const { registry, left } = await setup()
      await registry.join('a', 'x', server)
      await registry.join('a', 'y', subscription('s1'))
      await registry.join('b', 'x', server)
      await registry.removeConnection('a')
      expect(await registry.rooms()).toEqual([{ name: 'x', memberCount: 1 }])
      expect(await registry.roomsOf('a')).toBeUndefined()
      expect(registry.localConnectionCount).toBe(2)
      expect(left).toEqual([])
      await registry.removeConnection('a')
    })
  })

  describe('join and leave', () => {
    it('should report a join as a change only when the connection was not in the room', async () => {
      const { registry } = await setup()
      expect(await registry.join('a', 'x', server)).toEqual({ room: 'x', connectionIds: ['a'], memberCount: 1 })
      expect(await registry.join('a', 'x', server)).toEqual({ room: 'x', connectionIds: [], memberCount: 1 })
      expect(await registry.join('b', 'x', subscription('s1'))).toEqual({
        room: 'x',
        connectionIds: ['b'],
        memberCount: 2,
      })
      expect(await registry.members('x')).toEqual(['a', 'b'])
      expect(await registry.roomsOf('a')).toEqual(['x'])
    })

    it('should reject a join or leave of a connection no instance holds', async () => {
      const { registry } = await setup()
      await expect(registry.join('nobody', 'x', server)).rejects.toBeInstanceOf(UnknownConnectionError)
      await expect(registry.leave('nobody', 'x')).rejects.toThrow('no connection with id "nobody"')
      expect(await registry.rooms()).toEqual([])
    })

    it('should keep a connection in a room while any subscription or the server holds it there', async () => {
      const { registry } = await setup()
      await registry.join('a', 'x', subscription('s1'))
      await registry.join('a', 'x', subscription('s2'))
      await registry.release('a', 'x', 's1')
      expect(await registry.members('x')).toEqual(['a'])
      await registry.join('a', 'x', server)
      await registry.release('a', 'x', 's2')
      expect(await registry.members('x')).toEqual(['a'])
      await registry.leave('a', 'x')
      await registry.join('a', 'x', subscription('s3'))
      await registry.release('a', 'x', 's3')
      expect(await registry.rooms()).toEqual([])
    })

    it('should ignore a release whose reason is already gone', async () => {
      const { registry } = await setup()
      await registry.join('a', 'x', subscription('s1'))
      await registry.leave('a', 'x')
      await registry.join('a', 'x', subscription('s2'))
      await registry.release('a', 'x', 's1')
      await registry.release('nobody', 'x', 's1')
      expect(await registry.members('x')).toEqual(['a'])
    })

    it('should take a connection out of a room on leave whatever its reasons, and tell onLeft', async () => {
      const { registry, left } = await setup()
      await registry.join('a', 'x', server)
      await registry.join('a', 'x', subscription('s1'))
      expect(await registry.leave('a', 'x')).toEqual({ room: 'x', connectionIds: ['a'], memberCount: 0 })
      expect(await registry.leave('a', 'x')).toEqual({ room: 'x', connectionIds: [], memberCount: 0 })
      expect(left).toEqual([['a', ['x']]])
      expect(await registry.rooms()).toEqual([])
    })
  })

  describe('room-wide operations', () => {
    it('should make every member of a room leave all its rooms on leaveAll', async () => {
      const { registry, left } = await setup()
      await registry.join('a', 'fun', server)
      await registry.join('a', 'x', server)
      await registry.join('b', 'fun', subscription('s1'))
      await registry.join('c', 'x', server)
      const changes = await registry.leaveAll('fun')
      expect(changes).toEqual([
        { room: 'fun', connectionIds: ['a', 'b'], memberCount: 0 },
        { room: 'x', connectionIds: ['a'], memberCount: 1 },
      ])
      expect(left).toEqual([
        ['a', ['fun', 'x']],
        ['b', ['fun']],
      ])
      expect(await registry.rooms()).toEqual([{ name: 'x', memberCount: 1 }])
      expect(await registry.leaveAll('none')).toEqual([])
    })

    it('should add the members of a room to other rooms', async () => {
      const { registry } = await setup()
      await registry.join('a', 'fun', subscription('s1'))
      await registry.join('b', 'fun', server)
      await registry.join('b', 'y', server)
      expect(await registry.addRoomMembersToRooms('fun', ['y', 'z', 'fun'])).toEqual([
        { room: 'y', connectionIds: ['a'], memberCount: 2 },
        { room: 'z', connectionIds: ['a', 'b'], memberCount: 2 },
        { room: 'fun', connectionIds: [], memberCount: 2 },
      ])
      // The source room stays the subscription's: releasing it still leaves.
      await registry.release('a', 'fun', 's1')
      expect(await registry.roomsOf('a')).toEqual(['y', 'z'])
    })

    it('should remove the members of a room from other rooms, and tell onLeft', async () => {
      const { registry, left } = await setup()
      for (const id of ['a', 'b']) await registry.join(id, 'fun', server)
      for (const id of ['a', 'c']) await registry.join(id, 'y', server)
      expect(await registry.removeRoomMembersFromRooms('fun', ['y', 'z'])).toEqual([
        { room: 'y', connectionIds: ['a'], memberCount: 1 },
        { room: 'z', connectionIds: [], memberCount: 0 },
      ])
      expect(left).toEqual([['a', ['y']]])
      expect(await registry.members('y')).toEqual(['c'])
    })
  })

  describe('recipients', () => {
    it('should address each member of the targeted rooms once, with the targeted rooms it is in', async () => {
      const { registry } = await setup()
      await registry.join('a', 'x', server)
      await registry.join('a', 'y', server)
      await registry.join('b', 'y', server)
      const target = { rooms: ['y', 'x', 'none'], omit: [] }
      expect([...registry.localRecipients(target)]).toEqual([
        ['a', ['y', 'x']],
        ['b', ['y']],
      ])
      expect(await registry.recipientCount(target)).toBe(2)
    })

    it('should leave out omitted connections and ignore unknown ones', async () => {
      const { registry } = await setup()
      await registry.join('a', 'x', server)
      await registry.join('b', 'x', server)
      expect([...registry.localRecipients({ rooms: ['x'], omit: ['a', 'nobody'] }).keys()]).toEqual(['b'])
    })

    it('should count one targeted room as it addresses: the members, the connection named like it once, without the omitted', async () => {
      const { registry } = await setup()
      await registry.join('a', 'x', server)
      await registry.join('b', 'x', server)
      // Room "c" holds a, not the connection c; room "b" holds the connection b itself.
      await registry.join('a', 'c', server)
      await registry.join('b', 'b', server)
      // Each target against what it addresses (one room, the case the Redis registry counts without reading the members).
      const cases: [rooms: string[], omit: string[], recipients: number][] = [
        [['x'], [], 2],
        [['x'], ['a', 'a', 'nobody', 'c'], 1],
        [['x', 'x'], ['b'], 1],
        [['c'], [], 2],
        [['c'], ['c'], 1],
        [['c'], ['c', 'c', 'a'], 0],
        [['b'], [], 1],
        [['b'], ['b', 'x'], 0],
        [['a'], [], 1],
        [['a'], ['b'], 1],
        [['nobody'], [], 0],
        [['nobody'], ['a'], 0],
      ]
      for (const [rooms, omit, recipients] of cases) {
        const target = { rooms, omit }
        expect({ target, count: await registry.recipientCount(target) }).toEqual({ target, count: recipients })
        expect(registry.localRecipients(target).size).toBe(recipients)
      }
      // The one-room snapshot a room message is delivered from: the members here and the
      // connection named like the room, each once (omitting is the deliverer's).
      for (const room of ['x', 'c', 'b', 'a', 'nobody']) {
        const expected = [...registry.localRecipients({ rooms: [room], omit: [] }).keys()].sort()
        expect({ room, recipients: registry.localRoomRecipients(room).sort() }).toEqual({ room, recipients: expected })
      }
    })

    it('should address every connection on a blast', async () => {
      const { registry } = await setup()
      await registry.join('a', 'x', server)
      expect([...registry.localRecipients({ rooms: null, omit: ['b'] })]).toEqual([
        ['a', []],
        ['c', []],
      ])
      expect(await registry.recipientCount({ rooms: null, omit: ['b'] })).toBe(2)
    })

    it('should address a connection directly by its id used as a room name', async () => {
      const { registry } = await setup()
      await registry.join('a', 'b', server)
      expect([...registry.localRecipients({ rooms: ['b'], omit: [] })]).toEqual([
        ['a', ['b']],
        ['b', ['b']],
      ])
      expect(await registry.members('b')).toEqual(['a'])
    })
  })

  describe('presence', () => {
    it('should show each member with who it is and its meta in the room, meta set before or after joining', async () => {
      const { registry } = await setup()
      registry.identify('a', { userId: 'ann', role: 'user' })
      registry.identify('b', { userId: null, role: 'service' })
      await registry.setPresenceMeta('a', 'x', { color: 'red' })
      await registry.join('a', 'x', subscription('s1'))
      await registry.join('b', 'x', server)
      await registry.join('c', 'x', server)
      await registry.setPresenceMeta('b', 'x', [1, 2])
      const entries = await registry.presence('x')
      expect(entries.map(({ metaAt, ...entry }) => entry)).toEqual([
        { connectionId: 'a', userId: 'ann', role: 'user', meta: { color: 'red' } },
        { connectionId: 'b', userId: null, role: 'service', meta: [1, 2] },
        // Never identified: shown as anonymous.
        { connectionId: 'c', userId: null, role: 'anonymous', meta: null },
      ])
      expect(entries[1]!.metaAt).toBeGreaterThanOrEqual(entries[0]!.metaAt)
      expect(entries[0]!.metaAt).toBeGreaterThan(0)
      expect(await registry.presence('nowhere')).toEqual([])
    })

    it('should clear a connection’s meta when it leaves the room, and drop it when it closes', async () => {
      const { registry } = await setup()
      registry.identify('a', { userId: 'ann', role: 'user' })
      await registry.join('a', 'x', server)
      await registry.setPresenceMeta('a', 'x', 'here')
      await registry.leave('a', 'x')
      await registry.join('a', 'x', server)
      expect((await registry.presence('x')).map(({ meta }) => meta)).toEqual([null])
      await registry.removeConnection('a')
      expect(await registry.presence('x')).toEqual([])
      await expect(registry.setPresenceMeta('a', 'x', 1)).rejects.toBeInstanceOf(UnknownConnectionError)
    })

    it('should tell its listeners of every change presence could show: joins, meta, leaves, releases, closes', async () => {
      const { registry } = await setup()
      const changes: [string, readonly string[]][] = []
      registry.onPresenceChange((connectionId, rooms) => changes.push([connectionId, rooms]))
      await registry.join('a', 'x', subscription('s1'))
      await registry.join('a', 'x', server) // already in: no change
      await registry.setPresenceMeta('a', 'x', 1)
      await registry.setPresenceMeta('b', 'x', 1) // not in the room yet: nobody sees it
      await registry.join('b', 'x', server)
      await registry.join('b', 'y', server)
      await registry.leave('a', 'x')
      await registry.join('c', 'z', subscription('s2'))
      await registry.release('c', 'z', 's2')
      await registry.removeConnection('b')
      expect(changes).toEqual([
        ['a', ['x']],
        ['a', ['x']],
        ['b', ['x']],
        ['b', ['y']],
        ['a', ['x']],
        ['c', ['z']],
        ['c', ['z']],
        ['b', ['x', 'y']],
      ])
    })
  })
})
