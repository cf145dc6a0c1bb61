/**
 * Turns a GraphQL create/update input into Prisma's `data`, in Prisma's "unchecked" form:
 * ids become their Prisma type, a to-one `connect`/`disconnect` on the side holding the foreign
 * key becomes that key, and to-many changes become nested `connect`/`disconnect`/`set`.
 */
import { badInput } from '../errors.ts'
import { findModel, heldIdType, holdsId, idType, relationFields, scalarFields } from './fields.ts'
import { parseId } from './ids.ts'
import type { DataModelMeta, FieldMeta, ModelMeta } from './meta.ts'

type Data = Record<string, unknown>
type Ref = { id: unknown }

export type WriteMode = 'create' | 'update'

function scalarValue(dataModel: DataModelMeta, model: ModelMeta, field: FieldMeta, value: unknown): unknown {
  if (value === null) {
    if (field.isRequired) throw badInput(`${model.name}.${field.name} cannot be null`)
    return null
  }
  if (!holdsId(dataModel, model, field)) return value
  return parseId(heldIdType(dataModel, model, field), value, `${model.name}.${field.name}`)
}

function toOne(dataModel: DataModelMeta, model: ModelMeta, relation: FieldMeta, input: { connect?: Ref | null; disconnect?: boolean | null }, mode: WriteMode, data: Data): void {
  const target = findModel(dataModel, relation.type)
  const what = `${model.name}.${relation.name}`
  if (input.connect && input.disconnect) throw badInput(`${what}: give connect or disconnect, not both`)
  if (input.disconnect && (mode === 'create' || relation.isRequired)) {
    throw badInput(mode === 'create' ? `${what}: disconnect applies to updates only` : `${what} is required and cannot be disconnected`)
  }
  const id = input.connect ? parseId(idType(target), input.connect.id, `${what}.connect.id`) : undefined
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

function toMany(dataModel: DataModelMeta, model: ModelMeta, relation: FieldMeta, input: Record<string, Ref[] | null | undefined>, mode: WriteMode): Data | undefined {
  const target = findModel(dataModel, relation.type)
  const result: Data = {}
  for (const op of ['connect', 'disconnect', 'set'] as const) {
    const refs = input[op]
    if (refs == null) continue
    if (mode === 'create' && op !== 'connect') throw badInput(`${model.name}.${relation.name}: ${op} applies to updates only`)
    result[op] = refs.map((ref) => ({ [target.idField]: parseId(idType(target), ref.id, `${model.name}.${relation.name}.${op}.id`) }))
  }
  return Object.keys(result).length ? result : undefined
}

export function toPrismaData(dataModel: DataModelMeta, model: ModelMeta, input: Data, mode: WriteMode): Data {
  const data: Data = {}
  for (const field of scalarFields(model)) {
    if (input[field.name] !== undefined) data[field.name] = scalarValue(dataModel, model, field, input[field.name])
  }
  for (const relation of relationFields(model)) {
    const value = input[relation.name] as Data | null | undefined
    if (value == null) continue
    if (relation.isList) {
      const nested = toMany(dataModel, model, relation, value as Record<string, Ref[]>, mode)
      if (nested) data[relation.name] = nested
    } else {
      toOne(dataModel, model, relation, value, mode, data)
    }
  }
  if (mode === 'create') {
    for (const relation of relationFields(model)) {
      const [foreignKey] = relation.relationFromFields ?? []
      if (foreignKey && relation.isRequired && data[foreignKey] === undefined) {
        throw badInput(`${model.name}.${relation.name} is required: give ${foreignKey} or ${relation.name}: { connect: { id } }`)
      }
    }
  }
  return data
}
