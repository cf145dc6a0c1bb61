/**
 * Turns a GraphQL `WhereInput` into the Prisma `where` it stands for: `ID` values become the
 * Prisma type of the field (Int ids arrive as strings). The shape is Prisma's already, so the
 * same object can also be evaluated in memory against an event's record.
 */
import type { Model } from './data-model.ts'
import { parseId } from './ids.ts'

export type Where = Record<string, unknown>

/** A field condition written as a filter object (`{ equals: 1 }`) rather than a bare value (`1`), as Prisma allows. */
export const isFilterObject = (value: unknown): value is Where =>
  typeof value === 'object' &&
  value !== null &&
  !(value instanceof Date) &&
  !Array.isArray(value) &&
  !(value instanceof Uint8Array)

export function toPrismaWhere(model: Model, where: Where | null | undefined): Where | undefined {
  if (!where) return undefined
  const result: Where = {}
  for (const [key, value] of Object.entries(where)) {
    if (value === undefined) continue
    if (key === 'AND' || key === 'OR' || key === 'NOT') {
      result[key] = (value as Where[]).map((w) => toPrismaWhere(model, w))
      continue
    }
    const field = model.field(key)
    if (!field || field.kind === 'object' || !field.holdsId || value === null) {
      result[key] = value
      continue
    }
    const type = field.heldIdType!
    const filter: Where = {}
    for (const [op, operand] of Object.entries(isFilterObject(value) ? value : { equals: value })) {
      const convert = (v: unknown) => (v === null ? null : parseId(type, v, `${model.name}.${key}`))
      filter[op] = Array.isArray(operand) ? operand.map(convert) : convert(operand)
    }
    result[key] = filter
  }
  return result
}
