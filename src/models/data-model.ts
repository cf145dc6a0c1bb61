/**
 * The data model, linked: the generated `DataModelMeta` (plain JSON, names pointing at names)
 * turned once into objects that point at each other. A relation field holds its target model and
 * the field on the other side; a scalar field knows whether it holds a record id and of which
 * type; a model knows its id field, its scalars, its relations and the relations pointing at it.
 * The schema builder, the resolvers and the realtime extension walk these objects and never look
 * a model up by name, except where a name arrives from outside (a Prisma query hook, a bus event).
 */
import type { DataModelMeta, EnumMeta, FieldMeta, ModelMeta } from './meta.ts'

interface FieldBase extends FieldMeta {
  /** The model the field belongs to. */
  readonly model: Model
}

/** A scalar or enum field. */
export interface ScalarField extends FieldBase {
  readonly kind: 'scalar' | 'enum'
  /**
   * Whether the field holds a record id: the model's `@id`, or a foreign key that references the
   * `@id` of another model. GraphQL exposes those as `ID`, whatever their Prisma type.
   */
  readonly holdsId: boolean
  /** For a field that holds an id, the Prisma type of that id (`Int`, `String`, `BigInt`): its own for the `@id`, the referenced model's for a foreign key. */
  readonly heldIdType: string | undefined
}

/** A relation field. */
export interface RelationField extends FieldBase {
  readonly kind: 'object'
  /** The model the relation leads to (`type` names it). */
  readonly target: Model
  /** The field on the target model that is the other side of this relation. */
  readonly back: RelationField | undefined
  /** Lists on both sides and no foreign key: Prisma's implicit many-to-many join table. */
  readonly isManyToMany: boolean
}

export type Field = ScalarField | RelationField

export interface Model extends Omit<ModelMeta, 'fields'> {
  /** The single `@id` field (its name is `idField`). */
  readonly id: ScalarField
  /** The Prisma type of the id (`Int`, `String`, `BigInt`), for converting GraphQL `ID` input. */
  readonly idType: string
  readonly fields: readonly Field[]
  readonly scalars: readonly ScalarField[]
  readonly relations: readonly RelationField[]
  /** The relation fields of every model (this one included) that lead to this model. */
  readonly pointedAtBy: readonly RelationField[]
  /** The field called `name`, if the model has one. */
  field(name: string): Field | undefined
}

export interface DataModel {
  readonly models: readonly Model[]
  readonly enums: readonly EnumMeta[]
  /**
   * The model called `name`, for names that arrive from outside (a Prisma query hook, a bus
   * event). Throws on a name the data model does not have.
   */
  model(name: string): Model
}

const linked = new WeakSet<DataModel>()

/** Whether `value` is already a linked data model (as opposed to generated metadata). */
export function isLinked(value: DataModelMeta | DataModel): value is DataModel {
  return linked.has(value as DataModel)
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * Links generated metadata into a `DataModel`. Given a `DataModel`, returns it as it is, so
 * entry points may accept either.
 * @throws when a relation names a model that is not in `meta`, or a model lacks its `@id` field.
 */
export function linkDataModel(meta: DataModelMeta | DataModel): DataModel {
  if (isLinked(meta)) return meta
  const byName = new Map<string, Mutable<Model>>()

  // First pass: every model and field object, so the second pass can point at any of them.
  for (const modelMeta of meta.models) {
    const fieldsByName = new Map<string, Mutable<Field>>()
    const model = {
      name: modelMeta.name,
      ...(modelMeta.dbName ? { dbName: modelMeta.dbName } : {}),
      idField: modelMeta.idField,
      fields: [],
      scalars: [],
      relations: [],
      pointedAtBy: [],
      field: (name: string) => fieldsByName.get(name),
    } as unknown as Mutable<Model>
    const fields = modelMeta.fields.map((fieldMeta) => {
      const field = { ...fieldMeta, model } as Mutable<Field>
      fieldsByName.set(field.name, field)
      return field
    })
    model.fields = fields
    model.scalars = fields.filter((f): f is Mutable<ScalarField> => f.kind !== 'object')
    model.relations = fields.filter((f): f is Mutable<RelationField> => f.kind === 'object')
    const id = fieldsByName.get(modelMeta.idField)
    if (!id || id.kind === 'object')
      throw new Error(`mizzen: model ${modelMeta.name} has no scalar @id field "${modelMeta.idField}"`)
    model.id = id
    model.idType = id.type
    byName.set(model.name, model)
  }

  const modelNamed = (name: string, from: string) => {
    const model = byName.get(name)
    if (!model) throw new Error(`mizzen: ${from} refers to model ${name}, which the data model does not have`)
    return model
  }

  // Second pass: relations point at their targets and at each other.
  for (const model of byName.values()) {
    for (const relation of model.relations as Mutable<RelationField>[]) {
      relation.target = modelNamed(relation.type, `${model.name}.${relation.name}`)
      ;(relation.target.pointedAtBy as RelationField[]).push(relation)
      const candidates = relation.target.relations.filter((f) => f.relationName === relation.relationName)
      relation.back = candidates.length === 1 ? candidates[0] : candidates.find((f) => f.name !== relation.name)
    }
  }
  for (const model of byName.values()) {
    for (const relation of model.relations as Mutable<RelationField>[]) {
      relation.isManyToMany = relation.isList && relation.back !== undefined && relation.back.isList
    }
    for (const field of model.scalars as Mutable<ScalarField>[]) {
      const heldIdType = field.isId ? field.type : referencedIdType(model, field)
      field.holdsId = field.kind === 'scalar' && heldIdType !== undefined
      field.heldIdType = field.holdsId ? heldIdType : undefined
    }
  }

  const dataModel: DataModel = {
    models: [...byName.values()],
    enums: meta.enums,
    model: (name) => modelNamed(name, 'a query or an event'),
  }
  linked.add(dataModel)
  return dataModel
}

/** The id type of the model a foreign key references, when `field` is one that references an `@id`. */
function referencedIdType(model: Model, field: Field): string | undefined {
  for (const relation of model.relations) {
    const at = relation.relationFromFields?.indexOf(field.name) ?? -1
    if (at >= 0 && relation.target.idField === relation.relationToFields?.[at]) return relation.target.idType
  }
  return undefined
}
