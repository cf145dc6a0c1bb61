/**
 * Bus-level helpers: listeners that record what they receive with its cursor, a subscriber that
 * resumes from a cursor the way the delivery layer does (live into a buffer first, then the
 * replay, then the buffer less what the replay covered), and cleanup of a test's Redis keys.
 */
import { Redis } from 'ioredis'
import type { Bus, Mark, Topic, TopicMap } from '../../src/bus/bus.ts'

export interface Received<T extends Topic> {
  readonly payload: TopicMap[T]
  readonly cursor: string
  readonly mark: Mark
}

/** Records everything `bus` delivers on `topic` (with `mark.cursor(key)`); `stop()` unsubscribes. */
export function record<T extends Topic>(bus: Bus, topic: T, key?: string) {
  const received: Received<T>[] = []
  const stop = bus.subscribe(topic, (payload, mark) => {
    if (key === undefined || inHistory(payload, key)) received.push({ payload, cursor: mark.cursor(key), mark })
  })
  return { received, stop }
}

/** Whether a payload belongs to history `key` of its topic (rooms: the broadcast names the room). */
function inHistory(payload: unknown, key: string): boolean {
  const rooms = (payload as { target?: { rooms?: readonly string[] | null } }).target?.rooms
  return rooms === undefined || (rooms !== null && rooms.includes(key))
}

/**
 * Subscribes to `topic` and resumes history `key` from `cursor`; resolves once the replay is
 * delivered, with what it received so far (`received` keeps growing live). `beforeReplay` runs
 * between attaching and replaying (to publish "during the replay").
 */
export async function resumeSubscriber<T extends Topic>(
  bus: Bus,
  topic: T,
  cursor: string,
  options: { key?: string; beforeReplay?: () => Promise<void> | void } = {},
) {
  const received: Received<T>[] = []
  const buffered: [TopicMap[T], Mark][] = []
  let live = false
  const { key } = options
  const resumption = { current: undefined as ReturnType<Bus['resume']> | undefined }
  const stop = bus.subscribe(topic, (payload, mark) => {
    if (key !== undefined && !inHistory(payload, key)) return
    if (!live) return void buffered.push([payload, mark])
    const resumed = resumption.current!
    if (resumed.wants(mark)) received.push({ payload, cursor: resumed.cursor(mark), mark })
  })
  try {
    const resumed = bus.resume(topic, cursor, key)
    resumption.current = resumed
    await options.beforeReplay?.()
    for (;;) {
      const page = await resumed.next()
      if (page.length === 0) break
      for (const { payload, mark } of page)
        received.push({ payload: payload as TopicMap[T], cursor: mark.cursor(), mark })
    }
    for (const [payload, mark] of buffered.splice(0))
      if (resumed.wants(mark)) received.push({ payload, cursor: resumed.cursor(mark), mark })
    live = true
  } catch (error) {
    stop()
    throw error
  }
  return { received, stop }
}

/** Deletes every key under `prefix` (a test's own), so that test runs leave nothing behind in a shared Redis. */
export async function deleteRedisKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  try {
    await redis.connect()
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length) await redis.unlink(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}
