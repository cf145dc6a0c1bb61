/**
 * Model events from the bus to local subscribers: one bus listener per model feeds the delivery
 * hub, and each `mEvents` subscription's selection applies its ids, where and verbs.
 */
import type { Bus } from '../bus/bus.ts'
import { clientErrorsJson, resyncRequired } from '../errors.ts'
import { modelTopic, type DeliveredModelEvent, type ModelVerb } from '../events.ts'
import { noopMetrics, type Metrics } from '../metrics.ts'
import { matchesWhere } from '../models/match.ts'
import type { DataModel } from '../models/data-model.ts'
import type { Where } from '../models/where.ts'
import type { DeliveryHub } from './hub.ts'
import { keyOf } from './grouping.ts'
import type { DeliveryControl, Selection } from './selection.ts'

/**
 * Feeds every model's bus topic into the hub, each event with its cursor; returns the function
 * that stops it. When the bus missed events of a model it cannot deliver any more (a gateway
 * cut from Redis longer than the log covers), that model's subscriptions end with
 * RESYNC_REQUIRED: their clients must reload.
 */
export function bridgeModelEvents(
  bus: Bus,
  hub: DeliveryHub,
  dataModel: DataModel,
  metrics: Metrics = noopMetrics,
): () => void {
  const stops = dataModel.models.map((model) => {
    const topic = modelTopic(model.name)
    return bus.subscribe(
      topic,
      (event, mark) => {
        // Once per event (not per subscriber), and only when someone here received it.
        if (hub.deliver(topic, { ...event, cursor: mark.cursor(), mark } satisfies DeliveredModelEvent))
          metrics.deliveryLatency(Date.parse(event.at))
      },
      { onGap: (gap) => hub.fail((each) => each === topic, clientErrorsJson(resyncRequired(gap.reason))) },
    )
  })
  return () => stops.forEach((stop) => stop())
}

/**
 * The distinct record ids (canonical id strings) an `ids` subscription watches: an array while
 * they are few, a Set beyond. A subscription keeps them for its life, and a Set is some 150
 * bytes however few it holds (docs/performance.md, What an idle connection holds).
 */
export type WatchedIds = readonly string[] | ReadonlySet<string>

/** Up to this many ids are an array (looked through), more a Set. */
const FEW_IDS = 8

export function watchedIds(ids: Iterable<string>): WatchedIds {
  const distinct = new Set(ids)
  return distinct.size <= FEW_IDS ? [...distinct] : distinct
}

const watches = (ids: WatchedIds, id: string) =>
  ids instanceof Set ? ids.has(id) : (ids as readonly string[]).includes(id)
const countOf = (ids: WatchedIds) => (ids instanceof Set ? ids.size : (ids as readonly string[]).length)

export interface ModelEventFilter {
  /** Only these records; the subscription completes when all are deleted. */
  readonly ids?: WatchedIds
  /** Only records whose new state, or previous state, matches. */
  readonly where?: Where
  readonly verbs?: readonly ModelVerb[]
  /** The records the subscriber may see (its row policy); undefined when it may see all. */
  readonly visible?: Where
}

/**
 * The event as a viewer who may see only `visible` records sees it: nothing about records it
 * can't see, not even their previous state. A record that leaves its view arrives as DELETED
 * (with the previous state it could see, never the new one), and one that enters as CREATED.
 */
export function viewedEvent(event: DeliveredModelEvent, visible: Where): DeliveredModelEvent | undefined {
  const sawBefore = event.previous !== undefined && matchesWhere(visible, event.previous)
  const seesNow = event.node !== undefined && matchesWhere(visible, event.node)
  switch (event.verb) {
    case 'DELETED':
      return sawBefore ? event : undefined
    case 'UPDATED':
      if (sawBefore && seesNow) return event
      if (seesNow)
        return {
          model: event.model,
          verb: 'CREATED',
          recordId: event.recordId,
          node: event.node!,
          at: event.at,
          cursor: event.cursor,
          mark: event.mark,
        }
      if (sawBefore)
        return {
          model: event.model,
          verb: 'DELETED',
          recordId: event.recordId,
          previous: event.previous!,
          at: event.at,
          cursor: event.cursor,
          mark: event.mark,
        }
      return undefined
    default:
      // CREATED, ADDED_TO, REMOVED_FROM, MESSAGE: the record as it is now must be visible.
      return seesNow ? event : undefined
  }
}

/**
 * The selection for `filter` on `model`'s topic: one object shared by every subscription whose
 * filter is the same (same `where`, `verbs` and row policy, compared as key text) while any of
 * them runs, since without `ids` a selection keeps nothing per subscription; a subscription to
 * `ids` gets one of its own (it keeps the ids it has seen deleted). A gateway holds thousands of
 * subscriptions, often with one filter: one copy of the filter (a policy's `where` is some 0.4
 * KB) rather than one each (docs/performance.md, What an idle connection holds).
 */
export function modelEventSelection(model: string, filter: ModelEventFilter): ModelEventSelection {
  if (filter.ids) return new ModelEventSelection(filter)
  const key = `${model}\n${keyOf([filter.where ?? null, filter.verbs ?? null, filter.visible ?? null])}`
  const existing = sharedSelections.get(key)?.deref()
  if (existing) return existing
  const selection = new ModelEventSelection(filter)
  sharedSelections.set(key, new WeakRef(selection))
  forgetSharedSelection.register(selection, key)
  return selection
}

/** Selections without `ids` by filter key, while any subscription holds them. */
const sharedSelections = new Map<string, WeakRef<ModelEventSelection>>()
const forgetSharedSelection = new FinalizationRegistry<string>((key) => {
  // A selection made since for the same key has taken the entry: leave it.
  if (!sharedSelections.get(key)?.deref()) sharedSelections.delete(key)
})

/**
 * The selection of an `mEvents` subscription applying `filter`: the viewer's row policy and the
 * `ids` it names (`see`, shared by its group), the records still to watch (`admit`, its own: it
 * completes once all of them are deleted), then `verbs` and `where` (`pick`, shared). A class
 * rather than closures: one small object per subscription, its functions shared.
 */
export class ModelEventSelection implements Selection<DeliveredModelEvent, DeliveredModelEvent, DeliveredModelEvent> {
  readonly viewerKey: string | undefined
  // The filter's parts as fields of its own, not the filter object: one object less per `ids`
  // subscription (each has a selection of its own).
  readonly #ids: WatchedIds | undefined
  readonly #where: Where | undefined
  readonly #verbs: readonly ModelVerb[] | undefined
  readonly #visible: Where | undefined
  /**
   * The watched records deleted so far; the others of `ids` are still watched. Made at the first
   * deletion: an idle subscription (what a gateway holds thousands of) keeps no Set of its own.
   */
  #deleted: Set<string> | undefined

  constructor(filter: ModelEventFilter) {
    this.#ids = filter.ids
    this.#where = filter.where
    this.#verbs = filter.verbs
    this.#visible = filter.visible
    this.viewerKey = filter.visible ? keyOf(filter.visible) : undefined
  }

  get kind(): 'model' {
    return 'model'
  }

  see(published: DeliveredModelEvent): DeliveredModelEvent | undefined {
    const visible = this.#visible
    const ids = this.#ids
    const event = visible ? viewedEvent(published, visible) : published
    return event && (!ids || watches(ids, event.recordId)) ? event : undefined
  }

  admit(event: DeliveredModelEvent, control: DeliveryControl): boolean {
    const ids = this.#ids
    if (!ids) return true
    if (!watches(ids, event.recordId) || this.#deleted?.has(event.recordId)) return false
    // Sails unsubscribes a destroyed record's room: once every watched record is gone, complete.
    if (event.verb === 'DELETED') {
      const deleted = (this.#deleted ??= new Set())
      deleted.add(event.recordId)
      if (deleted.size === countOf(ids)) control.endAfterThis()
    }
    return true
  }

  pick(event: DeliveredModelEvent): DeliveredModelEvent | undefined {
    const verbs = this.#verbs
    const where = this.#where
    if (verbs && !verbs.includes(event.verb)) return undefined
    if (where && !matchesWhere(where, event.node) && !matchesWhere(where, event.previous)) return undefined
    return event
  }
}
