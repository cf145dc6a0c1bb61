/**
 * The wire format of bus messages between processes: JSON that keeps the types Prisma records
 * carry (Date, bigint, bytes), so a record read back from the bus compares and serialises like
 * the one that was published.
 */

type Tagged = { $date: string } | { $bigint: string } | { $bytes: string }

export function encode(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, encoded: unknown) {
    // `encoded` went through toJSON already (a Date is a string by now): look at the original.
    const original = this[key]
    if (original instanceof Date) return { $date: original.toISOString() }
    if (typeof original === 'bigint') return { $bigint: original.toString() }
    if (original instanceof Uint8Array) return { $bytes: Buffer.from(original).toString('base64') }
    return encoded
  })
}

export function decode(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return value
    const keys = Object.keys(value)
    if (keys.length !== 1) return value
    const tagged = value as Tagged
    if ('$date' in tagged) return new Date(tagged.$date)
    if ('$bigint' in tagged) return BigInt(tagged.$bigint)
    if ('$bytes' in tagged) return Buffer.from(tagged.$bytes, 'base64')
    return value
  })
}
