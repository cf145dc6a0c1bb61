/**
 * The Redis bus under faults, on a redis-server of this test's own (behind TCP proxies where a
 * partition is needed): the outbox that holds what could not reach Redis and sends it in order
 * when Redis returns, the catch-up of a process whose connection broke, and resuming from
 * cursors given on either side of a partition.
 */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { Bus, PublishOutcome } from '../src/bus/bus.ts'
import { createRedisBus, type RedisBus, type RedisBusOptions } from '../src/bus/redis.ts'
import type { ModelEvent } from '../src/events.ts'
import { record, resumeSubscriber } from './helpers/bus.ts'
import { startRedisServer, type RedisServer } from './helpers/redis-server.ts'
import { missing } from './helpers/services.ts'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts'

const event = (id: string): ModelEvent => ({
  model: 'User',
  verb: 'CREATED',
  recordId: id,
  node: { id, name: `n${id}` },
  at: new Date(0).toISOString(),
})
const idOf = (received: { payload: ModelEvent }) => received.payload.recordId
const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i))
/** Waits long enough for the machine to be slow, no longer. */
const eventually = (check: () => void | Promise<void>) => vi.waitFor(check, { timeout: 20_000, interval: 10 })

describe.skipIf(missing('redis-server'))('redis bus faults', () => {
  let redis: RedisServer
  const proxies: TcpProxy[] = []
  const buses: Bus[] = []
  let prefix = ''

  beforeAll(async () => {
    redis = await startRedisServer()
  })
  afterAll(() => redis?.stop())
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((bus) => bus.close()))
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
  })

  /** A bus on the test's Redis, directly or through a proxy of its own; every bus of one test shares a prefix. */
  async function bus(
    options: Partial<RedisBusOptions> & { proxied?: boolean } = {},
  ): Promise<{ bus: RedisBus; proxy?: TcpProxy }> {
    if (!buses.length) prefix = `recovery-${randomUUID()}:`
    const proxy = options.proxied ? await startTcpProxy({ port: redis.port }) : undefined
    if (proxy) proxies.push(proxy)
    const created = await createRedisBus({
      url: proxy ? proxy.url('redis') : redis.url,
      prefix,
      // Find out fast that a link is dead, and come back fast.
      redisTimeoutMs: 500,
      heartbeatMs: 100,
      handoffTimeoutMs: 200,
      ...options,
      redis: { retryStrategy: () => 50, connectTimeout: 500, ...options.redis },
    })
    buses.push(created)
    return { bus: created, proxy }
  }

  it('should queue what cannot reach Redis, deliver it locally at once, and send it in order when Redis returns', async () => {
    const { bus: a, proxy } = await bus({ proxied: true })
    const { bus: b } = await bus()
    const onA = record(a, 'model:User')
    const onB = record(b, 'model:User')
    await Promise.all([a.ping(), b.ping()])
    proxy!.cut()
    const outcomes: PublishOutcome[] = []
    for (const id of ids(1, 5)) outcomes.push(await a.publish('model:User', event(id)))
    expect(outcomes).toEqual(['queued', 'queued', 'queued', 'queued', 'queued'])
    expect(onA.received.map(idOf)).toEqual(ids(1, 5))
    expect(a.stats()).toMatchObject({ published: 5, queued: 5, dropped: 0 })
    proxy!.restore()
    await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 5)))
    await eventually(() => expect(a.stats()).toMatchObject({ sent: 5, queued: 0 }))
    // And on, live, in order, once each.
    await a.publish('model:User', event('6'))
    await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 6)))
    expect(onA.received.map(idOf)).toEqual(ids(1, 6))
  })

  it('should refuse what does not fit in the outbox, count it, and send the rest', async () => {
    const errors: unknown[] = []
    const { bus: a, proxy } = await bus({
      proxied: true,
      outbox: { maxEvents: 3 },
      onError: (error) => errors.push(error),
    })
    const { bus: b } = await bus()
    const onB = record(b, 'model:User')
    await Promise.all([a.ping(), b.ping()])
    proxy!.cut()
    const outcomes = await Promise.all(ids(1, 5).map((id) => a.publish('model:User', event(id))))
    expect(outcomes).toEqual(['queued', 'queued', 'queued', 'dropped', 'dropped'])
    expect(a.stats()).toMatchObject({ dropped: 2, queued: 3 })
    expect(errors).toContainEqual(expect.objectContaining({ name: 'OutboxFullError' }))
    proxy!.restore()
    await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 3)))
  })

  it('should catch up, in order and once each, on what was published while its connection was cut', async () => {
    const { bus: a } = await bus()
    const { bus: b, proxy } = await bus({ proxied: true })
    const onB = record(b, 'model:User')
    await Promise.all([a.ping(), b.ping()])
    await a.publish('model:User', event('1'))
    await eventually(() => expect(onB.received.map(idOf)).toEqual(['1']))
    proxy!.cut()
    for (const id of ids(2, 21)) expect(await a.publish('model:User', event(id))).toBe('sent')
    proxy!.restore()
    await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 21)))
    await a.publish('model:User', event('22'))
    await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 22)))
  })

  it('should notice a black-holed connection, reconnect once the link heals, and catch up', async () => {
    const { bus: a } = await bus()
    const { bus: b, proxy } = await bus({ proxied: true })
    const onB = record(b, 'model:User')
    await Promise.all([a.ping(), b.ping()])
    proxy!.blackHole()
    for (const id of ids(1, 10)) await a.publish('model:User', event(id))
    // The heartbeat finds nothing answers and drops the connection; reconnecting hangs too.
    await eventually(() => expect(b.ping()).rejects.toThrow())
    proxy!.restore()
    await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 10)))
    await a.publish('model:User', event('11'))
    await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 11)))
  })

  it('should tell its listeners when the log no longer reaches back to where it was cut off', async () => {
    const { bus: a } = await bus({ history: { maxEvents: 10 }, logMaxEvents: 10 })
    const { bus: b, proxy } = await bus({ proxied: true, history: { maxEvents: 10 }, logMaxEvents: 10 })
    const gaps: string[] = []
    const received: string[] = []
    b.subscribe('model:User', (e) => received.push(e.recordId), { onGap: (gap) => gaps.push(gap.topic) })
    await Promise.all([a.ping(), b.ping()])
    proxy!.cut()
    await Promise.all(ids(1, 300).map((id) => a.publish('model:User', event(id))))
    proxy!.restore()
    await eventually(() => expect(gaps).toEqual(['model:User']))
    expect(b.stats().gaps).toBe(1)
    await a.publish('model:User', event('after'))
    await eventually(() => expect(received).toContain('after'))
    // What it skipped, it did not deliver out of order either.
    expect(received).toEqual(['after'])
  })

  it('should resume, on either side of a partition and twice over, without what the client saw before', async () => {
    const { bus: a, proxy } = await bus({ proxied: true })
    const { bus: b } = await bus()
    const { bus: c } = await bus()
    const onA = record(a, 'model:User')
    const onC = record(c, 'model:User')
    await Promise.all([a.ping(), b.ping(), c.ping()])
    await a.publish('model:User', event('1'))
    await eventually(() => expect(onC.received.map(idOf)).toEqual(['1']))
    // A is cut off: its client sees x2 and x3, which Redis has not.
    proxy!.cut()
    await a.publish('model:User', event('x2'))
    await a.publish('model:User', event('x3'))
    const fromA = onA.received.at(-1)!.cursor
    // The client resumes on B: nothing to replay; then B's own event.
    const onB = await resumeSubscriber(b, 'model:User', fromA)
    expect(onB.received).toEqual([])
    await b.publish('model:User', event('b4'))
    expect(onB.received.map(idOf)).toEqual(['b4'])
    // It moves again, to C, with the cursor B gave it.
    const onCResumed = await resumeSubscriber(c, 'model:User', onB.received[0]!.cursor)
    await eventually(() => expect(onC.received.map(idOf)).toContain('b4'))
    expect(onCResumed.received).toEqual([])
    // A comes back: x2 and x3 reach B and C now, and neither resumed subscription takes them.
    proxy!.restore()
    await eventually(() => expect(onC.received.map(idOf)).toEqual(['1', 'b4', 'x2', 'x3']))
    await a.publish('model:User', event('5'))
    await eventually(() => expect(onC.received.map(idOf)).toEqual(['1', 'b4', 'x2', 'x3', '5']))
    await eventually(() => expect(onB.received.map(idOf)).toEqual(['b4', '5']))
    expect(onCResumed.received.map(idOf)).toEqual(['5'])
    // And the cursors they give now resume anywhere, with nothing missing and nothing twice.
    const again = await resumeSubscriber(a, 'model:User', onCResumed.received[0]!.cursor)
    expect(again.received).toEqual([])
    const fromStart = await resumeSubscriber(b, 'model:User', onC.received[0]!.cursor)
    expect(fromStart.received.map(idOf)).toEqual(['b4', 'x2', 'x3', '5'])
  })

  it('should resume on a process that lags behind the cursor without what the client saw there', async () => {
    const { bus: g } = await bus()
    // H comes back slowly once its subscriber connection is killed: it lags behind G meanwhile.
    const { bus: h } = await bus({ redis: { connectionName: 'lagging', retryStrategy: () => 1000 } })
    const onG = record(g, 'model:User')
    const onH = record(h, 'model:User')
    await Promise.all([g.ping(), h.ping()])
    await g.publish('model:User', event('1'))
    await eventually(() => expect(onH.received.map(idOf)).toEqual(['1']))
    const admin = new (await import('ioredis')).Redis(redis.url)
    const clients = (await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string
    const lagging = /id=(\d+) .*name=lagging /.exec(clients)
    expect(lagging).not.toBeNull()
    await admin.call('CLIENT', 'KILL', 'ID', lagging![1]!)
    admin.disconnect()
    // H's own event reaches Redis and G, not H's subscriber; G's too.
    await h.publish('model:User', event('h2'))
    await eventually(() => expect(onG.received.map(idOf)).toEqual(['1', 'h2']))
    await g.publish('model:User', event('g3'))
    await eventually(() => expect(onG.received.map(idOf)).toEqual(['1', 'h2', 'g3']))
    // The client saw all three on G, and resumes on H.
    const resumed = await resumeSubscriber(h, 'model:User', onG.received[2]!.cursor)
    expect(resumed.received).toEqual([])
    await g.publish('model:User', event('4'))
    await eventually(() => expect(onH.received.map(idOf)).toEqual(['1', 'h2', 'g3', '4']))
    expect(resumed.received.map(idOf)).toEqual(['4'])
  })

  it('should deliver what was queued while Redis was down once it restarts, and refuse cursors of the lost history', async () => {
    const { bus: a } = await bus()
    const { bus: b } = await bus()
    const onA = record(a, 'model:User')
    const onB = record(b, 'model:User')
    await Promise.all([a.ping(), b.ping()])
    await a.publish('model:User', event('1'))
    await eventually(() => expect(onB.received.map(idOf)).toEqual(['1']))
    await redis.kill()
    for (const id of ids(2, 4)) expect(await a.publish('model:User', event(id))).toBe('queued')
    await redis.restart({ data: 'empty' })
    await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 4)))
    // A cursor from before the restart cannot be checked against a history that is gone.
    await eventually(() =>
      expect(() => b.resume('model:User', onA.received[0]!.cursor)).toThrow(
        expect.objectContaining({ reason: 'other-epoch' }),
      ),
    )
    await a.publish('model:User', event('5'))
    await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 5)))
    // Cursors given after it resume as usual.
    const resumed = await resumeSubscriber(b, 'model:User', onA.received[4]!.cursor)
    expect(resumed.received).toEqual([])
  })

  // The history epoch is the id of the data Redis holds, not the server's run: a restart that
  // keeps the data keeps every cursor, one that lost it refuses them all.
  for (const restart of ['append-only file', 'snapshot (SAVE)', 'empty'] as const) {
    const keeps = restart !== 'empty'
    it(`should ${keeps ? 'resume' : 'refuse'}, on the same and on another process, a cursor given before Redis restarted ${keeps ? `on its data (${restart})` : 'empty'}`, async () => {
      // A snapshot-only server of this test's own: SAVE, then killed.
      const server = restart === 'snapshot (SAVE)' ? await startRedisServer({ args: ['--appendonly', 'no'] }) : redis
      try {
        const { bus: a } = await bus({ url: server.url })
        const { bus: b } = await bus({ url: server.url })
        const onA = record(a, 'model:User')
        const onB = record(b, 'model:User')
        await Promise.all([a.ping(), b.ping()])
        for (const id of ids(1, 3)) await a.publish('model:User', event(id))
        await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 3)))
        await eventually(() => expect(onA.received.map(idOf)).toEqual(ids(1, 3)))
        // A client saw 1 on A, another saw 1 on B.
        const cursors = [onA.received[0]!.cursor, onB.received[0]!.cursor]
        if (restart === 'snapshot (SAVE)') {
          const admin = new Redis(server.url)
          await admin.save()
          admin.disconnect()
        }
        await server.restart({ data: keeps ? 'kept' : 'empty' })
        await eventually(async () => void (await Promise.all([a.ping(), b.ping()])))
        await a.publish('model:User', event('4'))
        await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 4)))
        await b.publish('model:User', event('5'))
        await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 5)))
        await eventually(() => expect(onA.received.map(idOf)).toEqual(ids(1, 5)))
        for (const process of [a, b])
          for (const cursor of cursors) {
            if (keeps) {
              const resumed = await resumeSubscriber(process, 'model:User', cursor)
              expect(resumed.received.map(idOf)).toEqual(ids(2, 5))
              resumed.stop()
            } else
              expect(() => process.resume('model:User', cursor)).toThrow(
                expect.objectContaining({ name: 'ResyncRequiredError', reason: 'other-epoch' }),
              )
          }
        expect(a.stats().gaps + b.stats().gaps).toBe(0)
        // Nothing is sent again into a Redis that kept it.
        if (keeps) expect(a.stats().replayed + b.stats().replayed).toBe(0)
      } finally {
        if (server !== redis) {
          await Promise.all(buses.splice(0).map((created) => created.close()))
          await server.stop()
        }
      }
    })
  }

  it('should send again what Redis took but never delivered when it comes back empty, and deliver it once', async () => {
    const { bus: a } = await bus()
    const { bus: b, proxy } = await bus({ proxied: true })
    const onB = record(b, 'model:User')
    await Promise.all([a.ping(), b.ping()])
    await a.publish('model:User', event('1'))
    await eventually(() => expect(onB.received.map(idOf)).toEqual(['1']))
    // B's link breaks; Redis takes 2 and 3 (A is told they were sent), then dies before B gets them.
    proxy!.cut()
    for (const id of ids(2, 3)) expect(await a.publish('model:User', event(id))).toBe('sent')
    await redis.restart({ data: 'empty' })
    // A sends 1 to 3 again into the new Redis; B, back within the replay window, takes only 2 and 3.
    await eventually(() => expect(a.stats().replayed).toBe(3))
    proxy!.restore()
    await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 3)))
    await a.publish('model:User', event('4'))
    await eventually(() => expect(onB.received.map(idOf)).toEqual(ids(1, 4)))
    expect(b.stats().gaps).toBe(0)
  })

  it('should catch up from the log a Redis kept through its restart, however long it was away, and send nothing again', async () => {
    const { bus: a } = await bus({ replayWindowMs: 200 })
    const { bus: b, proxy } = await bus({ proxied: true, replayWindowMs: 200 })
    const gaps: string[] = []
    const received: string[] = []
    b.subscribe('model:User', (e) => received.push(e.recordId), { onGap: (gap) => gaps.push(gap.reason) })
    await Promise.all([a.ping(), b.ping()])
    await a.publish('model:User', event('1'))
    await eventually(() => expect(received).toEqual(['1']))
    proxy!.cut()
    for (const id of ids(2, 3)) expect(await a.publish('model:User', event(id))).toBe('sent')
    await new Promise((resolve) => setTimeout(resolve, 1200))
    await redis.restart()
    proxy!.restore()
    await eventually(() => expect(received).toEqual(ids(1, 3)))
    await a.publish('model:User', event('4'))
    await eventually(() => expect(received).toEqual(ids(1, 4)))
    expect(gaps).toEqual([])
    expect(a.stats().replayed).toBe(0)
  })

  it('should say how many of the messages an emptied Redis took were past the bounds kept to send again', async () => {
    const errors: Error[] = []
    // Ten times the outbox's count is kept: 10 of the 12.
    const { bus: a } = await bus({ outbox: { maxEvents: 1 }, onError: (error) => errors.push(error as Error) })
    for (const id of ids(1, 12)) expect(await a.publish('model:User', event(id))).toBe('sent')
    await redis.restart({ data: 'empty' })
    await eventually(() => expect(a.stats().replayed).toBe(10))
    expect(errors.map((error) => error.message)).toContainEqual(
      expect.stringMatching(
        /^2 message\(s\) Redis took shortly before the break were past the bounds kept to send again/,
      ),
    )
  })

  it('should tell its listeners that messages may be missing when it was away longer than the replay window from a Redis that came back empty', async () => {
    const { bus: a } = await bus({ replayWindowMs: 200 })
    const { bus: b, proxy } = await bus({ proxied: true, replayWindowMs: 200 })
    const gaps: string[] = []
    const received: string[] = []
    b.subscribe('model:User', (e) => received.push(e.recordId), { onGap: (gap) => gaps.push(gap.reason) })
    await Promise.all([a.ping(), b.ping()])
    proxy!.cut()
    expect(await a.publish('model:User', event('1'))).toBe('sent')
    // Longer than A keeps what Redis took (the window, the command timeout and the heartbeat).
    await new Promise((resolve) => setTimeout(resolve, 1200))
    await redis.restart({ data: 'empty' })
    proxy!.restore()
    await eventually(() =>
      expect(gaps).toEqual([
        expect.stringMatching(
          /^Redis came back without its data after this gateway was away from it for \d+ s, longer than the replay window/,
        ),
      ]),
    )
    expect(b.stats().gaps).toBe(1)
    expect(a.stats().replayed).toBe(0)
    await a.publish('model:User', event('2'))
    await eventually(() => expect(received).toEqual(['2']))
  })
})
