/**
 * `after:` cursors (docs/architecture.md §7): a hub subscription that starts with a replay from the bus's
 * history, then goes on live with no gap and no duplicate.
 *
 * The subscribe resolver makes the subscription (attached: live payloads buffer), opens the
 * resumption, reads the whole replay into the subscription's prelude, and returns it. The
 * transport then delivers the replay, the buffered payloads the replay did not cover, and live
 * ones, all through the subscription's selection: filters, row policies as they stand now, and
 * `ids` completion apply to replayed payloads as to live ones.
 *
 * Most resumed subscriptions are settled once the replay is read: every live payload from then
 * on is one they want, with its usual cursor, and they share groups with everyone else. One
 * that is not (its gateway lags behind the cursor, or the cursor says the client saw messages
 * the gateway has not seen yet, because their publisher is cut off from Redis) runs in a group
 * of its own, where it drops what it already has and carries its own cursors.
 */
import { randomUUID } from 'node:crypto'
import type { Mark, Replayed, Resumption, Topic } from '../bus/bus.ts'
import { isReplayed } from '../bus/mark.ts'
import { historyClientError } from '../errors.ts'
import type { DeliveryControl, Selection } from './selection.ts'
import type { HubSubscription } from './subscription.ts'

/** How a resumed selection reads marks and sets cursors on one kind of payload. */
export interface ResumeHooks<P, S, V> {
  /** The mark a payload, or what a selection saw of it, came with; undefined for one without (a notice). */
  markOf(item: P | S): Mark | undefined
  /** The root value with another cursor. */
  withCursor(value: V, cursor: string): V
}

/** A subscription's selection that follows its resumption (see above). */
export class ResumedSelection<P, S, V> implements Selection<P, S, V> {
  readonly #base: Selection<P, S, V>
  readonly #hooks: ResumeHooks<P, S, V>
  #resumption: Resumption<Topic> | undefined
  /** Set when the resumption is not settled once replayed: a group of its own. */
  #own: string | undefined

  constructor(base: Selection<P, S, V>, hooks: ResumeHooks<P, S, V>) {
    this.#base = base
    this.#hooks = hooks
  }

  get viewerKey(): string | undefined {
    return this.#own ? `${this.#base.viewerKey ?? ''}\u0000resumed ${this.#own}` : this.#base.viewerKey
  }

  see(payload: P): S | undefined {
    return this.#base.see(payload)
  }

  get admit(): ((seen: S, control: DeliveryControl) => boolean) | undefined {
    if (!this.#own) return this.#base.admit?.bind(this.#base)
    return (seen, control) => {
      const mark = this.#hooks.markOf(seen)
      if (mark && !isReplayed(mark) && !this.#resumption!.wants(mark)) return false
      return this.#base.admit ? this.#base.admit(seen, control) : true
    }
  }

  get pick(): ((seen: S) => V | undefined) | undefined {
    if (!this.#own) return this.#base.pick?.bind(this.#base)
    return (seen) => {
      const value = this.#base.pick ? this.#base.pick(seen) : (seen as unknown as V)
      const mark = this.#hooks.markOf(seen)
      return value === undefined || !mark || isReplayed(mark)
        ? value
        : this.#hooks.withCursor(value, this.#resumption!.cursor(mark))
    }
  }

  markOf(item: P | S): Mark | undefined {
    return this.#hooks.markOf(item)
  }

  /** The replay is read: decides whether the subscription may share groups. */
  resumed(resumption: Resumption<Topic>): void {
    this.#resumption = resumption
    if (!resumption.settled()) this.#own = randomUUID()
  }
}

/**
 * Resumes `subscription` (made with `selection`, attached, and joined where it must be) from the
 * resumption `open` makes: reads the whole replay into its prelude. `toPayload` turns a replayed
 * message into a hub payload, or undefined for one the subscription would not have received.
 * On failure the subscription is cancelled and the error is the client's (RESYNC_REQUIRED,
 * UNAVAILABLE).
 */
export async function resumeSubscription<T extends Topic, P, S, V>(
  subscription: HubSubscription<P, V>,
  selection: ResumedSelection<P, S, V>,
  open: () => Resumption<T>,
  toPayload: (replayed: Replayed<T>) => P | undefined,
): Promise<void> {
  const payloads: P[] = []
  let resumption: Resumption<T>
  try {
    resumption = open()
    for (let page = await resumption.next(); page.length; page = await resumption.next()) {
      for (const replayed of page) {
        const payload = toPayload(replayed)
        if (payload !== undefined) payloads.push(payload)
      }
    }
  } catch (error) {
    await subscription.cancel()
    throw historyClientError(error)
  }
  subscription.replay(payloads, (live) => {
    const mark = selection.markOf(live)
    return mark !== undefined && !resumption.wants(mark)
  })
  selection.resumed(resumption as Resumption<Topic>)
}
