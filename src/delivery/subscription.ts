/**
 * One subscription in the delivery hub: what a subscribe resolver returns. It is attached to its
 * topic from the moment it is made, so that nothing published after the resolver started
 * listening is missed, and it buffers what arrives until a consumer takes it:
 *
 * - the WebSocket transport (the fast path) makes it a member of a group (`join`): from then on
 *   each payload goes through the group's shared selection, execution and serialisation, and the
 *   result to the subscription's sink, synchronously, in delivery order;
 * - anything else that iterates it (Yoga over SSE, graphql-js) gets a stream of its own values
 *   (`[Symbol.asyncIterator]`), selected one subscription at a time.
 *
 * Replay then live (docs/architecture.md §7, for `after:` cursors): a resolver may give the subscription a
 * prelude before returning it (`replay`). The consumer then receives, in order, the replayed
 * payloads, then the live payloads buffered meanwhile except those the replay covered, then live
 * ones; all of them through the same selection (filters, row policies, `ids` completion),
 * execution and framing.
 */
import type { Group } from './group.ts'
import { Rendering, type SubscriptionSink } from './rendering.ts'
import type { DeliveryControl, Selection } from './selection.ts'
import { SubscriptionStream } from './stream.ts'

/**
 * Runs when a subscription ends, however it ends; a promise delays the end of its wind-down. A
 * function, or an `EndListener`.
 */
export type OnEnd = (() => void | Promise<void>) | EndListener

/**
 * An `OnEnd` as an object whose `subscriptionEnded` is called: what a gateway holds for each of
 * thousands of connections is then one small object rather than a closure and its scope.
 */
export interface EndListener {
  subscriptionEnded(): void | Promise<void>
}

/** What a subscription needs of its hub. */
export interface HubSide {
  /** Takes the subscription off its topic. */
  detach(subscription: HubSubscription<any, any>): void
  /** Reports a selection that threw (or an `onEnd` that failed). */
  selectionFailed(error: unknown, topic: string): void
}

/** Bits of `HubSubscription.#flags`. */
const ATTACHED = 1
const ENDED = 2
/** Ended by the server before a consumer took it: ends once what was buffered is delivered. */
const END_WHEN_DRAINED = 4
/** Set by `endAfterThis` while a payload is being selected. */
const END_REQUESTED = 8

export class HubSubscription<P = unknown, V = unknown> implements AsyncIterable<V>, DeliveryControl {
  /** Its state as bits of one field (a gateway holds a subscription per subscribed connection). */
  #flags = ATTACHED
  readonly #onEnd: OnEnd | undefined
  /** Live payloads that arrived before a consumer took the subscription. */
  #buffered: P[] | undefined = []
  #replay: { readonly payloads: readonly P[]; readonly covers: (live: P) => boolean } | undefined
  /** On the fast path: its group, and where its results go. */
  #group: Group | undefined
  #sink: SubscriptionSink | undefined
  #stream: SubscriptionStream<V> | undefined
  /** Failed by the server before a consumer took it: the `error` its consumer receives at once. */
  #failure: string | undefined
  #wound: Promise<void> | undefined

  #is(flag: number): boolean {
    return (this.#flags & flag) !== 0
  }

  #set(flag: number): void {
    this.#flags |= flag
  }

  #clear(flag: number): void {
    this.#flags &= ~flag
  }

  constructor(
    readonly topic: string,
    readonly selection: Selection<P, unknown, V>,
    private readonly hub: HubSide,
    onEnd: OnEnd | undefined,
  ) {
    this.#onEnd = onEnd
  }

  /** For its selection (the subscription is its own `DeliveryControl`): complete after this payload. */
  endAfterThis(): void {
    this.#set(END_REQUESTED)
  }

  /** Whether the subscription has ended (nothing more will be delivered to it). */
  get ended(): boolean {
    return this.#is(ENDED) || this.#is(END_WHEN_DRAINED)
  }

  /**
   * Replay then live: `payloads` are delivered first, in order; then the live payloads that
   * arrived since the subscription was made, except those `covers` says the replay already
   * holds; then live ones. Call it in the subscribe resolver, before returning the
   * subscription (once it is consumed, it is too late: this throws).
   */
  replay(payloads: Iterable<P>, covers: (live: P) => boolean): void {
    if (!this.#buffered) throw new Error('replay() must be called before the subscription is consumed')
    this.#replay = { payloads: [...payloads], covers }
  }

  /** The hub offers each payload of the topic; true when a result went to the consumer (for metrics). */
  offer(payload: P): boolean {
    if (this.#group) return this.#deliverToMember(payload)
    if (this.#buffered) this.#buffered.push(payload)
    else if (this.#stream) return this.#deliverToStream(this.#stream, payload)
    return false
  }

  /**
   * The fast path: from now on, results go to `sink` through `group` (which the caller has
   * joined this subscription to; it leaves it when the subscription ends). What is buffered
   * (and replayed) is delivered first.
   */
  join(group: Group, sink: SubscriptionSink): void {
    if (this.#group || this.#stream) throw new Error('the subscription is already consumed')
    group.join()
    if (this.#is(ENDED)) {
      group.leave()
      if (this.#failure !== undefined) sink.next(Rendering.failed(this.#failure))
      else sink.complete()
      return
    }
    // A member from now on (a payload that ends it while draining makes it leave the group).
    this.#group = group
    this.#sink = sink
    this.#drain((payload) => this.#deliverToMember(payload))
  }

  /** A stream of the subscription's values, for consumers that iterate (SSE, graphql-js). */
  [Symbol.asyncIterator](): SubscriptionStream<V> {
    if (this.#stream) return this.#stream
    if (this.#group) throw new Error('the subscription is already consumed')
    const stream = new SubscriptionStream<V>(() => void this.cancel())
    this.#stream = stream
    if (this.#is(ENDED)) stream.end()
    else this.#drain((payload) => this.#deliverToStream(stream, payload))
    return stream
  }

  /**
   * The server ends the subscription: its consumer receives what was delivered before, then
   * completes. Nothing more is delivered to it.
   */
  end(): void {
    if (this.#is(ENDED)) return
    if (this.#buffered) {
      // Not consumed yet: no more payloads; its consumer gets what was buffered, then the end.
      this.#detach()
      this.#set(END_WHEN_DRAINED)
      return
    }
    const sink = this.#sink
    const stream = this.#stream
    this.#finish()
    sink?.complete()
    stream?.end()
  }

  /**
   * The server ends the subscription with an error (`errorsJson`, the JSON array of an `error`
   * message): over WebSocket its client receives that `error` at once, after what was sent
   * before and instead of anything still buffered; an iterating consumer (SSE) completes.
   */
  fail(errorsJson: string): void {
    if (this.#is(ENDED)) return
    const sink = this.#sink
    const stream = this.#stream
    if (!sink && !stream) this.#failure = errorsJson
    this.#finish()
    sink?.next(Rendering.failed(errorsJson))
    stream?.end()
  }

  /**
   * Its consumer went away (the client completed it, the socket closed): nothing more is
   * delivered, nothing is sent. Resolves once it has wound down (its `onEnd` settled).
   */
  cancel(): Promise<void> {
    if (!this.#is(ENDED)) {
      const stream = this.#stream
      this.#finish()
      stream?.return()
    }
    return this.#wound!
  }

  /** As an iterator's `return()`: cancels. */
  async return(): Promise<IteratorResult<V>> {
    await this.cancel()
    return { value: undefined, done: true }
  }

  #finish(): void {
    this.#set(ENDED)
    this.#buffered = undefined
    this.#replay = undefined
    this.#detach()
    this.#group?.leave()
    this.#group = undefined
    this.#sink = undefined
    let wound: Promise<void>
    try {
      const onEnd = this.#onEnd
      const ended = typeof onEnd === 'function' ? onEnd() : onEnd?.subscriptionEnded()
      wound = Promise.resolve(ended).catch((error: unknown) => this.hub.selectionFailed(error, this.topic))
    } catch (error) {
      this.hub.selectionFailed(error, this.topic)
      wound = Promise.resolve()
    }
    this.#wound = wound
  }

  #detach(): void {
    if (!this.#is(ATTACHED)) return
    this.#clear(ATTACHED)
    this.hub.detach(this)
  }

  /** Delivers the replay, then what was buffered (less what the replay covered). */
  #drain(deliver: (payload: P) => void): void {
    const replay = this.#replay
    const buffered = this.#buffered ?? []
    this.#replay = undefined
    this.#buffered = undefined
    for (const payload of replay?.payloads ?? []) {
      if (this.#is(ENDED)) return
      deliver(payload)
    }
    for (const payload of buffered) {
      if (this.#is(ENDED)) return
      if (!replay?.covers(payload)) deliver(payload)
    }
    if (this.#is(END_WHEN_DRAINED)) this.end()
  }

  #deliverToMember(payload: P): boolean {
    const group = this.#group!
    let rendering
    try {
      const seen = group.see(payload)
      if (seen === undefined) return false
      if (this.selection.admit && !this.#admitted(seen)) return false
      rendering = group.rendering(seen)
    } catch (error) {
      this.#selectionFailed(error)
      return false
    }
    if (rendering) this.#sink!.next(rendering)
    if (this.#is(END_REQUESTED)) this.end()
    return rendering !== undefined
  }

  #deliverToStream(stream: SubscriptionStream<V>, payload: P): boolean {
    let value: V | undefined
    try {
      const seen = this.selection.see(payload)
      if (seen === undefined) return false
      if (this.selection.admit && !this.#admitted(seen)) return false
      value = this.selection.pick ? this.selection.pick(seen) : (seen as V)
    } catch (error) {
      this.#selectionFailed(error)
      return false
    }
    if (value !== undefined) stream.push(value)
    if (this.#is(END_REQUESTED)) this.end()
    return value !== undefined
  }

  /** `admit`, ending the subscription at once when it refuses a payload and asks to end. */
  #admitted(seen: unknown): boolean {
    this.#clear(END_REQUESTED)
    if (this.selection.admit!(seen, this)) return true
    if (this.#is(END_REQUESTED)) this.end()
    return false
  }

  /** A selection that throws is a bug: that subscription ends, the others still receive. */
  #selectionFailed(error: unknown): void {
    this.hub.selectionFailed(error, this.topic)
    this.end()
  }
}
