/**
 * The shared Redis layer's link (src/redis/link.ts) on a redis-server of this file's own: the
 * signal its users recover by (lost, back with the same data, back empty) through a restart on
 * the append-only file, an empty restart and a freeze, and the heartbeat that drops a connection
 * whose Redis stopped answering.
 */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { RedisLink, type RedisSignal } from '../../src/redis/link.ts'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.ts'
import { missing } from '../helpers/services.ts'

const eventually = (check: () => void) => vi.waitFor(check, { timeout: 20_000, interval: 10 })

describe.skipIf(missing('redis-server'))('redis link: heartbeat and the lost / back signal', () => {
  let redis: RedisServer
  beforeAll(async () => {
    redis = await startRedisServer()
  })
  afterAll(() => redis?.stop())

  it('should signal lost, then back with the same data after a restart on its data, and with new data after an empty one', async () => {
    const connection = new Redis(redis.url, { lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => 50 })
    connection.on('error', () => {})
    await connection.connect()
    const errors: string[] = []
    const link = await RedisLink.open({
      connection,
      name: 'test',
      epochKey: `link-${randomUUID()}:epoch`,
      heartbeatMs: 100,
      timeoutMs: 400,
      onError: (error, context) => errors.push(`${context}: ${(error as Error).message}`),
    })
    const signals: RedisSignal[] = []
    link.follow((signal) => signals.push(signal))
    const first = link.data
    expect(first).toMatch(/^\S{16}$/)
    try {
      await redis.restart()
      await eventually(() => expect(signals).toEqual([{ kind: 'lost' }, { kind: 'back', data: first, sameData: true }]))
      expect(await link.known).toBe(true)

      await redis.restart({ data: 'empty' })
      await eventually(() => expect(signals).toHaveLength(4))
      expect(signals[2]).toEqual({ kind: 'lost' })
      expect(signals[3]).toMatchObject({ kind: 'back', sameData: false })
      expect(link.data).not.toBe(first)

      // Frozen: the heartbeat goes unanswered, the link drops the connection; it comes back once Redis answers.
      redis.pause()
      await eventually(() => expect(signals).toHaveLength(5))
      expect(signals[4]).toEqual({ kind: 'lost' })
      expect(await link.known).toBe(false)
      expect(errors).toContainEqual(
        'redis test heartbeat: Redis did not answer a heartbeat within 400 ms: reconnecting',
      )
      redis.resume()
      await eventually(() => expect(signals).toHaveLength(6))
      expect(signals[5]).toEqual({ kind: 'back', data: link.data, sameData: true })
    } finally {
      redis.resume()
      link.close()
      connection.disconnect()
    }
  })
})
