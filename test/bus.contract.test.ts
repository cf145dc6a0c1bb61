/** The contract every bus backend keeps; each backend is listed in `backends`. */
import { randomUUID } from 'node:crypto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { Bus } from '../src/bus/bus.ts'
import { BusClosedError } from '../src/bus/bus.ts'
import { createMemoryBus } from '../src/bus/memory.ts'
import { createRedisBus } from '../src/bus/redis.ts'
import type { ModelEvent } from '../src/events.ts'

export const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
/** A channel prefix of its own per test run, so that runs never hear each other. */
const prefix = `mizzen-test-${randomUUID()}:`

const backends: { name: string; create: () => Promise<Bus> }[] = [
  { name: 'memory', create: async () => createMemoryBus() },
  { name: 'redis', create: () => createRedisBus({ url: redisUrl, channelPrefix: prefix }) },
]

const event = (id: string): ModelEvent => ({ model: 'User', verb: 'CREATED', recordId: id, node: { id: Number(id), name: `n${id}` }, at: new Date(0).toISOString() })

describe.each(backends)('$name bus', ({ create }) => {
  const open: Bus[] = []
  const bus = async () => {
    const created = await create()
    open.push(created)
    return created
  }
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()))
  })

  it('should deliver to every listener of a topic, in publish order', async () => {
    const b = await bus()
    const first: string[] = []
    const second: string[] = []
    b.subscribe('model:User', (e) => first.push(e.recordId))
    b.subscribe('model:User', (e) => second.push(e.recordId))
    for (const id of ['1', '2', '3']) await b.publish('model:User', event(id))
    expect(first).toEqual(['1', '2', '3'])
    expect(second).toEqual(['1', '2', '3'])
  })

  it('should keep topics apart', async () => {
    const b = await bus()
    const posts: string[] = []
    b.subscribe('model:Post', (e) => posts.push(e.recordId))
    await b.publish('model:User', event('1'))
    expect(posts).toEqual([])
  })

  it('should stop delivering after unsubscribe', async () => {
    const b = await bus()
    const seen: string[] = []
    const off = b.subscribe('model:User', (e) => seen.push(e.recordId))
    await b.publish('model:User', event('1'))
    off()
    await b.publish('model:User', event('2'))
    expect(seen).toEqual(['1'])
  })

  it('should carry the payload intact', async () => {
    const b = await bus()
    let received: ModelEvent | undefined
    b.subscribe('model:User', (e) => (received = e))
    await b.publish('model:User', event('7'))
    expect(received).toEqual(event('7'))
  })

  it('should keep delivering to others when a listener throws', async () => {
    const b = await bus()
    const seen: string[] = []
    b.subscribe('model:User', () => {
      throw new Error('listener bug')
    })
    b.subscribe('model:User', (e) => seen.push(e.recordId))
    await b.publish('model:User', event('1'))
    expect(seen).toEqual(['1'])
  })

  it('should answer ping while open and refuse publishing once closed', async () => {
    const b = await bus()
    await expect(b.ping()).resolves.toBeUndefined()
    await b.close()
    await expect(b.publish('model:User', event('1'))).rejects.toBeInstanceOf(BusClosedError)
    await expect(b.ping()).rejects.toBeInstanceOf(BusClosedError)
  })
})

describe('redis bus between processes', () => {
  const open: Bus[] = []
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()))
  })
  const bus = async (channelPrefix = prefix) => {
    const created = await createRedisBus({ url: redisUrl, channelPrefix })
    open.push(created)
    return created
  }

  it('should deliver to the other process once, and to the publisher once (its echo dropped)', async () => {
    const [a, b] = [await bus(), await bus()]
    const seenByA: string[] = []
    const seenByB: ModelEvent[] = []
    a.subscribe('model:User', (e) => seenByA.push(e.recordId))
    b.subscribe('model:User', (e) => seenByB.push(e))
    await Promise.all([a.ping(), b.ping()])
    await a.publish('model:User', event('1'))
    await a.publish('model:User', event('2'))
    await vi.waitFor(() => expect(seenByB.map((e) => e.recordId)).toEqual(['1', '2']))
    // Redis delivers in order: once b's marker reaches a, so have a's own echoes (dropped).
    await b.publish('model:User', event('marker'))
    await vi.waitFor(() => expect(seenByA).toContain('marker'))
    expect(seenByA).toEqual(['1', '2', 'marker'])
  })

  it('should keep dates, bigints and bytes across processes', async () => {
    const [a, b] = [await bus(), await bus()]
    let received: ModelEvent | undefined
    b.subscribe('model:User', (e) => (received = e))
    await b.ping()
    const when = new Date('2026-01-02T03:04:05.678Z')
    await a.publish('model:User', { ...event('3'), node: { createdAt: when, big: 12345678901234567890n, bytes: Buffer.from('hi'), nested: { at: when } } })
    await vi.waitFor(() => expect(received).toBeDefined())
    expect(received!.node).toEqual({ createdAt: when, big: 12345678901234567890n, bytes: Buffer.from('hi'), nested: { at: when } })
  })

  it('should keep deployments with different prefixes apart', async () => {
    const a = await bus()
    const other = await bus(`${prefix}other:`)
    const heard: string[] = []
    other.subscribe('model:User', (e) => heard.push(e.recordId))
    await other.ping()
    await a.publish('model:User', event('4'))
    // Published after a's message was taken: once the marker arrives, a's would have too.
    await (await bus(`${prefix}other:`)).publish('model:User', event('marker'))
    await vi.waitFor(() => expect(heard).toContain('marker'))
    expect(heard).toEqual(['marker'])
  })

  it('should refuse to start when Redis is unreachable', async () => {
    await expect(createRedisBus({ url: 'redis://127.0.0.1:1', redis: { retryStrategy: () => null } })).rejects.toThrow()
  })
})
