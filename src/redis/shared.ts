/**
 * One gateway's Redis connections, shared by its users (the bus and the rooms registry,
 * docs/architecture.md §14): one command connection and one subscriber connection (on a cluster,
 * one sharded subscriber per primary), each followed by one link (src/redis/link.ts) whose
 * heartbeat covers every user, and whose one signal (lost / back with the same data / back with
 * other data) each user follows with its own recovery.
 *
 * The connections are opened for the strictest user: commands fail at once while a connection is
 * down and nothing is re-sent or re-subscribed behind a user's back (the bus's outbox and its
 * idempotent batches, the registry's mirror and its command channel each do their own); they
 * reconnect soon after Redis is back. Each user takes a share (`use`) and gives it back on close;
 * the last one out closes the connections.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { withTimeout } from '../timeouts.ts'
import { openRedis, redisTarget, type RedisTarget } from './connection.ts'
import { RedisLink } from './link.ts'

export interface SharedRedisOptions {
  /** One Redis (`url`) or a cluster's seed nodes (`cluster`). */
  readonly url?: string
  readonly cluster?: readonly string[]
  /** The key of the data id (`<prefix>epoch`, src/redis/link.ts). */
  readonly epochKey: string
  /** How often each link pings, in ms. @default 1000 */
  readonly heartbeatMs?: number
  /** How long one Redis command (and a heartbeat) may take, in ms; past it the connection is dropped and reconnects. @default 5000 */
  readonly redisTimeoutMs?: number
  /** Extra ioredis options (both connections). */
  readonly redis?: RedisOptions
  readonly onError: (error: unknown, context: string) => void
}

export class SharedRedis {
  readonly target: RedisTarget
  readonly sharded: boolean
  readonly commands: Redis | Cluster
  readonly subscriber: Redis | Cluster
  readonly commandsLink: RedisLink
  readonly subscriberLink: RedisLink
  readonly redisTimeoutMs: number
  readonly heartbeatMs: number
  readonly epochKey: string
  #users = 0
  #closed: Promise<void> | undefined

  /** Opens both connections and their links (the data id read); rejects if Redis does not answer. */
  static async open(options: SharedRedisOptions): Promise<SharedRedis> {
    const target = redisTarget(options)
    const redisTimeoutMs = options.redisTimeoutMs ?? 5000
    const heartbeatMs = options.heartbeatMs ?? 1000
    const connect = (role: 'commands' | 'subscriber') =>
      openRedis(target, role, {
        autoResubscribe: false,
        autoResendUnfulfilledCommands: false,
        commandTimeout: redisTimeoutMs,
        // Reconnect soon after Redis is back (ioredis waits up to 2 s by default).
        retryStrategy: (attempt) => Math.min(attempt * 50, 500),
        ...options.redis,
      })
    const commands = connect('commands')
    const subscriber = connect('subscriber')
    commands.on('error', (error: unknown) => options.onError(error, 'redis commands connection'))
    subscriber.on('error', (error: unknown) => options.onError(error, 'redis subscriber connection'))
    try {
      await Promise.all([commands.connect(), subscriber.connect()])
      const linkOptions = {
        epochKey: options.epochKey,
        heartbeatMs,
        timeoutMs: redisTimeoutMs,
        onError: options.onError,
      }
      const [commandsLink, subscriberLink] = await Promise.all([
        RedisLink.open({ ...linkOptions, connection: commands, name: 'commands' }),
        RedisLink.open({ ...linkOptions, connection: subscriber, name: 'subscriber' }),
      ])
      return new SharedRedis(target, commands, subscriber, commandsLink, subscriberLink, {
        redisTimeoutMs,
        heartbeatMs,
        epochKey: options.epochKey,
      })
    } catch (error) {
      commands.disconnect()
      subscriber.disconnect()
      throw error
    }
  }

  private constructor(
    target: RedisTarget,
    commands: Redis | Cluster,
    subscriber: Redis | Cluster,
    commandsLink: RedisLink,
    subscriberLink: RedisLink,
    timings: { redisTimeoutMs: number; heartbeatMs: number; epochKey: string },
  ) {
    this.target = target
    this.sharded = 'cluster' in target
    this.commands = commands
    this.subscriber = subscriber
    this.commandsLink = commandsLink
    this.subscriberLink = subscriberLink
    this.redisTimeoutMs = timings.redisTimeoutMs
    this.heartbeatMs = timings.heartbeatMs
    this.epochKey = timings.epochKey
  }

  /** Takes a share of the connections; the function returned gives it back (the last one closes them). */
  use(): () => Promise<void> {
    if (this.#closed) throw new Error('the shared Redis connections are closed')
    this.#users++
    let released = false
    return async () => {
      if (released) return
      released = true
      if (--this.#users === 0) await this.close()
    }
  }

  /** Stops the links and closes both connections (bounded: a Redis out of reach does not hold it up). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.commandsLink.close()
      this.subscriberLink.close()
      await Promise.all(
        [this.commands, this.subscriber].map((connection) =>
          connection.status === 'ready'
            ? withTimeout(connection.quit(), this.redisTimeoutMs, 'Redis').then(
                () => {},
                () => connection.disconnect(),
              )
            : connection.disconnect(),
        ),
      )
    })()
    return this.#closed
  }
}
