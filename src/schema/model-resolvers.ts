/**
 * Resolvers for the generated model queries and relation fields. One set of functions serves
 * every model: each is parameterised by the model's metadata, never written per model.
 */
import type { GatewayContext } from '../context.ts'
import { badInput, forbidden } from '../errors.ts'
import type { DataModel, Model, RelationField } from '../models/data-model.ts'
import { parseId } from '../models/ids.ts'
import { lowerFirst, modelNames } from '../models/naming.ts'
import { matchesWhere } from '../models/match.ts'
import { toPrismaWhere, type Where } from '../models/where.ts'

/** The largest page a list query returns; bigger `take` values are refused. */
export const MAX_TAKE = 1000

type Row = Record<string, unknown>
type Resolver = (parent: Row, args: Record<string, unknown>, context: GatewayContext) => unknown

/** The subset of a Prisma model delegate that these resolvers use, for any model. */
export interface ModelDelegate {
  findUnique(args: { where: Row }): Promise<Row | null> & Record<string, (args?: Row) => Promise<unknown>>
  findMany(args: Row): Promise<Row[]>
}

export const delegateOf = (context: GatewayContext, model: string) =>
  (context.prisma as unknown as Record<string, ModelDelegate>)[lowerFirst(model)]!

export interface ListArgs {
  where?: Where | null
  orderBy?: Row[] | null
  take?: number | null
  skip?: number | null
}

/** GraphQL list arguments as Prisma `findMany` arguments, with the page bounds checked. */
export function toFindManyArgs(model: Model, args: ListArgs): Row {
  if (args.skip != null && args.skip < 0) throw badInput(`skip must be 0 or more, got ${args.skip}`)
  if (args.take != null && (args.take < 0 || args.take > MAX_TAKE))
    throw badInput(`take must be between 0 and ${MAX_TAKE}, got ${args.take}`)
  for (const order of args.orderBy ?? []) {
    if (Object.keys(order).length !== 1)
      throw badInput(`each ${modelNames(model.name).orderBy} must name exactly one field, got ${JSON.stringify(order)}`)
  }
  const result: Row = {}
  const where = toPrismaWhere(model, args.where)
  if (where) result.where = where
  if (args.orderBy?.length) result.orderBy = args.orderBy
  if (args.take != null) result.take = args.take
  if (args.skip != null) result.skip = args.skip
  return result
}

/** `where` restricted to the rows the viewer may see. */
export function visibleWhere(context: GatewayContext, model: Model, where: Where | undefined): Where | undefined {
  const filter = context.access.rowFilter(model)
  if (!filter) return where
  return where ? { AND: [where, filter] } : filter
}

/** A to-one related record, or FORBIDDEN when the viewer may not see it. */
function visibleRecord(context: GatewayContext, model: Model, record: Row | null): Row | null {
  const filter = context.access.rowFilter(model)
  if (!record || !filter || matchesWhere(filter, record)) return record
  throw forbidden(`not allowed to read ${model.name} ${String(record[model.idField])}`)
}

function relationResolver(model: Model, relation: RelationField): Resolver {
  const target = relation.target
  const from = relation.relationFromFields
  const to = relation.relationToFields
  if (!relation.isList && from?.length && to?.length) {
    // This side holds the foreign key: look the target up by it, with no join.
    return async (parent, _args, context) => {
      context.access.assertRead(target.name)
      const key = Object.fromEntries(to.map((field, i) => [field, parent[from[i]!]]))
      if (Object.values(key).some((value) => value == null)) return null
      return visibleRecord(context, target, await delegateOf(context, target.name).findUnique({ where: key }))
    }
  }
  return async (parent, args, context) => {
    context.access.assertRead(target.name)
    const fluent = delegateOf(context, model.name).findUnique({ where: { [model.idField]: parent[model.idField] } })
    if (!relation.isList)
      return visibleRecord(context, target, ((await fluent[relation.name]!()) as Row | null) ?? null)
    const findArgs = toFindManyArgs(target, args)
    const where = visibleWhere(context, target, findArgs.where as Where | undefined)
    return (await fluent[relation.name]!({ ...findArgs, ...(where ? { where } : {}) })) ?? []
  }
}

export function modelResolvers(dataModel: DataModel): Record<string, Record<string, Resolver>> {
  const resolvers: Record<string, Record<string, Resolver>> = { Query: {} }
  for (const model of dataModel.models) {
    const names = modelNames(model.name)
    resolvers.Query![names.one] = async (_parent, args, context) => {
      context.access.assertRead(model.name)
      const byId = { [model.idField]: parseId(model.idType, args.id, `${model.name} id`) }
      const [record] = await delegateOf(context, model.name).findMany({
        where: visibleWhere(context, model, byId),
        take: 1,
      })
      return record ?? null
    }
    resolvers.Query![names.many] = (_parent, args, context) => {
      context.access.assertRead(model.name)
      const findArgs = toFindManyArgs(model, args as ListArgs)
      const where = visibleWhere(context, model, findArgs.where as Where | undefined)
      return delegateOf(context, model.name).findMany({ ...findArgs, ...(where ? { where } : {}) })
    }
    resolvers[model.name] = Object.fromEntries(
      model.relations.map((relation) => [relation.name, relationResolver(model, relation)]),
    )
  }
  return resolvers
}
