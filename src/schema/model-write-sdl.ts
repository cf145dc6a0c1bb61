/**
 * SDL for the generated write API (Sails blueprints): `createM`, `updateM`, `deleteM` with their
 * inputs. Relations take `{ connect: { id } }` / `{ disconnect: true }` (to-one) and
 * `{ connect, disconnect, set }` lists (to-many); foreign keys can also be set directly.
 */
import type { DataModel, Model, ScalarField } from '../models/data-model.ts'
import { modelNames } from '../models/naming.ts'
import { fieldBaseType } from './model-sdl.ts'

export const refInput = (model: string) => `${model}RefInput`
export const toOneInput = (model: string) => `${model}ToOneInput`
export const toManyInput = (model: string) => `${model}ToManyInput`

/** Fields a client may write: not `@updatedAt`, and not a generated id. */
export const writableScalars = (model: Model) =>
  model.scalars.filter((field) => !field.isUpdatedAt && !(field.isId && field.hasDefault))

/** Whether a create must name this scalar: required, no default, and not a foreign key (a relation input can set it). */
function requiredOnCreate(field: ScalarField): boolean {
  if (!field.isRequired || field.hasDefault || field.isList) return false
  return field.isId || !field.holdsId
}

function scalarInputType(field: ScalarField, required: boolean): string {
  const base = fieldBaseType(field)
  const type = field.isList ? `[${base}!]` : base
  return required ? `${type}!` : type
}

/** Whether the model has anything a client may write (a model of only generated fields has not). */
export const hasWritableFields = (model: Model) => writableScalars(model).length > 0 || model.relations.length > 0

function writeInput(model: Model, mode: 'create' | 'update'): string {
  const names = modelNames(model.name)
  const scalars = writableScalars(model).map(
    (field) => `  ${field.name}: ${scalarInputType(field, mode === 'create' && requiredOnCreate(field))}`,
  )
  const relations = model.relations.map(
    (field) => `  ${field.name}: ${field.isList ? toManyInput(field.type) : toOneInput(field.type)}`,
  )
  const name = mode === 'create' ? names.createInput : names.updateInput
  const doc =
    mode === 'create'
      ? `The fields of a new ${model.name}.`
      : `The fields of a ${model.name} to change; the others keep their value.`
  return `"""${doc}"""\ninput ${name} {\n${[...scalars, ...relations].join('\n')}\n}`
}

/** The relation inputs some write input uses to point at `model` (only those, to keep the schema lean). */
function relationInputs(model: Model): string {
  const pointers = model.pointedAtBy
  const toOne = pointers.some((field) => !field.isList)
  const toMany = pointers.some((field) => field.isList)
  if (!toOne && !toMany) return ''
  return [
    `"""Names an existing ${model.name}."""\ninput ${refInput(model.name)} {\n  id: ID!\n}`,
    ...(toOne
      ? [
          `"""Sets a to-one relation to a ${model.name}: connect one, or disconnect it (optional relations, updates only)."""\ninput ${toOneInput(model.name)} {\n  connect: ${refInput(model.name)}\n  disconnect: Boolean\n}`,
        ]
      : []),
    ...(toMany
      ? [
          `"""Changes a to-many relation to ${model.name} records: connect and disconnect some, or set the whole list (updates only for disconnect and set)."""\ninput ${toManyInput(model.name)} {\n  connect: [${refInput(model.name)}!]\n  disconnect: [${refInput(model.name)}!]\n  set: [${refInput(model.name)}!]\n}`,
        ]
      : []),
  ].join('\n\n')
}

function mutations(model: Model): string {
  const names = modelNames(model.name)
  // A model with nothing to write is created from its defaults alone, and cannot be updated.
  const writable = hasWritableFields(model)
  return [
    'type Mutation {',
    `  """Creates a ${model.name}; subscribers of ${names.events} receive CREATED (and ADDED_TO on related records)."""`,
    writable ? `  ${names.create}(data: ${names.createInput}!): ${model.name}!` : `  ${names.create}: ${model.name}!`,
    ...(writable
      ? [
          `  """Updates a ${model.name}; NOT_FOUND when there is none with this id."""`,
          `  ${names.update}(id: ID!, data: ${names.updateInput}!): ${model.name}!`,
        ]
      : []),
    `  """Deletes a ${model.name} and returns it as it was; NOT_FOUND when there is none with this id."""`,
    `  ${names.delete}(id: ID!): ${model.name}!`,
    '}',
  ].join('\n')
}

export function modelWriteTypeDefs(dataModel: DataModel): string {
  return dataModel.models
    .flatMap((model) => [
      relationInputs(model),
      ...(hasWritableFields(model) ? [writeInput(model, 'create'), writeInput(model, 'update')] : []),
      mutations(model),
    ])
    .filter(Boolean)
    .join('\n\n')
}
