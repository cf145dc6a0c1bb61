/** Questions about the data model that the schema, the filters and the extension all ask. */
import type { DataModelMeta, FieldMeta, ModelMeta } from './meta.ts'

export const scalarFields = (model: ModelMeta) => model.fields.filter((f) => f.kind !== 'object')
export const relationFields = (model: ModelMeta) => model.fields.filter((f) => f.kind === 'object')

export function findModel(dataModel: DataModelMeta, name: string): ModelMeta {
  const model = dataModel.models.find((m) => m.name === name)
  if (!model) throw new Error(`unknown model ${name}`)
  return model
}

/**
 * A scalar field holding a record id: the model's `@id`, or a foreign key that references the
 * `@id` of another model. GraphQL exposes those as `ID`, whatever their Prisma type.
 */
export function holdsId(dataModel: DataModelMeta, model: ModelMeta, field: FieldMeta): boolean {
  if (field.kind !== 'scalar') return false
  if (field.isId) return true
  return relationFields(model).some((relation) => {
    const at = relation.relationFromFields?.indexOf(field.name) ?? -1
    if (at < 0) return false
    return findModel(dataModel, relation.type).idField === relation.relationToFields?.[at]
  })
}

/** The Prisma type of the id a field holds (`Int`, `String`, `BigInt`), for converting `ID` input. */
export function idType(model: ModelMeta): string {
  return model.fields.find((f) => f.name === model.idField)!.type
}

/** The Prisma type of the id an id-holding field holds: its own type for the `@id`, the referenced model's id type for a foreign key. */
export function heldIdType(dataModel: DataModelMeta, model: ModelMeta, field: FieldMeta): string {
  if (field.isId) return field.type
  const relation = relationFields(model).find((r) => r.relationFromFields?.includes(field.name))!
  return idType(findModel(dataModel, relation.type))
}
