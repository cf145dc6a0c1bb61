/**
 * The events of resourceful pub/sub, shared by the realtime Prisma extension (which publishes
 * them), the bus (which carries them) and the schema (which delivers them). They are plain data
 * so that any bus can carry them between processes.
 */
import type { Mark } from './bus/bus.ts'

/** What happened to a record, as Sails names it (`created`, `updated`, `destroyed`, `addedTo`, …). */
export const modelVerbs = ['CREATED', 'UPDATED', 'DELETED', 'ADDED_TO', 'REMOVED_FROM', 'MESSAGE'] as const
export type ModelVerb = (typeof modelVerbs)[number]

/** A record's scalar fields, as Prisma returns them. */
export type RecordState = Record<string, unknown>

export interface ModelEvent {
  /** The Prisma model's name, e.g. `User`. */
  readonly model: string
  readonly verb: ModelVerb
  /**
   * The record's id in its canonical string form. Named `recordId`, not `id`: normalising client
   * caches key objects by `id`, and every event of one record would become one cache entry.
   */
  readonly recordId: string
  /** The record's state after the write (CREATED, UPDATED); absent otherwise. */
  readonly node?: RecordState
  /** The record's state before the write (UPDATED, DELETED). */
  readonly previous?: RecordState
  /** UPDATED: the scalar fields whose value changed. */
  readonly updatedFields?: readonly string[]
  /** ADDED_TO / REMOVED_FROM: the relation field of this record that changed, e.g. `posts`. */
  readonly attribute?: string
  /** ADDED_TO: ids of the records added to `attribute`. */
  readonly addedIds?: readonly string[]
  /** REMOVED_FROM: ids of the records removed from `attribute`. */
  readonly removedIds?: readonly string[]
  /** MESSAGE: what `publishM` sent. */
  readonly data?: unknown
  /** When the event was published, ISO 8601 (captured events: when their transaction committed). */
  readonly at: string
  /**
   * Captured events (docs/capture.md): the event's place in PostgreSQL's log, its transaction's
   * commit position and its index in it, so that a gateway taking over the replication slot
   * recognises what was published already. Not part of the GraphQL event.
   */
  readonly logPosition?: string
}

/** The bus topic of a model's events. */
export const modelTopic = (model: string) => `model:${model}` as const

/**
 * A model event as a gateway delivers it to its subscriptions: with its position in the model's
 * stream (`cursor`), and the bus's mark it came with (what a subscription resumed with `after:`
 * needs to tell what it already has).
 */
export interface DeliveredModelEvent extends ModelEvent {
  readonly cursor: string
  readonly mark: Mark
}
