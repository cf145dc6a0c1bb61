/**
 * The rooms registry on a Redis Cluster of this file's own (six nodes: three primaries, three
 * replicas) while the primary serving one instance's slot is SIGKILLed: every operation another
 * instance runs on that instance's connections, and every cluster read, settles (done, or
 * UNAVAILABLE: none hangs, none answers NOT_FOUND for a connection that is there), and once the
 * replica took over the registry answers as before, the instance's share in sync again
 * (docs/architecture.md §9, §14).
 */
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ServiceUnavailableError } from '../../src/errors.ts'
import { createRedisRoomRegistry, type RedisRoomRegistry } from '../../src/rooms/redis.ts'
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.ts'
import { missing } from '../helpers/services.ts'

const server = { kind: 'server' } as const
const keyPrefix = 'mizzen-fault-rooms:'

let cluster: RedisCluster
const registries: RedisRoomRegistry[] = []

describe.skipIf(missing('redis-server'))('faults: the rooms registry on a Redis Cluster', () => {
  beforeAll(async () => {
    cluster = await startRedisCluster()
  }, 120_000)

  afterAll(async () => {
    await Promise.all(registries.splice(0).map((registry) => registry.close()))
    await cluster?.stop()
  })

  it('should settle every operation while the primary of an instance’s slot is SIGKILLed, and answer as before after the failover', async () => {
    const errors: unknown[] = []
    const open = async () => {
      const registry = await createRedisRoomRegistry({
        cluster: cluster.seeds,
        keyPrefix,
        // Long enough that the failover (a few seconds) does not count the instance dead: this
        // test is about a failover, not a death (rooms.redis.test.ts covers that).
        heartbeatTtlMs: 30_000,
        redisTimeoutMs: 1000,
        peerTimeoutMs: 2000,
        onError: (error) => errors.push(error),
      })
      registries.push(registry)
      return registry
    }
    const a = await open()
    const b = await open()
    await a.addConnection('a1')
    for (const id of ['b1', 'b2', 'b3']) await b.addConnection(id)
    for (const id of ['a1', 'b1', 'b2', 'b3']) await a.join(id, 'r', server)
    expect(await a.members('r')).toEqual(['a1', 'b1', 'b2', 'b3'])

    const admin = new Redis({ port: cluster.ports[0], host: '127.0.0.1' })
    const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', `${keyPrefix}{${b.instanceId}}:`))
    admin.disconnect()
    const victim = await cluster.primaryOf(slot)

    const outcomes: ('done' | 'unavailable')[] = []
    const unexpected: unknown[] = []
    const settle = async (operation: Promise<unknown>) => {
      try {
        await operation
        outcomes.push('done')
      } catch (error) {
        if (error instanceof ServiceUnavailableError) outcomes.push('unavailable')
        else unexpected.push(error)
      }
    }
    for (let i = 0; i < 120; i++) {
      if (i === 20) await cluster.kill(victim)
      await settle(i % 2 ? a.leave('b1', 'r2') : a.join('b1', 'r2', server))
      await settle(a.recipientCount({ rooms: ['r'], omit: [] }))
      await settle(a.members('r'))
    }
    await cluster.waitHealthy()
    // Every operation settled: done or UNAVAILABLE, nothing else (no NOT_FOUND for b1).
    expect(unexpected).toEqual([])
    expect(outcomes).toContain('unavailable')

    // After the failover: B's share in sync again on the promoted replica, and every answer as before.
    await vi.waitFor(
      async () => {
        expect(b.redisState).toBe('in-sync')
        expect(a.redisState).toBe('in-sync')
        expect(await a.members('r')).toEqual(['a1', 'b1', 'b2', 'b3'])
        expect(await a.recipientCount({ rooms: ['r'], omit: [] })).toBe(4)
      },
      { timeout: 30_000, interval: 50 },
    )
    expect(await a.join('b2', 'after', server)).toEqual({ room: 'after', connectionIds: ['b2'], memberCount: 1 })
    expect(await b.roomsOf('b2')).toEqual(['after', 'r'])
    console.info(
      `registry failover summary ${JSON.stringify({
        operations: outcomes.length,
        unavailable: outcomes.filter((outcome) => outcome === 'unavailable').length,
      })}`,
    )
  }, 120_000)
})
