/**
 * Infrastructure failures as client errors: whatever fails because Redis, the database or
 * another gateway instance is down, unreachable or too slow answers `UNAVAILABLE` (retryable,
 * naming the service, with a short reason and no internal detail), never INTERNAL_SERVER_ERROR.
 * The gateway applies it to every error before Yoga masks the unexpected ones, on every
 * transport; `/ready` uses the same reasons.
 */
import { GraphQLError } from 'graphql'
import { unavailable, type MizzenError } from './client.ts'
import { ServiceUnavailableError, type Service } from './service.ts'

/** Prisma's codes for a database that cannot serve the request, with what to tell the client. */
const prismaCodes: Record<string, string> = {
  P1000: 'the database refused the credentials',
  P1001: 'the database server cannot be reached',
  P1002: 'the database server did not answer in time',
  P1003: 'the database does not exist',
  P1008: 'a database operation timed out',
  P1010: 'the database refused access',
  P1011: 'the TLS connection to the database failed',
  P1017: 'the database server closed the connection',
  P2021: 'a table does not exist: the database lacks the migrated schema',
  P2022: 'a column does not exist: the database lacks the migrated schema',
  P2024: 'no database connection became free in time',
  P2037: 'the database has too many connections',
}

/** The kinds of driver adapter errors (Prisma 7) that mean the database cannot serve. */
const adapterKinds: Record<string, string> = {
  DatabaseNotReachable: prismaCodes.P1001!,
  DatabaseDoesNotExist: prismaCodes.P1003!,
  DatabaseAccessDenied: prismaCodes.P1010!,
  AuthenticationFailed: prismaCodes.P1000!,
  ConnectionClosed: prismaCodes.P1017!,
  SocketTimeout: prismaCodes.P1008!,
  TooManyConnections: prismaCodes.P2037!,
  TableDoesNotExist: prismaCodes.P2021!,
  ColumnNotFound: prismaCodes.P2022!,
}

/** pg and Node socket failures, when they reach us unwrapped (raw queries, the pool). */
const databaseTimeouts =
  /Query read timeout|timeout exceeded when trying to connect|Connection terminated due to connection timeout/
const databaseFailures = /Connection terminated|Client has encountered a connection error/

interface Classified {
  readonly service: Service
  readonly reason: string
}

const asRecord = (value: unknown) =>
  typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined

/** PostgreSQL SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57P0x operator intervention. */
function postgresState(code: unknown): string | undefined {
  if (typeof code !== 'string') return undefined
  if (code.startsWith('08')) return 'the connection to the database failed'
  if (code.startsWith('53')) return 'the database is out of resources'
  if (/^57P0[1-4]$/.test(code)) return 'the database server is shutting down or restarting'
  if (code === '42P01') return prismaCodes.P2021
  return undefined
}

/** SQLite primary result codes that mean the file cannot serve: busy, locked, I/O, full, cannot open. */
const sqliteCodes = new Set([5, 6, 10, 13, 14])

function classifyOne(error: unknown): Classified | undefined {
  // Also RoomCommandTimeoutError: another gateway instance did not answer in time.
  if (error instanceof ServiceUnavailableError) return { service: error.service, reason: error.message }
  const record = asRecord(error)
  if (!record) return undefined
  const name = String(record.name ?? '')
  if (name.startsWith('PrismaClient')) {
    if (name === 'PrismaClientInitializationError')
      return { service: 'database', reason: 'the database connection could not be set up' }
    const code = typeof record.code === 'string' ? record.code : ''
    if (prismaCodes[code]) return { service: 'database', reason: prismaCodes[code]! }
    const cause = asRecord(asRecord(asRecord(record.meta)?.driverAdapterError)?.cause)
    const kind = String(cause?.kind ?? '')
    if (adapterKinds[kind]) return { service: 'database', reason: adapterKinds[kind]! }
    const state = kind === 'postgres' ? postgresState(cause?.originalCode) : undefined
    if (state) return { service: 'database', reason: state }
    if (kind === 'sqlite' && sqliteCodes.has(Number(cause?.extendedCode) & 0xff))
      return { service: 'database', reason: 'the SQLite database file cannot be used now' }
    return undefined
  }
  if (name === 'DriverAdapterError') {
    const kind = String(asRecord(record.cause)?.kind ?? '')
    if (adapterKinds[kind]) return { service: 'database', reason: adapterKinds[kind]! }
  }
  if (
    name === 'MaxRetriesPerRequestError' ||
    /^(Stream isn't writeable|Connection is closed\.)/.test(String(record.message))
  ) {
    return { service: 'redis', reason: 'Redis cannot be reached' }
  }
  const state = postgresState(record.code)
  if (state && typeof record.severity === 'string') return { service: 'database', reason: state }
  if (databaseTimeouts.test(String(record.message)))
    return { service: 'database', reason: 'the database did not answer in time' }
  if (databaseFailures.test(String(record.message)))
    return { service: 'database', reason: 'the connection to the database failed' }
  return undefined
}

/** What infrastructure failure `error` (or an error it wraps) is, if it is one. */
export function classifyInfrastructureError(error: unknown): Classified | undefined {
  const seen = new Set<unknown>()
  for (
    let current = error;
    current && !seen.has(current);
    current = asRecord(current)?.cause ?? asRecord(current)?.originalError
  ) {
    seen.add(current)
    const found = classifyOne(current)
    if (found) return found
  }
  return undefined
}

const serviceNames: Record<Service, string> = {
  redis: 'Redis',
  database: 'the database',
  gateway: 'another gateway instance',
}

/** The UNAVAILABLE client error for an infrastructure failure, or undefined for any other error. */
export function toUnavailable(error: unknown): MizzenError | undefined {
  const found = classifyInfrastructureError(error)
  if (!found) return undefined
  // ServiceUnavailableError messages already name the service; Prisma's and drivers' do not.
  const message = /^(Redis|the database|gateway instance|another gateway)/i.test(found.reason)
    ? found.reason
    : `${serviceNames[found.service]} is unavailable: ${found.reason}`
  return unavailable(found.service, message)
}

/**
 * Yoga's `maskError` with infrastructure failures answered as UNAVAILABLE (keeping the error's
 * path and locations); everything else goes to `fallback`, Yoga's own masking.
 */
export function maskInfrastructureErrors(fallback: (error: unknown, message: string, isDev?: boolean) => Error) {
  return (error: unknown, message: string, isDev?: boolean): Error => {
    const client = toUnavailable(error)
    if (!client) return fallback(error, message, isDev)
    if (!(error instanceof GraphQLError)) return client
    return new GraphQLError(client.message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      path: error.path,
      extensions: client.extensions,
    })
  }
}
