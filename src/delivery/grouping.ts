/**
 * Group keys (docs/architecture.md §6): subscriptions share a group, and so every result, when they run the
 * same document with the same variables, their selections take the same things from their
 * viewers, and their viewers read the same things through every model the selection set
 * reaches. Nothing in a key tells connections apart.
 */
import { getNamedType, TypeInfo, visit, visitWithTypeInfo, type DocumentNode, type GraphQLSchema } from 'graphql'
import type { PolicyView } from '../auth/access.ts'
import type { GatewayContext } from '../context.ts'
import type { DataModel } from '../models/data-model.ts'
import { groupContext } from './isolation.ts'

/** A value as key text: JSON with sorted object keys (so `{a,b}` and `{b,a}` agree), bigints marked. */
export function keyOf(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (typeof item === 'bigint') return `${item}n`
    if (
      item === null ||
      typeof item !== 'object' ||
      Array.isArray(item) ||
      item instanceof Date ||
      ArrayBuffer.isView(item)
    )
      return item
    const record = item as Record<string, unknown>
    return Object.fromEntries(
      Object.keys(record)
        .sort()
        .map((key) => [key, record[key]]),
    )
  })
}

const reachedTypes = new WeakMap<DocumentNode, Map<string, readonly string[]>>()

/**
 * The named output types of every field the operation selects (its fragments included): where
 * its resolvers can take the viewer into account. Cached per parsed document.
 */
export function typesReached(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
): readonly string[] {
  let byOperation = reachedTypes.get(document)
  if (!byOperation) reachedTypes.set(document, (byOperation = new Map()))
  const cached = byOperation.get(operationName ?? '')
  if (cached) return cached
  const types = new Set<string>()
  const typeInfo = new TypeInfo(schema)
  // Every operation and fragment of the document: at worst a larger key (less sharing), never a smaller one.
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field: () => {
        const type = typeInfo.getType()
        if (type) types.add(getNamedType(type).name)
      },
    }),
  )
  const reached = [...types].sort()
  byOperation.set(operationName ?? '', reached)
  return reached
}

/** The viewer's part of a group: its share of the group key, and the context the group's executions get. */
export interface ViewerPart {
  /** The viewer part of the group key. */
  readonly key: string
  /** The context of the group's executions, built from what `key` holds and nothing else; called once per group. */
  context(): Record<string, unknown>
}

/** A policy view as key text: the role, then per model (by name) whether it may be read and its row filter. */
function viewKey(view: PolicyView): string {
  const models = [...view.models]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, { read, filter }]) => (read ? [name, true, filter ?? null] : [name, false]))
  return keyOf([view.role ?? null, models])
}

/**
 * The viewer part of an operation (docs/architecture.md §6; docs/auth-and-policies.md, Groups and isolation): the
 * viewer's role and its policies for the models the selection set reaches (relations check
 * them as they resolve), and nothing when it reaches none (a room message is the same for
 * everyone). The group's executions get a context built from that part alone (`groupContext`).
 */
export function policyViewer(schema: GraphQLSchema, dataModel: DataModel) {
  const models = new Map(dataModel.models.map((model) => [model.name, model]))
  return (
    context: Record<string, unknown>,
    document: DocumentNode,
    operationName: string | null | undefined,
  ): ViewerPart => {
    const reached = typesReached(schema, document, operationName).flatMap((type) => models.get(type) ?? [])
    const gateway = context as unknown as GatewayContext
    const view = gateway.access.policyView(reached)
    return {
      key: reached.length ? viewKey(view) : '',
      context: () => groupContext(gateway, view) as unknown as Record<string, unknown>,
    }
  }
}
