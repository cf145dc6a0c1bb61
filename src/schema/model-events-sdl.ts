/**
 * SDL for resourceful pub/sub: `mEvents(ids, where, verbs)` subscriptions delivering `MEvent`,
 * and `publishM(ids, data)` (Sails `Model.publish`), for every model.
 */
import { modelVerbs } from '../events.ts'
import type { DataModel, Model } from '../models/data-model.ts'
import { modelNames } from '../models/naming.ts'

const verbEnum = [
  '"""What happened to a record (Sails: created, updated, destroyed, addedTo, removedFrom, message)."""',
  `enum ModelVerb {\n${modelVerbs.map((verb) => `  ${verb}`).join('\n')}\n}`,
].join('\n')

function eventType(model: Model): string {
  const names = modelNames(model.name)
  return `"""Something that happened to a ${model.name}."""
type ${names.event} {
  verb: ModelVerb!
  """The ${model.name}'s id."""
  id: ID!
  """The record after the write (null after DELETED)."""
  node: ${model.name}
  """The record before the write (UPDATED, DELETED)."""
  previous: ${model.name}
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

function operations(model: Model): string {
  const names = modelNames(model.name)
  return `type Subscription {
  """
  Events of ${model.name} records. No ids and no where: every event of the model. ids: those
  records only (completes once all of them are deleted). where: records whose new state, or
  previous state, matches. verbs: those verbs only.
  """
  ${names.events}(ids: [ID!], where: ${names.where}, verbs: [ModelVerb!]): ${names.event}!
}

type Mutation {
  """Sends data to the subscribers of these ${model.name} records as a MESSAGE event; returns the ids it was sent for."""
  ${names.publish}(ids: [ID!]!, data: JSON!): [ID!]!
}`
}

export function modelEventTypeDefs(dataModel: DataModel): string {
  if (!dataModel.models.length) return ''
  return [verbEnum, ...dataModel.models.flatMap((model) => [eventType(model), operations(model)])].join('\n\n')
}
