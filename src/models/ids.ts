/**
 * GraphQL `ID`s are strings; Prisma ids may be Int, BigInt or String. These convert between them
 * and reject malformed ids with a BAD_USER_INPUT error that names the id and the model.
 */
import { badInput } from '../errors.ts'

export type PrismaId = number | bigint | string

export function parseId(prismaType: string, value: unknown, what: string): PrismaId {
  const text = typeof value === 'number' || typeof value === 'bigint' ? String(value) : value
  if (typeof text !== 'string') throw badInput(`${what}: expected an id, got ${JSON.stringify(value)}`)
  if (prismaType === 'String') return text
  if (!/^-?\d+$/.test(text)) throw badInput(`${what}: "${text}" is not a valid id (expected an integer)`)
  if (prismaType === 'BigInt') return BigInt(text)
  const id = Number(text)
  if (!Number.isSafeInteger(id) || id > 2 ** 31 - 1 || id < -(2 ** 31))
    throw badInput(`${what}: "${text}" is out of range for an Int id`)
  return id
}

/** The canonical string form of an id, as it appears in GraphQL and in event topics. */
export const idKey = (id: unknown): string => String(id)
