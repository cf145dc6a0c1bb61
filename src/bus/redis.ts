/**
 * The Redis bus: several processes (gateways and backend services) on one Redis behave as one.
 * A publish reaches this process's listeners at once, without waiting on Redis, and every other
 * process through Redis pub/sub; a process drops its own messages when Redis echoes them back.
 */
import { randomUUID } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import { BusClosedError, type Bus, type Listener, type Topic, type TopicMap } from './bus.ts'
import { decode, encode } from './codec.ts'

export interface RedisBusOptions {
  /** `redis://…` or `rediss://…`. */
  url: string
  /** Prefix of the Redis channels, to share one Redis between deployments. @default "mizzen:" */
  channelPrefix?: string
  /** Told about a listener that threw, or a message that could not be read. */
  onError?: (error: unknown, topic: string) => void
  /** Extra ioredis options (both connections). */
  redis?: RedisOptions
}

interface Envelope {
  /** The publishing process, to drop our own echoes. */
  readonly origin: string
  readonly payload: unknown
}

export interface RedisBus extends Bus {
  /** Listeners registered in this process. */
  listenerCount(): number
}

export async function createRedisBus(options: RedisBusOptions): Promise<RedisBus> {
  const prefix = options.channelPrefix ?? 'mizzen:'
  const origin = randomUUID()
  const onError = options.onError ?? (() => {})
  // A subscribed ioredis connection can only (un)subscribe, so publishing needs its own.
  const connect = () => new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 2, ...options.redis })
  const publisher = connect()
  const subscriber = connect()
  for (const connection of [publisher, subscriber]) connection.on('error', (error: unknown) => onError(error, 'connection'))
  try {
    await Promise.all([publisher.connect(), subscriber.connect()])
  } catch (error) {
    publisher.disconnect()
    subscriber.disconnect()
    throw error
  }
  const listeners = new Map<string, Set<(payload: unknown) => void>>()
  /** SUBSCRIBE commands not yet confirmed: `ping` waits for them. */
  const pending = new Set<Promise<unknown>>()
  let closed = false

  const track = (command: Promise<unknown>, topic: string) => {
    const tracked = command.catch((error: unknown) => onError(error, topic)).finally(() => pending.delete(tracked))
    pending.add(tracked)
  }

  const deliver = (topic: string, payload: unknown) => {
    for (const listener of [...(listeners.get(topic) ?? [])]) {
      try {
        listener(payload)
      } catch (error) {
        onError(error, topic)
      }
    }
  }

  subscriber.on('message', (channel: string, text: string) => {
    const topic = channel.slice(prefix.length)
    let envelope: Envelope
    try {
      envelope = decode(text) as Envelope
    } catch (error) {
      onError(error, topic)
      return
    }
    if (envelope.origin !== origin) deliver(topic, envelope.payload)
  })

  return {
    async publish<T extends Topic>(topic: T, payload: TopicMap[T]) {
      if (closed) throw new BusClosedError()
      deliver(topic, payload)
      await publisher.publish(prefix + topic, encode({ origin, payload } satisfies Envelope))
    },
    subscribe<T extends Topic>(topic: T, listener: Listener<T>) {
      let set = listeners.get(topic)
      if (!set) {
        listeners.set(topic, (set = new Set()))
        track(subscriber.subscribe(prefix + topic), topic)
      }
      const entry = listener as (payload: unknown) => void
      set.add(entry)
      return () => {
        set.delete(entry)
        if (set.size === 0 && listeners.get(topic) === set) {
          listeners.delete(topic)
          if (!closed) track(subscriber.unsubscribe(prefix + topic), topic)
        }
      }
    },
    /** Resolves when Redis answers and every subscription made so far is in place. */
    async ping() {
      if (closed) throw new BusClosedError()
      await Promise.all([publisher.ping(), ...pending])
    },
    async close() {
      if (closed) return
      closed = true
      listeners.clear()
      await Promise.allSettled([publisher.quit(), subscriber.quit()])
    },
    listenerCount: () => [...listeners.values()].reduce((sum, set) => sum + set.size, 0),
  }
}
