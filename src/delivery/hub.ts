/**
 * The one place where events meet their subscribers. Each topic keeps the set of its local
 * subscribers; `deliver` walks that set once per event, lets each subscriber's selector decide
 * what (if anything) it receives, and queues it. Keeping the whole set in view here is what lets
 * delivery later group subscribers that would receive the same result and serialise it once.
 */
import { SubscriptionStream } from './stream.ts'

/** Lets a selector complete its subscription. */
export interface DeliveryControl {
  /** Completes the subscription once this payload's value (if any) is queued. */
  endAfterThis(): void
}

/**
 * Decides what one subscriber receives for a payload: a value to queue, or undefined to skip it.
 */
export type Selector<P, R> = (payload: P, control: DeliveryControl) => R | undefined

interface Entry {
  readonly stream: SubscriptionStream<unknown>
  readonly select: Selector<unknown, unknown>
}

export interface DeliveryHubOptions {
  /** Told when a selector throws; that subscription is ended, the others still receive. */
  onSelectorError?: (error: unknown, topic: string) => void
}

export class DeliveryHub {
  readonly #topics = new Map<string, Set<Entry>>()
  readonly #onSelectorError: (error: unknown, topic: string) => void

  constructor(options: DeliveryHubOptions = {}) {
    this.#onSelectorError = options.onSelectorError ?? (() => {})
  }

  /**
   * A stream of what `select` picks from the payloads delivered on `topic`. `onEnd` runs once,
   * after the stream is detached, however it ends (the client completed it, a selector ended it,
   * the socket closed, `endAll`): where a subscription releases what it holds, without wrapping
   * the stream in another iterator.
   */
  subscribe<P, R>(topic: string, select: Selector<P, R>, onEnd?: () => void): SubscriptionStream<R> {
    let entries = this.#topics.get(topic)
    if (!entries) this.#topics.set(topic, (entries = new Set()))
    const set = entries
    const entry: Entry = {
      stream: new SubscriptionStream<unknown>(() => {
        set.delete(entry)
        if (set.size === 0 && this.#topics.get(topic) === set) this.#topics.delete(topic)
        onEnd?.()
      }),
      select: select as Selector<unknown, unknown>,
    }
    set.add(entry)
    return entry.stream as SubscriptionStream<R>
  }

  /** Offers `payload` to every subscriber of `topic`; returns how many received something. */
  deliver(topic: string, payload: unknown): number {
    const entries = this.#topics.get(topic)
    if (!entries) return 0
    let delivered = 0
    let ending = false
    const control: DeliveryControl = { endAfterThis: () => (ending = true) }
    for (const entry of [...entries]) {
      let value: unknown
      ending = false
      try {
        value = entry.select(payload, control)
      } catch (error) {
        this.#onSelectorError(error, topic)
        entry.stream.end()
        continue
      }
      if (value !== undefined) {
        entry.stream.push(value)
        delivered++
      }
      if (ending) entry.stream.end()
    }
    return delivered
  }

  /** Completes every subscription (on shutdown). */
  endAll(): void {
    for (const entries of [...this.#topics.values()]) for (const entry of [...entries]) entry.stream.end()
  }

  /** Subscriptions currently attached, over all topics. */
  get subscriberCount(): number {
    let count = 0
    for (const entries of this.#topics.values()) count += entries.size
    return count
  }

  get topicCount(): number {
    return this.#topics.size
  }
}
