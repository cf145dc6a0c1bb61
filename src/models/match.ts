/**
 * Evaluates a Prisma-style `where` (as `toPrismaWhere` produces it) against one record in
 * memory, for subscription filters and row policies. Semantics follow SQL as Prisma uses it:
 * comparisons with a null field are false, `not` and `notIn` do not match null, `OR: []` is false.
 * String operators are case-sensitive (PostgreSQL's default; SQLite's LIKE ignores ASCII case).
 */
import { comparableAs } from './values.ts'
import { isFilterObject, type Where } from './where.ts'

type FieldFilter = Record<string, unknown>

function matchField(value: unknown, filter: FieldFilter): boolean {
  for (const [op, operand] of Object.entries(filter)) {
    if (operand === undefined) continue
    if (!matchOperator(value, op, operand)) return false
  }
  return true
}

function matchOperator(value: unknown, op: string, operand: unknown): boolean {
  if (op === 'equals')
    return operand === null
      ? value == null
      : value != null && comparableAs(value, operand) === comparableAs(operand, operand)
  if (op === 'not')
    return operand === null
      ? value != null
      : value != null && comparableAs(value, operand) !== comparableAs(operand, operand)
  if (value == null) return false
  if (op === 'in' || op === 'notIn') {
    const list = (operand as unknown[]) ?? []
    const found = list.some((item) => comparableAs(value, item) === comparableAs(item, item))
    return op === 'in' ? found : !found
  }
  if (op === 'contains' || op === 'startsWith' || op === 'endsWith') {
    if (typeof value !== 'string' || typeof operand !== 'string') return false
    return op === 'contains'
      ? value.includes(operand)
      : op === 'startsWith'
        ? value.startsWith(operand)
        : value.endsWith(operand)
  }
  const left = comparableAs(value, operand) as number
  const right = comparableAs(operand, operand) as number
  switch (op) {
    case 'lt':
      return left < right
    case 'lte':
      return left <= right
    case 'gt':
      return left > right
    case 'gte':
      return left >= right
    default:
      throw new Error(`unsupported filter operator ${op}`)
  }
}

/** Whether `record` satisfies `where`; a missing record never does. */
export function matchesWhere(where: Where, record: Record<string, unknown> | null | undefined): boolean {
  if (!record) return false
  for (const [key, condition] of Object.entries(where)) {
    if (condition === undefined) continue
    if (key === 'AND') {
      if (!(condition as Where[]).every((w) => matchesWhere(w, record))) return false
    } else if (key === 'OR') {
      if (!(condition as Where[]).some((w) => matchesWhere(w, record))) return false
    } else if (key === 'NOT') {
      if ((condition as Where[]).some((w) => matchesWhere(w, record))) return false
    } else if (!isFilterObject(condition)) {
      // Prisma's shorthand: a bare value means equals.
      if (!matchOperator(record[key], 'equals', condition)) return false
    } else if (!matchField(record[key], condition as FieldFilter)) {
      return false
    }
  }
  return true
}
