/**
 * The Redis bus on a Redis Cluster of this file's own (six nodes: three primaries, three
 * replicas): topics spread over the shards (each topic's log, histories and sharded channel in
 * one slot), messages and room broadcasts cross processes, cursors resume on the other process,
 * and a primary SIGKILLed while messages flow: each publish is delivered or reported, none lost
 * silently, and delivery goes on after the failover.
 */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { PublishOutcome, Topic } from '../src/bus/bus.ts'
import { createRedisBus, type RedisBus, type RedisBusOptions } from '../src/bus/redis.ts'
import type { ModelEvent } from '../src/events.ts'
import type { RoomEnvelope } from '../src/rooms/messages.ts'
import { record, resumeSubscriber } from './helpers/bus.ts'
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster.ts'
import { missing } from './helpers/services.ts'

const event = (model: string, id: string): ModelEvent => ({
  model,
  verb: 'CREATED',
  recordId: id,
  node: { id },
  at: new Date(0).toISOString(),
})
const broadcast = (room: string, event: string): RoomEnvelope => ({
  message: { id: randomUUID(), event, data: null, sender: null, sentAt: new Date(0).toISOString() },
  target: { rooms: [room], omit: [] },
})
const MODELS = ['User', 'Post', 'Tag', 'Comment', 'Order', 'Invoice']
const ROOMS = Array.from({ length: 20 }, (_, i) => `room-${i}`)
const eventually = (check: () => void | Promise<void>, timeout = 30_000) => vi.waitFor(check, { timeout, interval: 20 })

describe('redis bus options: one Redis or a cluster', () => {
  it.each([
    [{}, /give url \(one Redis\) or cluster/],
    [{ url: 'redis://127.0.0.1:1', cluster: ['127.0.0.1:7000'] }, /either url .* or cluster .*, not both/],
    [{ cluster: [] }, /cluster: give at least one seed node/],
    [{ cluster: ['127.0.0.1'] }, /cluster: expected host:port, got "127.0.0.1"/],
    [{ cluster: ['127.0.0.1:70000'] }, /cluster: expected host:port/],
    [{ url: 'redis://127.0.0.1:1', prefix: 'app{1}:' }, /prefix must not contain \{ or \}/],
  ] as const)('should refuse %o, saying why', async (options, message) => {
    await expect(createRedisBus(options as RedisBusOptions)).rejects.toThrow(message)
  })
})

describe.skipIf(missing('redis-server'))('redis bus on a Redis Cluster', () => {
  let cluster: RedisCluster
  const buses: RedisBus[] = []
  let prefix = ''

  beforeAll(async () => {
    cluster = await startRedisCluster()
  }, 60_000)
  afterAll(() => cluster?.stop())
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((bus) => bus.close()))
  })

  async function bus(options: Partial<RedisBusOptions> = {}): Promise<RedisBus> {
    if (!buses.length) prefix = `cluster-${randomUUID()}:`
    const created = await createRedisBus({
      cluster: cluster.seeds,
      prefix,
      redisTimeoutMs: 1000,
      heartbeatMs: 200,
      handoffTimeoutMs: 500,
      ...options,
      redis: { connectTimeout: 1000, ...options.redis },
    })
    buses.push(created)
    return created
  }

  /** The primaries (ports) whose sharded channels include one of `prefix`. */
  async function primariesWithChannels(): Promise<Map<number, string[]>> {
    const found = new Map<number, string[]>()
    for (const { port } of await cluster.primaries()) {
      const redis = new Redis({ port, host: '127.0.0.1' })
      const channels = (await redis.call('PUBSUB', 'SHARDCHANNELS', `${prefix}*`)) as string[]
      redis.disconnect()
      if (channels.length) found.set(port, channels)
    }
    return found
  }

  it('should spread topics over the primaries and carry model events and broadcasts in 20 rooms across processes, in order', async () => {
    const a = await bus()
    const b = await bus()
    const models = MODELS.map((model) => record(b, `model:${model}` as Topic))
    const rooms = record(b, 'rooms:message')
    await Promise.all([a.ping(), b.ping()])
    const outcomes: Promise<PublishOutcome>[] = []
    for (let i = 0; i < 10; i++) {
      for (const model of MODELS) outcomes.push(a.publish(`model:${model}`, event(model, String(i))))
      for (const room of ROOMS)
        outcomes.push(a.publish('rooms:message', broadcast(room, `${room}/${i}`), { history: [room] }))
    }
    expect(new Set(await Promise.all(outcomes))).toEqual(new Set(['sent']))
    const expected = Array.from({ length: 10 }, (_, i) => String(i))
    await eventually(() => {
      for (const received of models)
        expect(received.received.map((e) => (e.payload as ModelEvent).recordId)).toEqual(expected)
      expect(rooms.received).toHaveLength(200)
    })
    for (const room of ROOMS)
      expect(
        rooms.received.filter((e) => e.payload.target.rooms?.[0] === room).map((e) => e.payload.message.event),
      ).toEqual(expected.map((i) => `${room}/${i}`))
    // Each topic's channel is a shard channel of the primary serving its slot, and its log lives there.
    const withChannels = await primariesWithChannels()
    expect(withChannels.size).toBeGreaterThanOrEqual(2)
    expect([...withChannels.values()].flat().sort()).toEqual(
      [...MODELS.map((model) => `model:${model}`), 'rooms:message'].map((topic) => `${prefix}{${topic}}`).sort(),
    )
    for (const [port, channels] of withChannels) {
      const redis = new Redis({ port, host: '127.0.0.1' })
      for (const channel of channels) expect(await redis.exists(`${channel}log`)).toBe(1)
      redis.disconnect()
    }
  })

  it('should resume on one process from the cursors the other gave, model events and rooms alike', async () => {
    const a = await bus()
    const b = await bus()
    const onA = record(a, 'model:User')
    const roomOnA = record(a, 'rooms:message', 'room-3')
    record(b, 'model:User')
    record(b, 'rooms:message')
    await Promise.all([a.ping(), b.ping()])
    for (let i = 0; i < 5; i++) {
      await a.publish('model:User', event('User', String(i)))
      await a.publish('rooms:message', broadcast('room-3', String(i)), { history: ['room-3'] })
    }
    await eventually(() => expect(onA.received).toHaveLength(5))
    const events = await resumeSubscriber(b, 'model:User', onA.received[1]!.cursor)
    expect(events.received.map((e) => e.payload.recordId)).toEqual(['2', '3', '4'])
    const messages = await resumeSubscriber(b, 'rooms:message', roomOnA.received[2]!.cursor, { key: 'room-3' })
    expect(messages.received.map((e) => e.payload.message.event)).toEqual(['3', '4'])
  })

  it('should deliver or report each of 190 broadcasts while a primary is SIGKILLed, none lost silently, and go on after the failover', async () => {
    const a = await bus()
    const b = await bus()
    const rooms = record(b, 'rooms:message')
    const users = record(b, 'model:User')
    await Promise.all([a.ping(), b.ping()])
    // The primary serving the rooms topic's slot dies a third of the way through.
    const admin = new Redis({ port: cluster.ports[0], host: '127.0.0.1' })
    const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', `${prefix}{rooms:message}`))
    admin.disconnect()
    const victim = await cluster.primaryOf(slot)
    const outcomes: PublishOutcome[] = []
    for (let i = 0; i < 190; i++) {
      if (i === 60) await cluster.kill(victim)
      outcomes.push(
        await a.publish('rooms:message', broadcast(ROOMS[i % 20]!, String(i)), { history: [ROOMS[i % 20]!] }),
      )
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    // Reported: dropped (the outbox refused it). Everything else reaches B, once, in order.
    const reported = outcomes.flatMap((outcome, i) => (outcome === 'dropped' ? [String(i)] : []))
    const expected = outcomes.flatMap((outcome, i) => (outcome === 'dropped' ? [] : [String(i)]))
    await cluster.waitHealthy()
    await eventually(() => expect(rooms.received.map((e) => e.payload.message.event)).toEqual(expected), 60_000)
    expect(reported).toEqual([])
    expect(outcomes.filter((outcome) => outcome === 'queued').length).toBeGreaterThan(0)
    // And live after the failover, on the promoted replica.
    await a.publish('rooms:message', broadcast('room-0', 'after'), { history: ['room-0'] })
    await a.publish('model:User', event('User', 'after'))
    await eventually(() => expect(rooms.received.at(-1)?.payload.message.event).toBe('after'))
    await eventually(() => expect(users.received.map((e) => e.payload.recordId)).toEqual(['after']))
    expect(b.stats().gaps).toBe(0)
  }, 120_000)
})
