/**
 * SDL for resourceful pub/sub: `mEvents(ids, where, verbs, after)` subscriptions delivering `MEvent`,
 * and `publishM(ids, data)` (Sails `Model.publish`), for every model.
 *
 * The event type is shaped for normalising client caches (Apollo Client, urql Graphcache), which
 * key every object that has an `id` by its typename and id: the event has no `id` (the record's id
 * is `recordId`), and the record's past state is an `MPrevious`, which has no relations and is not
 * an `M` and has no `id`, so it never shares a cache entry with the record's current state in
 * `node`, nor with another event's past state.
 */
import { modelVerbs } from '../events.ts'
import type { DataModel, Model } from '../models/data-model.ts'
import { modelNames } from '../models/naming.ts'
import { scalarFieldLine } from './model-sdl.ts'

const verbEnum = [
  '"""What happened to a record (Sails: created, updated, destroyed, addedTo, removedFrom, message)."""',
  `enum ModelVerb {\n${modelVerbs.map((verb) => `  ${verb}`).join('\n')}\n}`,
].join('\n')

function eventType(model: Model): string {
  const names = modelNames(model.name)
  return `"""Something that happened to a ${model.name}."""
type ${names.event} {
  """This event's position in the stream of ${model.name} events (opaque; ordered within the stream)."""
  cursor: String!
  verb: ModelVerb!
  """The ${model.name}'s id."""
  recordId: ID!
  """The record after the write (null after DELETED)."""
  node: ${model.name}
  """The record's fields before the write (UPDATED, DELETED); null otherwise."""
  previous: ${names.previous}
  """UPDATED: the fields whose value changed."""
  updatedFields: [String!]
  """ADDED_TO, REMOVED_FROM: the relation field that changed."""
  attribute: String
  """ADDED_TO: ids of the records added to attribute."""
  addedIds: [ID!]
  """REMOVED_FROM: ids of the records removed from attribute."""
  removedIds: [ID!]
  """MESSAGE: what publish${model.name} sent."""
  data: JSON
  at: DateTime!
}`
}

/**
 * A past state of a record: its scalar and enum fields (Prisma 1's previousValues), no relations,
 * and no `id` (the event's `recordId` has it): with an `id`, a normalising cache would keep one
 * `MPrevious` per record, and every kept event of it would show the latest one.
 */
function previousType(model: Model): string {
  const fields = model.scalars.filter((field) => !field.isId)
  return `"""A ${model.name}'s fields as they were before a write (its id is the event's recordId). Not a ${model.name}: caches keep it apart from the record's current state."""
type ${modelNames(model.name).previous} {
${(fields.length ? fields : model.scalars).map(scalarFieldLine).join('\n')}
}`
}

function operations(model: Model): string {
  const names = modelNames(model.name)
  return `type Subscription {
  """
  Events of ${model.name} records. No ids and no where: every event of the model. ids: those
  records only (completes once all of them are deleted). where: records whose new state, or
  previous state, matches. verbs: those verbs only. after: the cursor of the last event the
  client has; first replays, in order, every event since that the subscription would have
  received, then goes on live (RESYNC_REQUIRED when the history no longer reaches back to it).
  """
  ${names.events}(ids: [ID!], where: ${names.where}, verbs: [ModelVerb!], after: String): ${names.event}!
}

type Mutation {
  """Sends data to the subscribers of these ${model.name} records as a MESSAGE event; returns the ids it was sent for."""
  ${names.publish}(ids: [ID!]!, data: JSON!): [ID!]!
}`
}

export function modelEventTypeDefs(dataModel: DataModel): string {
  if (!dataModel.models.length) return ''
  return [
    verbEnum,
    ...dataModel.models.flatMap((model) => [eventType(model), previousType(model), operations(model)]),
  ].join('\n\n')
}
