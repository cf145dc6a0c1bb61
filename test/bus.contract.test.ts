/** The contract every bus backend keeps (delivery, cursors, history, resuming); each backend is listed in `backends`. */
import { randomUUID } from 'node:crypto'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { BusClosedError, ResyncRequiredError, type Bus } from '../src/bus/bus.ts'
import type { HistoryOptions } from '../src/bus/history-options.ts'
import { createMemoryBus } from '../src/bus/memory.ts'
import { createRedisBus } from '../src/bus/redis.ts'
import type { ModelEvent } from '../src/events.ts'
import type { RoomEnvelope } from '../src/rooms/messages.ts'
import { deleteRedisKeys, record, resumeSubscriber } from './helpers/bus.ts'
import { describeEach, missing, redisUrl, type Needing } from './helpers/services.ts'

/** A key and channel prefix of its own per test run, so that runs never hear each other. */
const runPrefix = `mizzen-test-${randomUUID()}:`
afterAll(() => (missing('redis') ? undefined : deleteRedisKeys(redisUrl, runPrefix)))

interface BusOptions {
  history?: HistoryOptions
  /** Buses made with the same `group` share their Redis keys and channels (one deployment). */
  group?: string
}

const backends: (Needing & { name: string; create: (options: BusOptions) => Promise<Bus> })[] = [
  { name: 'memory', create: async ({ history }) => createMemoryBus({ history }) },
  {
    name: 'redis',
    needs: ['redis'],
    create: ({ history, group }) =>
      // The model topics' log is their history: trim it as the history.
      createRedisBus({ url: redisUrl, prefix: `${runPrefix}${group}:`, history, logMaxEvents: history?.maxEvents }),
  },
]

const event = (id: string): ModelEvent => ({
  model: 'User',
  verb: 'CREATED',
  recordId: id,
  node: { id: Number(id), name: `n${id}` },
  at: new Date(0).toISOString(),
})
const idOf = (received: { payload: ModelEvent }) => received.payload.recordId
const broadcast = (rooms: string[], event: string): RoomEnvelope => ({
  message: { id: randomUUID(), event, data: null, sender: null, sentAt: new Date(0).toISOString() },
  target: { rooms, omit: [] },
})

/** Drains a resumption that is expected to fail. */
async function replayError(bus: Bus, cursor: string, key?: string): Promise<unknown> {
  try {
    const resumption = bus.resume(key === undefined ? 'model:User' : 'rooms:message', cursor, key)
    while ((await resumption.next()).length) {
      // keep reading: a trimmed history may only show mid-way
    }
  } catch (error) {
    return error
  }
  return undefined
}

describeEach(backends, '$name bus', ({ create }) => {
  const open: Bus[] = []
  /** A bus; those made in one test share their Redis (one deployment) unless `group` says otherwise. */
  let group = randomUUID()
  const bus = async (options: BusOptions = {}) => {
    const created = await create({ group, ...options })
    open.push(created)
    return created
  }
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()))
    group = randomUUID()
  })

  describe('delivery', () => {
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

    it('should deliver to the publisher’s own listeners before publish returns', async () => {
      const b = await bus()
      const seen: string[] = []
      b.subscribe('model:User', (e) => seen.push(e.recordId))
      await b.ping()
      const published = b.publish('model:User', event('1'))
      expect(seen).toEqual(['1'])
      await expect(published).resolves.toBe('sent')
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

  describe('cursors and resuming', () => {
    it('should give each message one cursor, the same for every listener, different from the next one’s', async () => {
      const b = await bus()
      const first = record(b, 'model:User')
      const second = record(b, 'model:User')
      await b.ping()
      for (const id of ['1', '2']) await b.publish('model:User', event(id))
      expect(first.received.map((r) => r.cursor)).toEqual(second.received.map((r) => r.cursor))
      expect(new Set(first.received.map((r) => r.cursor)).size).toBe(2)
      expect(first.received[0]!.cursor).toMatch(/^[A-Za-z0-9_-]+$/)
    })

    it('should replay exactly what came after a cursor, in order, then go on live with no gap or duplicate', async () => {
      const b = await bus()
      const seen = record(b, 'model:User')
      await b.ping()
      for (const id of ['1', '2', '3']) await b.publish('model:User', event(id))
      const resumed = await resumeSubscriber(b, 'model:User', seen.received[0]!.cursor, {
        // Published while the resumption is already made and the replay not yet read.
        beforeReplay: async () => {
          for (const id of ['4', '5']) await b.publish('model:User', event(id))
        },
      })
      expect(resumed.received.map(idOf)).toEqual(['2', '3', '4', '5'])
      await b.publish('model:User', event('6'))
      expect(resumed.received.map(idOf)).toEqual(['2', '3', '4', '5', '6'])
      resumed.stop()
    })

    it('should resume from any cursor it gave, replayed ones included', async () => {
      const b = await bus()
      await b.ping()
      const seen = record(b, 'model:User')
      for (const id of ['1', '2', '3', '4']) await b.publish('model:User', event(id))
      const first = await resumeSubscriber(b, 'model:User', seen.received[0]!.cursor)
      first.stop()
      // The cursor of the replayed "2", and of the live "5" on the resumed subscription.
      const second = await resumeSubscriber(b, 'model:User', first.received[0]!.cursor)
      expect(second.received.map(idOf)).toEqual(['3', '4'])
      await b.publish('model:User', event('5'))
      const third = await resumeSubscriber(b, 'model:User', second.received[2]!.cursor)
      expect(third.received.map(idOf)).toEqual([])
      await b.publish('model:User', event('6'))
      expect(third.received.map(idOf)).toEqual(['6'])
      for (const each of [second, third]) each.stop()
    })

    it('should replay nothing from the cursor of the last message', async () => {
      const b = await bus()
      const seen = record(b, 'model:User')
      await b.ping()
      await b.publish('model:User', event('1'))
      const resumed = await resumeSubscriber(b, 'model:User', seen.received[0]!.cursor)
      expect(resumed.received).toEqual([])
      resumed.stop()
    })

    it('should keep each room of a broadcast as its own history', async () => {
      const b = await bus()
      await b.ping()
      const lobby = record(b, 'rooms:message', 'lobby')
      await b.publish('rooms:message', broadcast(['lobby', 'news'], 'both'), { history: ['lobby', 'news'] })
      await b.publish('rooms:message', broadcast(['news'], 'news only'), { history: ['news'] })
      await b.publish('rooms:message', broadcast(['lobby'], 'lobby only'), { history: ['lobby'] })
      const resumed = await resumeSubscriber(b, 'rooms:message', lobby.received[0]!.cursor, { key: 'lobby' })
      expect(resumed.received.map((r) => r.payload.message.event)).toEqual(['lobby only'])
      // The cursor names its room: another room's history refuses it.
      expect(await replayError(b, lobby.received[0]!.cursor, 'news')).toMatchObject({ reason: 'other-history' })
      resumed.stop()
    })

    it('should answer RESYNC_REQUIRED for a malformed cursor, another topic’s, or another bus’s', async () => {
      const b = await bus()
      const seen = record(b, 'model:User')
      await b.ping()
      await b.publish('model:User', event('1'))
      const cursor = seen.received[0]!.cursor
      for (const bad of [
        '',
        'not a cursor',
        cursor.slice(0, -3),
        Buffer.from('1.a.b.c').toString('base64url'),
        `${cursor}x`,
      ]) {
        expect(() => b.resume('model:User', bad), bad).toThrow(ResyncRequiredError)
      }
      expect(() => b.resume('model:Post', cursor)).toThrow(expect.objectContaining({ reason: 'other-history' }))
      // Another deployment (memory: another process) does not read this cursor.
      const other = await bus({ group: randomUUID() })
      const otherSeen = record(other, 'model:User')
      await other.ping()
      await other.publish('model:User', event('1'))
      expect(() => b.resume('model:User', otherSeen.received[0]!.cursor)).toThrow(
        expect.objectContaining({ reason: 'other-epoch' }),
      )
    })

    it('should answer RESYNC_REQUIRED once the history was trimmed past the cursor', async () => {
      const b = await bus({ history: { maxEvents: 10 } })
      const seen = record(b, 'model:User')
      await b.ping()
      // Redis trims whole nodes of about 100 entries (MAXLEN ~): publish well past that.
      await Promise.all(Array.from({ length: 300 }, (_, i) => b.publish('model:User', event(String(i + 1)))))
      // (While Redis has not shown a process its own messages back, it replays them from memory.)
      await vi.waitFor(async () =>
        expect(await replayError(b, seen.received[0]!.cursor)).toMatchObject({ reason: 'trimmed' }),
      )
      // The last cursor is still in reach.
      const resumed = await resumeSubscriber(b, 'model:User', seen.received[299]!.cursor)
      expect(resumed.received).toEqual([])
      await b.publish('model:User', event('301'))
      expect(resumed.received.map(idOf)).toEqual(['301'])
      resumed.stop()
    })

    it('should answer RESYNC_REQUIRED once what followed the cursor aged out, and still resume a quiet topic', async () => {
      const b = await bus({ history: { maxAgeSeconds: 1 } })
      const seen = record(b, 'model:User')
      await b.ping()
      await b.publish('model:User', event('1'))
      await b.publish('model:User', event('2'))
      await new Promise((resolve) => setTimeout(resolve, 1200))
      expect(await replayError(b, seen.received[0]!.cursor)).toMatchObject({ reason: 'trimmed' })
      // Nothing came after "2": its cursor resumes, although its history aged out.
      const resumed = await resumeSubscriber(b, 'model:User', seen.received[1]!.cursor)
      expect(resumed.received).toEqual([])
      await b.publish('model:User', event('3'))
      expect(resumed.received.map(idOf)).toEqual(['3'])
      resumed.stop()
    })
  })
})

describe.skipIf(missing('redis'))('redis bus between processes', () => {
  const open: Bus[] = []
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()))
  })
  const bus = async (prefix = runPrefix) => {
    const created = await createRedisBus({ url: redisUrl, prefix })
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
    await a.publish('model:User', {
      ...event('3'),
      node: { createdAt: when, big: 12345678901234567890n, bytes: Buffer.from('hi'), nested: { at: when } },
    })
    await vi.waitFor(() => expect(received).toBeDefined())
    expect(received!.node).toEqual({
      createdAt: when,
      big: 12345678901234567890n,
      bytes: Buffer.from('hi'),
      nested: { at: when },
    })
  })

  it('should keep deployments with different prefixes apart', async () => {
    const a = await bus()
    const other = await bus(`${runPrefix}other:`)
    const heard: string[] = []
    other.subscribe('model:User', (e) => heard.push(e.recordId))
    await other.ping()
    await a.publish('model:User', event('4'))
    // Published after a's message was taken: once the marker arrives, a's would have too.
    await (await bus(`${runPrefix}other:`)).publish('model:User', event('marker'))
    await vi.waitFor(() => expect(heard).toContain('marker'))
    expect(heard).toEqual(['marker'])
  })

  it('should resume on one process from the cursors another gave, its own and others’ messages alike', async () => {
    const prefix = `${runPrefix}${randomUUID()}:`
    const [a, b] = [await bus(prefix), await bus(prefix)]
    const onA = record(a, 'model:User')
    const onB = record(b, 'model:User')
    await Promise.all([a.ping(), b.ping()])
    for (const id of ['1', '2']) await a.publish('model:User', event(id))
    await vi.waitFor(() => expect(onB.received.map(idOf)).toEqual(['1', '2']))
    await b.publish('model:User', event('3'))
    await vi.waitFor(() => expect(onA.received.map(idOf)).toEqual(['1', '2', '3']))
    await a.publish('model:User', event('4'))
    await vi.waitFor(() => expect(onA.received.map(idOf)).toEqual(['1', '2', '3', '4']))
    await vi.waitFor(() => expect(onB.received.map(idOf)).toEqual(['1', '2', '3', '4']))
    // Every cursor either process gave resumes on the other with exactly what followed it there.
    for (const [from, to, seen] of [
      [a, b, onA],
      [b, a, onB],
    ] as const) {
      for (let i = 0; i < 4; i++) {
        const resumed = await resumeSubscriber(to, 'model:User', seen.received[i]!.cursor)
        expect(resumed.received.map(idOf), `cursor ${i + 1} of ${from === a ? 'a' : 'b'}`).toEqual(
          ['1', '2', '3', '4'].slice(i + 1),
        )
        resumed.stop()
      }
    }
  })

  it('should apply a batch sent again once (a lost reply is retried without duplicates)', async () => {
    const { Redis } = await import('ioredis')
    const { publishScript } = await import('../src/bus/redis-scripts.ts')
    const prefix = `${runPrefix}${randomUUID()}:`
    const redis = new Redis(redisUrl)
    const log = `${prefix}{model:User}log`
    const args = [prefix, 'origin-1', 100, 100, 60_000, 60, 'PUBLISH', 'model:User', 2, 1, '"one"', 0, 2, '"two"', 0]
    expect(await redis.eval(publishScript, 1, log, ...args)).toBe(2)
    expect(await redis.eval(publishScript, 1, log, ...args)).toBe(2)
    expect(await redis.xlen(log)).toBe(2)
    redis.disconnect()
  })

  it('should leave the same logs, histories and metas whether messages come in one batch or one call each', async () => {
    const { Redis } = await import('ioredis')
    const { publishScript } = await import('../src/bus/redis-scripts.ts')
    const redis = new Redis(redisUrl)
    const topic = 'rooms:message'
    /** Messages as (origin, seq, histories); `calls` groups them into script calls. */
    const messages: [string, number, string[]][] = [
      ['o2', 1, ['x']],
      ['o1', 1, ['x']],
      ['o1', 2, ['x', 'y']],
      ['o1', 3, ['y', 'z']],
      ['o2', 2, ['z']],
      ['o1', 4, ['x']],
    ]
    async function publish(calls: number[][]) {
      const prefix = `${runPrefix}${randomUUID()}:`
      const tagged = `${prefix}{${topic}}`
      // A history that outlived the log: it refuses the log's ids, and its meta says so.
      await redis.xadd(`${tagged}hist:z`, '99999999999999-0', 'p', 'old')
      for (const call of calls) {
        // One call per origin: a batch is one process's.
        const origin = messages[call[0]!]![0]
        const args: (string | number)[] = [prefix, origin, 100, 100, 60_000, 60, 'PUBLISH', topic, call.length]
        for (const i of call) args.push(messages[i]![1], `"m${i}"`, messages[i]![2].length, ...messages[i]![2])
        await redis.eval(publishScript, 1, `${tagged}log`, ...args)
      }
      // Entry ids differ between the two runs: named by their place in the log.
      const log = await redis.xrange(`${tagged}log`, '-', '+')
      const place = new Map(log.map(([id], i) => [id, `#${i}`]))
      const named = (id: string | null) => (id === null ? null : (place.get(id) ?? id))
      const state: Record<string, unknown> = {}
      for (const name of ['log', 'hist:x', 'hist:y', 'hist:z']) {
        const key = `${tagged}${name}`
        const entries = await redis.xrange(key, '-', '+')
        const [l, o, q, r] = await redis.hmget(`${key}:meta`, 'l', 'o', 'q', 'r')
        state[name] = {
          entries: entries.map(([id, fields]) => [
            named(id),
            fields.map((f, i) => (fields[i - 1] === 'b' ? named(f) : f)),
          ]),
          meta: [named(l!), o, q, named(r!)],
          expires: [(await redis.pttl(key)) > 0, (await redis.ttl(`${key}:meta`)) > 0],
        }
      }
      return state
    }
    const batched = await publish([[0], [1, 2, 3], [4], [5]])
    expect(batched).toEqual(await publish([[0], [1], [2], [3], [4], [5]]))
    expect(batched['hist:z']).toMatchObject({ meta: ['#4', '', '0', '#4'], expires: [false, true] })
    expect(batched['hist:x']).toMatchObject({ meta: ['#5', 'o1', '4', '#0'], expires: [true, true] })
    redis.disconnect()
  })

  it('should refuse to start when Redis is unreachable', async () => {
    await expect(createRedisBus({ url: 'redis://127.0.0.1:1', redis: { retryStrategy: () => null } })).rejects.toThrow()
  })
})
