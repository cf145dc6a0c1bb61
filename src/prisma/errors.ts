/**
 * Prisma's errors as client errors with stable codes. Errors that are not the client's fault
 * are returned unchanged, for Yoga to mask.
 */
import { ErrorCode, MizzenError } from '../errors.ts'

interface KnownRequestError {
  name: string
  code: string
  message: string
  meta?: Record<string, unknown>
}

const isKnownRequestError = (error: unknown): error is KnownRequestError =>
  error instanceof Error && error.name === 'PrismaClientKnownRequestError' && typeof (error as { code?: unknown }).code === 'string'

/** The fields of a violated unique constraint, where Prisma or its driver adapter says. */
function constraintFields(meta: Record<string, unknown> | undefined): string[] {
  const target = meta?.target
  if (Array.isArray(target)) return target.map(String)
  const cause = (meta?.driverAdapterError as { cause?: { constraint?: { fields?: unknown; index?: unknown }; table?: unknown } } | undefined)?.cause
  const fields = cause?.constraint?.fields
  if (Array.isArray(fields)) return fields.map(String)
  // PostgreSQL names the index; Prisma names unique indexes <Table>_<field>_key.
  const index = cause?.constraint?.index
  const match = typeof index === 'string' && typeof cause?.table === 'string' ? new RegExp(`^${cause.table}_(.+)_key$`).exec(index) : null
  return match ? [match[1]!] : []
}

export function toClientError(error: unknown, model: string): unknown {
  if (error instanceof Error && error.name === 'PrismaClientValidationError') {
    const lines = error.message.trim().split('\n')
    return new MizzenError(ErrorCode.BadUserInput, `${model}: ${lines[lines.length - 1]}`)
  }
  if (!isKnownRequestError(error)) return error
  switch (error.code) {
    case 'P2002': {
      const fields = constraintFields(error.meta)
      return new MizzenError(ErrorCode.Conflict, `a ${model} with this ${fields.join(', ') || 'unique value'} already exists`, fields.length ? { fields } : {})
    }
    case 'P2003':
      return new MizzenError(ErrorCode.BadUserInput, `${model}: a related record does not exist`)
    case 'P2025':
      return new MizzenError(ErrorCode.NotFound, `${model}: the record to change does not exist`)
    default:
      return error
  }
}
