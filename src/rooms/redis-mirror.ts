/**
 * The mirror of one instance's local rooms state in Redis, and its healing.
 *
 * The instance's own connections and memberships live in memory (the local truth, which delivery
 * reads); every change to them is mirrored to Redis, where other instances read the cluster. The
 * mirror issues the writes in the order the local changes happened (one queue of changes), and
 * never makes a local change wait on, or fail with, Redis:
 *
 * - in sync: each change issues its write at once, and the caller waits for it (bounded) only to
 *   report cluster-wide counts;
 * - broken: a write failed, timed out, or the connection to Redis dropped. Local changes go on
 *   alone, writing nothing; cluster reads fail fast (see `assertReachable`);
 * - healing: as soon as Redis answers again (its connection is ready again, or a retry every
 *   `retryMs` gets a PING through), the instance rewrites its whole share from its local state:
 *   its heartbeat, its connections (dropping those that closed meanwhile) and their rooms. Changes
 *   made after the rewrite was issued write again, behind it. Once the rewrite is acknowledged
 *   with no break since, the mirror is in sync.
 *
 * A heartbeat found expired (this instance was paused or cut off long enough for others to purge
 * it) is a break too: the rewrite puts its connections back.
 */
import { ServiceUnavailableError } from '../errors.ts'
import type { RoomStorage } from './redis-store.ts'

export type MirrorState = 'in-sync' | 'broken' | 'healing'

export interface MirrorOptions {
  readonly instanceId: string
  readonly store: RoomStorage
  /** Every connection this instance holds, with its rooms (read inside the change queue). */
  readonly snapshot: () => Map<string, string[]>
  readonly heartbeatTtlMs: number
  /** How long to wait between two attempts to heal while Redis stays out of reach, in ms. */
  readonly retryMs: number
  /** Sends a PING on the connection the writes use; resolves when it comes back (bounded). */
  readonly ping: () => Promise<unknown>
  readonly onError: (error: unknown, context: string) => void
  /** Told when the mirror is in sync again after a break. */
  readonly onHealed?: (info: { brokenForMs: number }) => void
}

export class RedisMirror {
  readonly #options: MirrorOptions
  #state: MirrorState = 'in-sync'
  /** Bumped by every break: a rewrite that started before a break does not make the mirror in sync. */
  #generation = 0
  #brokenAt = 0
  #reason = ''
  /** The tail of the change queue (see `change`). */
  #turn: Promise<unknown> = Promise.resolve()
  #healing = false
  #retry: NodeJS.Timeout | undefined
  #closed = false

  constructor(options: MirrorOptions) {
    this.#options = options
  }

  get state(): MirrorState {
    return this.#state
  }

  /**
   * Runs `change` once every earlier change ran. `change` updates the local state, waiting on
   * nothing but it, and returns its result with the write that mirrors it to Redis. The write is
   * issued at once (so Redis applies the writes in the order of the local changes) unless the
   * mirror is broken, in which case the next rewrite carries it. Resolves with the result and the
   * write's answer: undefined when the write was not issued, failed or timed out.
   */
  async change<R, W>(
    change: () => Promise<{ result: R; write?: () => Promise<W> }>,
  ): Promise<{ result: R; written: W | undefined }> {
    // The step returns the write wrapped in an object: an async function returning a promise would wait for it.
    const { result, written } = await this.#inTurn(async () => {
      const { result, write } = await change()
      return { result, written: write && this.#state !== 'broken' ? this.#issue(write) : undefined }
    })
    return { result, written: await written }
  }

  /** Throws ServiceUnavailableError while Redis is known to be out of reach (cluster reads fail fast). */
  assertReachable(): void {
    if (this.#state !== 'broken') return
    const seconds = ((Date.now() - this.#brokenAt) / 1000).toFixed(1)
    throw new ServiceUnavailableError(
      'redis',
      `Redis is unavailable (for ${seconds} s: ${this.#reason}); the rooms registry reconnects and heals on its own`,
    )
  }

  /** Something went wrong with Redis: this instance's share of it can no longer be trusted. */
  broke(error: unknown, context: string): void {
    if (this.#closed) return
    this.#generation++
    if (this.#state !== 'broken') {
      this.#state = 'broken'
      this.#brokenAt = Date.now()
      this.#reason = error instanceof Error ? error.message : String(error)
      this.#options.onError(error, `${context}; local rooms go on, Redis is rewritten from them once it answers`)
    }
    this.#scheduleHeal(this.#options.retryMs)
  }

  /** Redis may answer again (its connection is ready): try to heal now. */
  reconnected(): void {
    if (this.#state !== 'in-sync') this.#scheduleHeal(0)
  }

  /** Refreshes the heartbeat; an expired one (others may have purged this instance) breaks the mirror. */
  async beat(): Promise<void> {
    if (this.#state === 'broken') return // healing refreshes it
    try {
      if (!(await this.#options.store.heartbeat(this.#options.instanceId, this.#options.heartbeatTtlMs))) {
        this.broke(
          new Error(`the heartbeat of instance ${this.#options.instanceId} had expired`),
          'rooms registry heartbeat',
        )
      }
    } catch (error) {
      this.broke(error, 'rooms registry heartbeat')
    }
  }

  /** Stops healing, and waits for the changes queued so far (their writes are issued). */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    await this.#inTurn(async () => undefined)
  }

  #inTurn<T>(step: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(step)
    this.#turn = run.catch(() => {})
    return run
  }

  #issue<W>(write: () => Promise<W>): Promise<W | undefined> {
    return write().catch((error: unknown) => {
      this.broke(error, 'mirroring a rooms change to Redis failed')
      return undefined
    })
  }

  #scheduleHeal(delayMs: number): void {
    if (this.#closed || this.#healing) return
    clearTimeout(this.#retry)
    this.#retry = setTimeout(() => void this.#heal(), delayMs)
    this.#retry.unref()
  }

  /** One attempt to rewrite this instance's share; schedules the next one if it did not make it. */
  async #heal(): Promise<void> {
    if (this.#closed || this.#healing || this.#state === 'in-sync') return
    this.#healing = true
    const generation = this.#generation
    const { store, instanceId, heartbeatTtlMs, snapshot } = this.#options
    try {
      // A cheap probe first: while Redis is out of reach, only PINGs queue up, not rewrites.
      await this.#options.ping()
      const { written } = await this.#inTurn(async () => {
        // Closed meanwhile: the registry is taking its connections out of Redis; do not put them back.
        if (this.#closed) return { written: Promise.resolve() }
        const written = store.rewrite(instanceId, heartbeatTtlMs, snapshot())
        // Changes queued behind this one write again: they reach Redis after the rewrite.
        if (generation === this.#generation) this.#state = 'healing'
        return { written }
      })
      await written
      if (generation !== this.#generation) return // broke again meanwhile: the finally retries
      const brokenForMs = Date.now() - this.#brokenAt
      this.#state = 'in-sync'
      this.#options.onHealed?.({ brokenForMs })
    } catch (error) {
      if (generation === this.#generation) {
        // Still the same break: stay broken (writes stop again) and retry.
        this.#generation++
        this.#state = 'broken'
        this.#reason = error instanceof Error ? error.message : String(error)
      }
    } finally {
      this.#healing = false
      if (this.#state !== 'in-sync') this.#scheduleHeal(this.#options.retryMs)
    }
  }
}
