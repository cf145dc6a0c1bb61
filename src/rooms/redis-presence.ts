/**
 * Presence cards in Redis: who each connection is (user id, role) and what it shows per room
 * (its meta), for the other gateway instances to read (docs/architecture.md §13). Membership
 * itself stays where it is (the `room:<name>` sets of redis-scripts.ts); a card only describes a
 * connection, and a reader only reads the cards of a room's current members, so a card can never
 * make a connection present.
 *
 * | key | type | holds |
 * |---|---|---|
 * | `p presence:<instance>` | hash, TTL | connection id → its card (JSON `{ u, r, m }`) |
 *
 * (On a Redis Cluster the hash is `p{<instance>}:presence:<instance>`, in the instance's slot,
 * and a reader looks each owner up first: redis-cluster-store.ts.)
 *
 * One hash per instance, written only by that instance, with a TTL of three heartbeat TTLs that
 * the instance refreshes: a dead instance's connections leave `owners` when it is purged (so
 * readers stop reading its cards at once), and its hash expires on its own, leaving no ghost.
 *
 * Local first, like the membership mirror (redis-mirror.ts): the local card is the truth; a write
 * that fails (Redis out of reach) marks the hash dirty, and the next beat (at most a second
 * later) rewrites the whole hash from the local cards. A hash found gone (Redis restarted empty,
 * or it expired while this instance was cut off) is rewritten the same way.
 */
import { ReplyError, type Cluster, type Redis } from 'ioredis'
import { ServiceUnavailableError } from '../errors.ts'
import { TimeoutError, withTimeout } from '../timeouts.ts'
import type { Role } from '../auth/viewer.ts'
import type { PresenceCard, StampedMeta } from './memory.ts'

const scripts = {
  /**
   * ARGV: prefix, connection ids. Per connection, its card as its owner wrote it ('' when it has
   * no owner or no card yet).
   */
  mizzenPresenceCards: `
local p, out = ARGV[1], {}
for i = 2, #ARGV do
  local owner = redis.call('HGET', p .. 'owners', ARGV[i])
  local card = false
  if owner then card = redis.call('HGET', p .. 'presence:' .. owner, ARGV[i]) end
  out[#out + 1] = card or ''
end
return out`,
}

/** A card as stored: `u` user id, `r` role, `m` room → [meta, set at]. */
interface StoredCard {
  readonly u: string | null
  readonly r: Role
  readonly m: Record<string, [unknown, number]>
}

export const encodeCard = ({ identity, metas }: PresenceCard): string =>
  JSON.stringify({
    u: identity.userId,
    r: identity.role,
    m: Object.fromEntries([...metas].map(([room, { meta, at }]) => [room, [meta, at]])),
  } satisfies StoredCard)

export function decodeCard(text: string): PresenceCard | undefined {
  if (!text) return undefined
  const stored = JSON.parse(text) as StoredCard
  const metas = new Map<string, StampedMeta>(Object.entries(stored.m).map(([room, [meta, at]]) => [room, { meta, at }]))
  return { identity: { userId: stored.u, role: stored.r }, metas }
}

export interface RedisPresenceCardsOptions {
  readonly redis: Redis | Cluster
  /** The registry's prefix (read by the cards script on one Redis). */
  readonly prefix: string
  /** The prefix of this instance's hash (on a cluster, its own slot's: redis-cluster-store.ts). @default prefix */
  readonly hashPrefix?: string
  /** Reads the stored cards of connections ('' for none); on one Redis, a script over `owners`. */
  readonly readStored?: (connectionIds: readonly string[]) => Promise<string[]>
  readonly instanceId: string
  /** Bound of every Redis call, in ms. */
  readonly timeoutMs: number
  /** The registry's heartbeat TTL: the hash lives three of them past its last refresh. */
  readonly heartbeatTtlMs: number
  /** This instance's card of a connection; undefined once it no longer holds it. */
  readonly card: (connectionId: string) => PresenceCard | undefined
  /** Every connection this instance holds. */
  readonly held: () => Iterable<string>
  readonly onError: (error: unknown, context: string) => void
}

export class RedisPresenceCards {
  readonly #options: RedisPresenceCardsOptions
  readonly #key: string
  readonly #ttlMs: number
  /** A write may have been lost: the next beat rewrites the hash. */
  #dirty = false
  #beating = false
  #timer: NodeJS.Timeout | undefined

  constructor(options: RedisPresenceCardsOptions) {
    this.#options = options
    this.#key = `${options.hashPrefix ?? options.prefix}presence:${options.instanceId}`
    this.#ttlMs = options.heartbeatTtlMs * 3
    if (!options.readStored)
      for (const [name, lua] of Object.entries(scripts)) options.redis.defineCommand(name, { numberOfKeys: 0, lua })
  }

  /** Starts the refresh (every third of the heartbeat TTL, at most a second apart); returns the function that stops it. */
  start(): () => void {
    const every = Math.max(1, Math.min(1000, Math.floor(this.#options.heartbeatTtlMs / 3)))
    this.#timer = setInterval(() => void this.beat(), every).unref()
    return () => clearInterval(this.#timer)
  }

  /** Mirrors the local card of one connection (written, or deleted once the connection is gone). Never waits, never throws. */
  write(connectionId: string): void {
    if (this.#dirty) return // the next rewrite carries it
    const card = this.#options.card(connectionId)
    const { redis } = this.#options
    const call: Promise<unknown> = card
      ? redis.multi().hset(this.#key, connectionId, encodeCard(card)).pexpire(this.#key, this.#ttlMs).exec()
      : redis.hdel(this.#key, connectionId)
    this.#bounded(call).catch(() => {
      this.#dirty = true
    })
  }

  /** Refreshes the hash's TTL, or rewrites it when a write was lost or the hash is gone. */
  async beat(): Promise<void> {
    if (this.#beating) return
    this.#beating = true
    try {
      const rewrite = this.#dirty || (await this.#bounded(this.#options.redis.pexpire(this.#key, this.#ttlMs))) === 0
      if (rewrite) await this.#rewrite()
    } catch (error) {
      if (!this.#dirty) this.#options.onError(error, 'refreshing the presence cards in Redis failed; retrying')
      this.#dirty = true
    } finally {
      this.#beating = false
    }
  }

  /** The cards of `connectionIds` as their owners wrote them; undefined for one with no card (yet). */
  async read(connectionIds: readonly string[]): Promise<(PresenceCard | undefined)[]> {
    if (connectionIds.length === 0) return []
    const call = this.#options.readStored
      ? this.#options.readStored(connectionIds)
      : (this.#options.redis as unknown as Record<string, (...args: string[]) => Promise<string[]>>)
          .mizzenPresenceCards!(this.#options.prefix, ...connectionIds)
    return (await this.#bounded(call)).map(decodeCard)
  }

  /** Takes this instance's hash out of Redis (on shutdown; best effort, it expires anyway). */
  async clear(): Promise<void> {
    clearInterval(this.#timer)
    await this.#bounded(this.#options.redis.del(this.#key)).catch(() => {})
  }

  async #rewrite(): Promise<void> {
    // Cleared first: a write issued after this rewrite lands after it, so nothing older wins.
    this.#dirty = false
    const fields: string[] = []
    for (const connectionId of this.#options.held()) {
      const card = this.#options.card(connectionId)
      if (card) fields.push(connectionId, encodeCard(card))
    }
    const multi = this.#options.redis.multi().del(this.#key)
    if (fields.length) multi.hset(this.#key, ...fields).pexpire(this.#key, this.#ttlMs)
    const replies = await this.#bounded(multi.exec())
    const failed = replies?.find(([error]) => error)
    if (!replies || failed) throw failed?.[0] ?? new Error('the presence rewrite was discarded')
  }

  async #bounded<T>(call: Promise<T>): Promise<T> {
    try {
      return await withTimeout(call, this.#options.timeoutMs, 'Redis')
    } catch (error) {
      if (error instanceof ReplyError && /^ERR /.test((error as Error).message)) throw error
      const reason =
        error instanceof TimeoutError
          ? `Redis did not answer within ${error.timeoutMs} ms`
          : `Redis is unavailable: ${error instanceof Error ? error.message : String(error)}`
      throw new ServiceUnavailableError('redis', reason, { cause: error })
    }
  }
}
