/**
 * What mizzen knows about the Prisma data model: enough to build the GraphQL schema,
 * evaluate subscription filters and find association changes. Produced from Prisma's DMMF
 * by the `mizzen` generator in `prisma/schema.prisma` (see `prisma/generator.ts`).
 */

/** A Prisma scalar or enum field, or a relation field (`kind: 'object'`). */
export interface FieldMeta {
  readonly name: string
  /** The column name (`@map`), when it differs from `name`. */
  readonly dbName?: string
  readonly kind: 'scalar' | 'enum' | 'object'
  /** Prisma type: `Int`, `String`, `DateTime`, … an enum name, or the related model's name. */
  readonly type: string
  readonly isList: boolean
  readonly isRequired: boolean
  readonly isId: boolean
  readonly isUnique: boolean
  readonly hasDefault: boolean
  readonly isUpdatedAt: boolean
  /** Relation fields: the name pairing both sides of the relation. */
  readonly relationName?: string
  /** Relation fields on the side that holds the foreign key: the local key fields. */
  readonly relationFromFields?: readonly string[]
  /** Relation fields on the side that holds the foreign key: the referenced fields. */
  readonly relationToFields?: readonly string[]
}

export interface ModelMeta {
  readonly name: string
  /** The table name (`@@map`), when it differs from `name`. */
  readonly dbName?: string
  /** The single `@id` field; models with a composite id are rejected by the generator. */
  readonly idField: string
  readonly fields: readonly FieldMeta[]
}

export interface EnumMeta {
  readonly name: string
  readonly values: readonly string[]
}

export interface DataModelMeta {
  readonly models: readonly ModelMeta[]
  readonly enums: readonly EnumMeta[]
}
