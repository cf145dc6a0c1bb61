/**
 * What a subscription takes from the payloads of its topic, split so that subscriptions which
 * would receive the same thing share the work (docs/architecture.md §4, §6):
 *
 *   payload ──see──▶ seen ──admit──▶ (this subscription?) ──pick──▶ root value ──execute──▶ JSON
 *            group      per subscription                    group                 group
 *
 * `see` and `pick` are pure functions of the payload, the subscription's arguments and the
 * policy-relevant part of its viewer: the subscriptions of one group (same document, variables
 * and viewer policies) share them, so each runs once per group and payload. `admit` is the
 * subscription's own state (an `ids` subscription that completes once its records are deleted):
 * it runs once per subscription, between the two.
 */
import type { SubscriptionKind } from '../metrics.ts'

/** Lets a selection complete its subscription. */
export interface DeliveryControl {
  /** Completes the subscription once this payload's result (if any) is sent. */
  endAfterThis(): void
}

export interface Selection<P = unknown, S = unknown, V = unknown> {
  /** What the subscription listens to, for `mizzen_subscriptions{kind}` and `mizzen_deliveries_total{kind}`. @default not counted */
  readonly kind?: SubscriptionKind
  /**
   * What `see` and `pick` take from the viewer (say, its row filter), as a string: two
   * subscriptions share a group only if theirs are equal.
   * @default nothing: they depend on the subscription's arguments alone
   */
  readonly viewerKey?: string
  /**
   * What the subscription's viewer sees of the payload (its row policies applied), or undefined
   * when it concerns nobody in the group. Must not keep state.
   */
  see(payload: P): S | undefined
  /**
   * Per subscription: whether it takes what was seen. May end the subscription (even when it
   * returns false: a subscription can complete on a payload it does not deliver).
   * @default every seen payload is admitted
   */
  admit?(seen: S, control: DeliveryControl): boolean
  /**
   * The root value the subscription's selection set is executed on, or undefined to skip it (the
   * subscription's filters). Must not keep state; returning the same object for the same content
   * lets the group execute it once.
   * @default the seen value itself
   */
  pick?(seen: S): V | undefined
}
