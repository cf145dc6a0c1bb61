/**
 * The SDL of the model part of the schema, generated from Prisma metadata: for every model its
 * object type, `WhereInput`, `OrderByInput` and the `m(id)` / `ms(where, orderBy, take, skip)`
 * queries. Nothing here is per-model code: add a model to `prisma/schema.prisma`, regenerate,
 * and it appears.
 */
import type { DataModel, Field, Model, ScalarField } from '../models/data-model.ts'
import { modelNames } from '../models/naming.ts'
import { filterableScalars, graphqlScalar } from './scalars.ts'

const comparisons = (type: string) =>
  `  equals: ${type}\n  not: ${type}\n  in: [${type}!]\n  notIn: [${type}!]\n  lt: ${type}\n  lte: ${type}\n  gt: ${type}\n  gte: ${type}`

/** The GraphQL base types of every scalar and enum field of the data model. */
export function usedFieldTypes(dataModel: DataModel): Set<string> {
  return new Set(dataModel.models.flatMap((model) => model.scalars.map(fieldBaseType)))
}

/** The `<Type>Filter` inputs that some model's `WhereInput` uses. */
export function filterTypeDefs(dataModel: DataModel): string {
  const used = usedFieldTypes(dataModel)
  const scalarFilters = filterableScalars
    .filter((type) => used.has(type))
    .map((type) => {
      if (type === 'Boolean') return `input BooleanFilter {\n  equals: Boolean\n  not: Boolean\n}`
      const text = type === 'String' ? '\n  contains: String\n  startsWith: String\n  endsWith: String' : ''
      return `input ${type}Filter {\n${comparisons(type)}${text}\n}`
    })
  const enumFilters = dataModel.enums.map(
    (e) =>
      `input ${e.name}Filter {\n  equals: ${e.name}\n  not: ${e.name}\n  in: [${e.name}!]\n  notIn: [${e.name}!]\n}`,
  )
  return [
    '"""Sort direction, as in Prisma."""\nenum SortOrder {\n  asc\n  desc\n}',
    ...scalarFilters,
    ...enumFilters,
  ].join('\n\n')
}

/** The GraphQL type of a scalar or enum field, without list or non-null wrappers. */
export function fieldBaseType(field: ScalarField): string {
  if (field.kind === 'enum') return field.type
  if (field.holdsId) return 'ID'
  return graphqlScalar(field.type)
}

function wrap(base: string, field: Field): string {
  if (field.isList) return `[${base}!]!`
  return field.isRequired ? `${base}!` : base
}

/** The type of a field's filter in `WhereInput`, or undefined when the field can't be filtered. */
export function filterTypeOf(field: Field): string | undefined {
  if (field.isList || field.kind === 'object') return undefined
  if (field.kind === 'enum') return `${field.type}Filter`
  const base = fieldBaseType(field)
  return (filterableScalars as readonly string[]).includes(base) ? `${base}Filter` : undefined
}

const isOrderable = (field: Field) =>
  !field.isList && field.kind !== 'object' && !['Json', 'Bytes'].includes(field.type)

/** The arguments of a list of records: the `ms` query and to-many relation fields. */
export const listArguments = (model: string) => {
  const names = modelNames(model)
  return `where: ${names.where}, orderBy: [${names.orderBy}!], take: Int, skip: Int`
}

/** The SDL line of a scalar or enum field, typed as in the model's object type. */
export const scalarFieldLine = (field: ScalarField) => `  ${field.name}: ${wrap(fieldBaseType(field), field)}`

function objectType(model: Model): string {
  const lines = model.fields.map((field) => {
    if (field.kind === 'object') {
      return field.isList
        ? `  ${field.name}(${listArguments(field.type)}): [${field.type}!]!`
        : `  ${field.name}: ${wrap(field.type, field)}`
    }
    return scalarFieldLine(field)
  })
  return `"""A ${model.name} record (Prisma model ${model.name})."""\ntype ${model.name} {\n${lines.join('\n')}\n}`
}

function whereInput(model: Model): string {
  const { where } = modelNames(model.name)
  const lines = model.scalars.flatMap((field) => {
    const filter = filterTypeOf(field)
    return filter ? [`  ${field.name}: ${filter}`] : []
  })
  return [
    `"""Selects ${model.name} records by their scalar fields; conditions of one object all apply (AND)."""`,
    `input ${where} {\n  AND: [${where}!]\n  OR: [${where}!]\n  NOT: [${where}!]\n${lines.join('\n')}\n}`,
  ].join('\n')
}

function orderByInput(model: Model): string {
  const lines = model.scalars.filter(isOrderable).map((field) => `  ${field.name}: SortOrder`)
  return `input ${modelNames(model.name).orderBy} {\n${lines.join('\n')}\n}`
}

function queries(model: Model): string {
  const names = modelNames(model.name)
  return [
    'extend type Query {',
    `  """The ${model.name} with this id, or null."""`,
    `  ${names.one}(id: ID!): ${model.name}`,
    `  """${model.name} records, filtered, sorted and paged as Prisma's findMany does."""`,
    `  ${names.many}(${listArguments(model.name)}): [${model.name}!]!`,
    '}',
  ].join('\n')
}

export function enumTypeDefs(dataModel: DataModel): string {
  return dataModel.enums.map((e) => `enum ${e.name} {\n${e.values.map((v) => `  ${v}`).join('\n')}\n}`).join('\n\n')
}

export function modelTypeDefs(dataModel: DataModel): string {
  const perModel = dataModel.models.flatMap((model) => [
    objectType(model),
    whereInput(model),
    orderByInput(model),
    queries(model),
  ])
  return [enumTypeDefs(dataModel), filterTypeDefs(dataModel), ...perModel].filter(Boolean).join('\n\n')
}
