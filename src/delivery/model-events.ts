/**
 * Model events from the bus to local subscribers: one bus listener per model feeds the delivery
 * hub, and each `mEvents` subscription's selector applies its ids, where and verbs.
 */
import type { Bus } from '../bus/bus.ts'
import { modelTopic, type ModelEvent, type ModelVerb } from '../events.ts'
import { matchesWhere } from '../models/match.ts'
import type { DataModelMeta } from '../models/meta.ts'
import type { Where } from '../models/where.ts'
import type { DeliveryControl, DeliveryHub } from './hub.ts'

/** Feeds every model's bus topic into the hub; returns the function that stops it. */
export function bridgeModelEvents(bus: Bus, hub: DeliveryHub, dataModel: DataModelMeta): () => void {
  const stops = dataModel.models.map((model) => {
    const topic = modelTopic(model.name)
    return bus.subscribe(topic, (event) => hub.deliver(topic, event))
  })
  return () => stops.forEach((stop) => stop())
}

export interface ModelEventFilter {
  /** Only these records (canonical id strings); the subscription completes when all are deleted. */
  readonly ids?: ReadonlySet<string>
  /** Only records whose new state, or previous state, matches. */
  readonly where?: Where
  readonly verbs?: readonly ModelVerb[]
}

/** A selector for `DeliveryHub.subscribe` applying `filter`. */
export function modelEventSelector(filter: ModelEventFilter) {
  const remaining = filter.ids ? new Set(filter.ids) : undefined
  return (event: ModelEvent, control: DeliveryControl): ModelEvent | undefined => {
    if (remaining) {
      if (!remaining.has(event.id)) return undefined
      // Sails unsubscribes a destroyed record's room: once every watched record is gone, complete.
      if (event.verb === 'DELETED') {
        remaining.delete(event.id)
        if (remaining.size === 0) control.endAfterThis()
      }
    }
    if (filter.verbs && !filter.verbs.includes(event.verb)) return undefined
    if (filter.where && !matchesWhere(filter.where, event.node) && !matchesWhere(filter.where, event.previous)) return undefined
    return event
  }
}
