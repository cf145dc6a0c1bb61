/**
 * The errors of a model write (Prisma's) that are the client's fault, as client errors with
 * stable codes. The rest are returned unchanged: infrastructure failures become UNAVAILABLE in
 * `maskInfrastructureErrors`, anything else Yoga masks.
 */
import { badInput, conflict, notFound } from './client.ts'

interface KnownRequestError {
  name: string
  code: string
  message: string
  meta?: Record<string, unknown>
}

const isKnownRequestError = (error: unknown): error is KnownRequestError =>
  error instanceof Error &&
  error.name === 'PrismaClientKnownRequestError' &&
  typeof (error as { code?: unknown }).code === 'string'

/** The fields of a violated unique constraint, where Prisma or its driver adapter says. */
function constraintFields(meta: Record<string, unknown> | undefined): string[] {
  const target = meta?.target
  if (Array.isArray(target)) return target.map(String)
  const cause = (
    meta?.driverAdapterError as
      | { cause?: { constraint?: { fields?: unknown; index?: unknown }; table?: unknown } }
      | undefined
  )?.cause
  const fields = cause?.constraint?.fields
  if (Array.isArray(fields)) return fields.map(String)
  // PostgreSQL names the index; Prisma names unique indexes <Table>_<field>_key.
  const index = cause?.constraint?.index
  const match =
    typeof index === 'string' && typeof cause?.table === 'string'
      ? new RegExp(`^${cause.table}_(.+)_key$`).exec(index)
      : null
  return match ? [match[1]!] : []
}

/**
 * The client error for a Prisma error of a write on `model` (`operation` tells what the write
 * did; `id`, the record it named, if it named one).
 */
export function writeClientError(
  error: unknown,
  model: string,
  operation: 'create' | 'update' | 'delete' = 'update',
  id?: unknown,
): unknown {
  if (error instanceof Error && error.name === 'PrismaClientValidationError') {
    const lines = error.message.trim().split('\n')
    return badInput(`${model}: ${lines[lines.length - 1]}`)
  }
  if (!isKnownRequestError(error)) return error
  switch (error.code) {
    case 'P2002': {
      const fields = constraintFields(error.meta)
      return conflict(
        `a ${model} with this ${fields.join(', ') || 'unique value'} already exists`,
        fields.length ? { fields } : {},
      )
    }
    case 'P2003':
      // A foreign key refused the write: on delete, other records still point at this one;
      // otherwise the record the write points at does not exist.
      return operation === 'delete'
        ? conflict(`${model}: other records still refer to it; delete or move them first`)
        : badInput(`${model}: a related record does not exist`)
    case 'P2025':
      return id === undefined
        ? notFound(`${model}: the record to change does not exist`)
        : notFound(`${model} ${String(id)} not found`, { id: String(id) })
    default:
      return error
  }
}
