/**
 * Comparing and ordering Prisma field values the way the database does, for change detection
 * (`updatedFields`) and in-memory filters. Values may come straight from Prisma (Date, bigint,
 * Decimal, Uint8Array) or from a bus that carried them as JSON (ISO strings, numbers).
 */

/** A value reduced to something `===` and `<` compare correctly. */
export function comparable(value: unknown): unknown {
  if (value instanceof Date) return value.getTime()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (typeof value === 'object' && value !== null) {
    // Prisma's Decimal and other value objects print their exact value.
    if (typeof (value as { toFixed?: unknown }).toFixed === 'function') return String(value)
    return JSON.stringify(value)
  }
  return value
}

/** `comparable`, reading ISO strings as dates when the other side is a date. */
export function comparableAs(value: unknown, like: unknown): unknown {
  if (like instanceof Date && typeof value === 'string') return new Date(value).getTime()
  if (typeof like === 'bigint' && (typeof value === 'string' || typeof value === 'number')) return BigInt(value)
  return comparable(value)
}

export const sameValue = (a: unknown, b: unknown): boolean => comparable(a) === comparable(b)
