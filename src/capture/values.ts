/**
 * Column values as the replication stream carries them (PostgreSQL's text output) turned into
 * what Prisma returns for the field's type, so that a captured event carries the same values as
 * the extension's: Int and Float numbers, BigInt bigints, Decimal Prisma Decimals, Boolean,
 * DateTime Dates (a `timestamp` without time zone read as UTC, as Prisma does), Json parsed,
 * Bytes Uint8Arrays, String and enums strings, and lists of any of them.
 */
import { Decimal } from '@prisma/client/runtime/client'
import type { ScalarField } from '../models/data-model.ts'

function dateTime(text: string): Date {
  // A time of day alone (@db.Time): Prisma gives it on 1970-01-01, UTC.
  if (/^\d{2}:\d{2}/.test(text)) return new Date(`1970-01-01T${text.replace(/[+-]\d{2}(:?\d{2})?$/, '')}Z`)
  let iso = text.replace(' ', 'T')
  // A date alone (@db.Date), or a timestamp without zone: UTC. With a zone: `+05` → `+05:00`.
  if (/^\d{4}-\d{2}-\d{2}$/.test(iso)) iso += 'T00:00:00Z'
  else if (/[+-]\d{2}$/.test(iso)) iso += ':00'
  else if (!/(Z|[+-]\d{2}:?\d{2})$/.test(iso)) iso += 'Z'
  return new Date(iso)
}

function bytes(text: string): Uint8Array {
  if (text.startsWith('\\x')) return new Uint8Array(Buffer.from(text.slice(2), 'hex'))
  // bytea_output = escape: octal escapes and doubled backslashes.
  const out: number[] = []
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && text[i + 1] === '\\') {
      out.push(92)
      i++
    } else if (text[i] === '\\') {
      out.push(Number.parseInt(text.slice(i + 1, i + 4), 8))
      i += 3
    } else out.push(text.charCodeAt(i))
  }
  return new Uint8Array(out)
}

/** PostgreSQL's Decimal text with the trailing zeros of its scale, as Prisma's Decimal prints it. */
const decimal = (text: string) => new Decimal(text)

/** One value of type `type` (a Prisma scalar name, or an enum's). */
export function scalarValue(type: string, text: string): unknown {
  switch (type) {
    case 'Int':
    case 'Float':
      return Number(text)
    case 'BigInt':
      return BigInt(text)
    case 'Decimal':
      return decimal(text)
    case 'Boolean':
      return text === 't' || text === 'true'
    case 'DateTime':
      return dateTime(text)
    case 'Json':
      return JSON.parse(text)
    case 'Bytes':
      return bytes(text)
    default:
      // String, enums, and types Prisma reads as strings.
      return text
  }
}

/** The elements of an array literal (`{a,"b c",NULL}`), one dimension; null for NULL. */
export function arrayElements(text: string): (string | null)[] {
  const inner = text.replace(/^\{/, '').replace(/\}$/, '')
  const elements: (string | null)[] = []
  if (!inner.length) return elements
  let i = 0
  while (i <= inner.length) {
    if (inner[i] === '"') {
      let value = ''
      i++
      while (i < inner.length && inner[i] !== '"') {
        if (inner[i] === '\\') i++
        value += inner[i]
        i++
      }
      elements.push(value)
      i += 2 // the closing quote and the comma
    } else {
      const end = inner.indexOf(',', i)
      const raw = inner.slice(i, end < 0 ? inner.length : end)
      elements.push(raw === 'NULL' ? null : raw)
      i = end < 0 ? inner.length + 1 : end + 1
    }
  }
  return elements
}

/** The value of `field` from a column's text (null stays null). */
export function fieldValue(field: ScalarField, text: string | null): unknown {
  if (text === null) return null
  if (field.isList)
    return arrayElements(text).map((element) => (element === null ? null : scalarValue(field.type, element)))
  return scalarValue(field.type, text)
}
