/**
 * Turns a GraphQL create/update input into Prisma's `data`, in Prisma's "unchecked" form:
 * ids become their Prisma type, a to-one `connect`/`disconnect` on the side holding the foreign
 * key becomes that key, and to-many changes become nested `connect`/`disconnect`/`set`.
 */
import { badInput } from '../errors.ts'
import type { Model, RelationField, ScalarField } from './data-model.ts'
import { parseId } from './ids.ts'

type Data = Record<string, unknown>
type Ref = { id: unknown }

export type WriteMode = 'create' | 'update'

function scalarValue(model: Model, field: ScalarField, value: unknown): unknown {
  if (value === null) {
    if (field.isRequired) throw badInput(`${model.name}.${field.name} cannot be null`)
    return null
  }
  if (!field.holdsId) return value
  return parseId(field.heldIdType!, value, `${model.name}.${field.name}`)
}

function toOne(
  model: Model,
  relation: RelationField,
  input: { connect?: Ref | null; disconnect?: boolean | null },
  mode: WriteMode,
  data: Data,
): void {
  const target = relation.target
  const what = `${model.name}.${relation.name}`
  if (input.connect && input.disconnect) throw badInput(`${what}: give connect or disconnect, not both`)
  if (input.disconnect && (mode === 'create' || relation.isRequired)) {
    throw badInput(
      mode === 'create'
        ? `${what}: disconnect applies to updates only`
        : `${what} is required and cannot be disconnected`,
    )
  }
  const id = input.connect ? parseId(target.idType, input.connect.id, `${what}.connect.id`) : undefined
  const [foreignKey] = relation.relationFromFields ?? []
  if (foreignKey) {
    if (foreignKey in data) throw badInput(`${what}: give ${foreignKey} or ${relation.name}, not both`)
    if (id !== undefined) data[foreignKey] = id
    else if (input.disconnect) data[foreignKey] = null
    return
  }
  if (id !== undefined) data[relation.name] = { connect: { [target.idField]: id } }
  else if (input.disconnect) data[relation.name] = { disconnect: true }
}

function toMany(
  model: Model,
  relation: RelationField,
  input: Record<string, Ref[] | null | undefined>,
  mode: WriteMode,
): Data | undefined {
  const target = relation.target
  const result: Data = {}
  for (const op of ['connect', 'disconnect', 'set'] as const) {
    const refs = input[op]
    if (refs == null) continue
    if (mode === 'create' && op !== 'connect')
      throw badInput(`${model.name}.${relation.name}: ${op} applies to updates only`)
    result[op] = refs.map((ref) => ({
      [target.idField]: parseId(target.idType, ref.id, `${model.name}.${relation.name}.${op}.id`),
    }))
  }
  return Object.keys(result).length ? result : undefined
}

export function toPrismaData(model: Model, input: Data, mode: WriteMode): Data {
  const data: Data = {}
  for (const field of model.scalars) {
    if (input[field.name] !== undefined) data[field.name] = scalarValue(model, field, input[field.name])
  }
  for (const relation of model.relations) {
    const value = input[relation.name] as Data | null | undefined
    if (value == null) continue
    if (relation.isList) {
      const nested = toMany(model, relation, value as Record<string, Ref[]>, mode)
      if (nested) data[relation.name] = nested
    } else {
      toOne(model, relation, value, mode, data)
    }
  }
  if (mode === 'create') {
    for (const relation of model.relations) {
      const [foreignKey] = relation.relationFromFields ?? []
      if (foreignKey && relation.isRequired && data[foreignKey] === undefined) {
        throw badInput(
          `${model.name}.${relation.name} is required: give ${foreignKey} or ${relation.name}: { connect: { id } }`,
        )
      }
    }
  }
  return data
}
