/**
 * One Redis connection's health as its users see it (docs/architecture.md §14): a heartbeat that
 * drops a connection whose Redis stopped answering (a link that silently carries nothing), so
 * that it reconnects, and one signal for what happened to it: `lost`, then `back` with the id of
 * the data the Redis behind it holds, and whether that is the data it held before (`sameData`:
 * restarted on its persistence, a replica promoted with it) or not (restarted empty, flushed).
 * Each user keeps its own recovery, driven by the signal.
 *
 * The data id lives in a key written once with SET NX and no expiry (`epochKey`): it lives as
 * long as Redis's data does.
 */
import { randomBytes } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'

/** What happened to a connection. */
export type RedisSignal =
  | { readonly kind: 'lost' }
  | { readonly kind: 'back'; readonly data: string; readonly sameData: boolean }

/** KEYS: the epoch key. ARGV: a fresh random id. The data id, written with the fresh id if absent (the data is new). */
export const epochScript = `
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
`

export interface RedisLinkOptions {
  /** A connected connection (one Redis, or a cluster client). */
  readonly connection: Redis | Cluster
  /** The key holding the data id; undefined: the link reads none (and `data` stays ''). */
  readonly epochKey?: string
  /** How often the heartbeat pings, in ms; undefined: no heartbeat. */
  readonly heartbeatMs?: number
  /** A heartbeat unanswered for this long drops the connection (it reconnects), in ms. */
  readonly timeoutMs: number
  /** Runs before each heartbeat (a user's periodic housekeeping, on the same timer). */
  readonly onBeat?: () => void
  readonly onError: (error: unknown, context: string) => void
  /** Names the connection in errors (`redis <name> …`). */
  readonly name: string
}

/** Reads the data id of the Redis behind `connection` (writing a fresh one if it has none). */
export async function readDataId(connection: Redis | Cluster, epochKey: string): Promise<string> {
  const data = await connection.eval(epochScript, 1, epochKey, randomBytes(12).toString('base64url'))
  if (typeof data !== 'string') throw new Error('Redis answered the data id with no string')
  return data
}

export class RedisLink {
  readonly #options: RedisLinkOptions
  #data: string
  #known: Promise<boolean> = Promise.resolve(true)
  #up = true
  #timer: NodeJS.Timeout | undefined
  #following = false
  /** Each user's recovery (a shared connection has several: src/redis/shared.ts). */
  readonly #followers = new Set<(signal: RedisSignal) => void>()
  /** Each user's periodic housekeeping, run before each heartbeat. */
  readonly #beats = new Set<() => void>()
  readonly #onClose = () => this.#lost()
  readonly #onReady = () => this.#back()

  /** Reads the data id once; `follow` then starts following the connection. */
  static async open(options: RedisLinkOptions): Promise<RedisLink> {
    return new RedisLink(options, await this.#read(options))
  }

  static #read({ connection, epochKey }: RedisLinkOptions): Promise<string> {
    return epochKey === undefined ? Promise.resolve('') : readDataId(connection, epochKey)
  }

  private constructor(options: RedisLinkOptions, data: string) {
    this.#options = options
    this.#data = data
  }

  /**
   * Adds a user of the signal: `lost` when the connection closes, `back` once it is ready again
   * and the data id read (each user's recovery runs there), and `onBeat` before each heartbeat.
   * The first follower starts the heartbeat. `unfollow` takes one out again.
   */
  follow(onSignal: (signal: RedisSignal) => void, onBeat?: () => void): this {
    this.#followers.add(onSignal)
    if (onBeat) this.#beats.add(onBeat)
    if (this.#following) return this
    this.#following = true
    this.#options.connection.on('close', this.#onClose)
    this.#options.connection.on('ready', this.#onReady)
    if (this.#options.heartbeatMs !== undefined)
      // unref: a link alone must not keep a process alive.
      this.#timer = setInterval(() => this.#beat(), this.#options.heartbeatMs).unref()
    return this
  }

  /** Takes one user out (its signal and beat); the link goes on for the others. */
  unfollow(onSignal: (signal: RedisSignal) => void, onBeat?: () => void): void {
    this.#followers.delete(onSignal)
    if (onBeat) this.#beats.delete(onBeat)
  }

  #signal(signal: RedisSignal): void {
    for (const follower of [...this.#followers]) follower(signal)
  }

  /** The data id of the Redis the connection is on (the last one read). */
  get data(): string {
    return this.#data
  }

  /** Whether the connection is up with its data id read: false from `lost` until `back` (or a failed read). */
  get known(): Promise<boolean> {
    return this.#known
  }

  #lost(): void {
    this.#known = Promise.resolve(false)
    if (!this.#up) return
    this.#up = false
    this.#signal({ kind: 'lost' })
  }

  #back(): void {
    const { connection, onError, name } = this.#options
    this.#known = RedisLink.#read(this.#options).then(
      (data) => {
        const sameData = data === this.#data
        this.#data = data
        this.#up = true
        this.#signal({ kind: 'back', data, sameData })
        return true
      },
      (error: unknown) => {
        onError(error, `redis ${name} data id`)
        // Nothing is done with a Redis whose data is unknown: connect again and ask again.
        connection.disconnect(true)
        return false
      },
    )
  }

  #beat(): void {
    const { connection, timeoutMs, onBeat, onError, name } = this.#options
    onBeat?.()
    for (const beat of [...this.#beats]) beat()
    if (connection.status !== 'ready') return
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs)
    })
    void Promise.race([connection.ping().catch(() => 'failed' as const), timedOut]).then((answer) => {
      clearTimeout(timer)
      if (answer !== 'timeout') return
      onError(
        new Error(`Redis did not answer a heartbeat within ${timeoutMs} ms: reconnecting`),
        `redis ${name} heartbeat`,
      )
      connection.disconnect(true)
    })
  }

  /** Stops following the connection, for every user (it is left open). */
  close(): void {
    this.#followers.clear()
    this.#beats.clear()
    this.#following = false
    clearInterval(this.#timer)
    this.#options.connection.off('close', this.#onClose)
    this.#options.connection.off('ready', this.#onReady)
  }
}
