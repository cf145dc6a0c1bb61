/**
 * The one place where events meet their subscribers (docs/architecture.md §4). Each topic keeps its local
 * subscriptions; `deliver` offers a payload to each of them in one synchronous loop. Those the
 * WebSocket transport consumes are members of groups: a group runs the shared part of the
 * selection and the execution once per payload and hands the same serialised result to all its
 * members, which their connections splice into their `next` frames and write at once.
 *
 *   bus ─▶ deliver(topic, payload) ─▶ subscription.offer ─▶ group (see, pick, execute, JSON once)
 *                                                          └▶ sink.next ─▶ frame ─▶ socket.send
 */
import { noopMetrics, type Metrics, type SubscriptionKind } from '../metrics.ts'
import { Group, type Renderer } from './group.ts'
import type { SubscriptionSink } from './rendering.ts'
import type { Selection } from './selection.ts'
import { HubSubscription, type HubSide, type OnEnd } from './subscription.ts'

export type { DeliveryControl, Selection } from './selection.ts'
export { HubSubscription } from './subscription.ts'

export interface DeliveryHubOptions {
  /** Told when a selection throws (or an `onEnd` fails); that subscription is ended, the others still receive. */
  onSelectorError?: (error: unknown, topic: string) => void
  /** Counts subscriptions and deliveries by kind (`Selection.kind`). @default noopMetrics */
  metrics?: Metrics
}

/** A topic's subscription, or its subscriptions when it has more than one. */
type Subscriptions = HubSubscription<any, any> | Set<HubSubscription<any, any>>

/** A topic's subscriptions as an array (a copy: ending one changes the topic's). */
const listed = (subscriptions: Subscriptions) => (subscriptions instanceof Set ? [...subscriptions] : [subscriptions])

export class DeliveryHub implements HubSide {
  /**
   * topic → its subscription, or its subscriptions when it has several: a connection's topic
   * (rooms) usually has one, and a gateway holds thousands of them, so one needs no Set.
   */
  readonly #topics = new Map<string, Subscriptions>()
  readonly #groups = new Map<string, Group<any, any, any>>()
  readonly #onSelectorError: (error: unknown, topic: string) => void
  readonly #metrics: Metrics
  readonly #removeGroup = (group: Group<any, any, any>) => {
    if (this.#groups.get(group.key) === group) this.#groups.delete(group.key)
  }

  constructor(options: DeliveryHubOptions = {}) {
    this.#onSelectorError = options.onSelectorError ?? (() => {})
    this.#metrics = options.metrics ?? noopMetrics
  }

  /**
   * A subscription to what `selection` takes from the payloads of `topic`, attached now (payloads
   * are buffered until something consumes it). `onEnd` runs once, after it is detached, however
   * it ends: where a subscription releases what it holds.
   */
  subscribe<P, V = unknown>(topic: string, selection: Selection<P, any, V>, onEnd?: OnEnd): HubSubscription<P, V> {
    const held = this.#topics.get(topic)
    // The topic's subscriptions share one copy of its name (each resolver builds its own, some 32
    // bytes kept per subscription: docs/performance.md, What an idle connection holds).
    const name = held === undefined ? topic : (held instanceof Set ? held.values().next().value! : held).topic
    const subscription = new HubSubscription<P, V>(name, selection, this, onEnd)
    if (held === undefined) this.#topics.set(topic, subscription)
    else if (held instanceof Set) held.add(subscription)
    else this.#topics.set(topic, new Set([held, subscription]))
    if (selection.kind) this.#metrics.subscriptionStarted(selection.kind)
    return subscription
  }

  /** For its subscriptions: takes one off its topic (and forgets a topic left empty). */
  detach(subscription: HubSubscription<any, any>): void {
    const { topic } = subscription
    const held = this.#topics.get(topic)
    if (held === subscription) this.#topics.delete(topic)
    else if (held instanceof Set && held.delete(subscription)) {
      // Back to one, held alone (a `deliver` iterating the Set goes on over what it still holds).
      if (held.size === 1) this.#topics.set(topic, held.values().next().value!)
    } else return
    if (subscription.selection.kind) this.#metrics.subscriptionEnded(subscription.selection.kind)
  }

  /** For its subscriptions: a selection threw, or an `onEnd` failed. */
  selectionFailed(error: unknown, topic: string): void {
    this.#onSelectorError(error, topic)
  }

  /**
   * The fast path: `subscription` joins the group `key` (made with its selection and `render`
   * when it is the first), and its results go to `sink`. The key must hold everything its
   * results depend on, and nothing that tells connections apart; `render` executes with a
   * context built from the key alone (docs/architecture.md §6).
   */
  join<P, V>(subscription: HubSubscription<P, V>, key: string, render: Renderer<V>, sink: SubscriptionSink): void {
    let group = this.#groups.get(key)
    if (!group) this.#groups.set(key, (group = new Group(key, subscription.selection, render, this.#removeGroup)))
    subscription.join(group, sink)
  }

  /**
   * Offers `payload` to every subscription of `topic`, in one loop; returns how many of them
   * took a result. Deliveries are counted once per run of subscriptions of one kind, not per
   * subscription (a model topic's subscriptions are all of one kind).
   */
  deliver(topic: string, payload: unknown): number {
    const subscriptions = this.#topics.get(topic)
    if (subscriptions === undefined) return 0
    if (!(subscriptions instanceof Set)) {
      if (!subscriptions.offer(payload)) return 0
      const kind = subscriptions.selection.kind
      if (kind) this.#metrics.delivered(kind, 1)
      return 1
    }
    let total = 0
    let run = 0
    let kind: SubscriptionKind | undefined
    for (const subscription of subscriptions) {
      if (!subscription.offer(payload)) continue
      total++
      const own = subscription.selection.kind
      if (own !== kind) {
        if (run && kind) this.#metrics.delivered(kind, run)
        kind = own
        run = 0
      }
      run++
    }
    if (run && kind) this.#metrics.delivered(kind, run)
    return total
  }

  /**
   * Ends every subscription of the topics `matches` with an `error` (`errorsJson`): what the bus
   * could not deliver to them (RESYNC_REQUIRED after a gap).
   */
  fail(matches: (topic: string) => boolean, errorsJson: string): void {
    for (const [topic, subscriptions] of [...this.#topics])
      if (matches(topic)) for (const subscription of listed(subscriptions)) subscription.fail(errorsJson)
  }

  /** Completes every subscription (on shutdown). */
  endAll(): void {
    for (const subscriptions of [...this.#topics.values()])
      for (const subscription of listed(subscriptions)) subscription.end()
  }

  /** Subscriptions currently attached, over all topics. */
  get subscriberCount(): number {
    let count = 0
    for (const subscriptions of this.#topics.values()) count += subscriptions instanceof Set ? subscriptions.size : 1
    return count
  }

  get topicCount(): number {
    return this.#topics.size
  }

  /** Groups with at least one member. */
  get groupCount(): number {
    return this.#groups.size
  }
}
