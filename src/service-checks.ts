/**
 * One quick look at a service a URL names, before anything depends on it: does it answer, and
 * if not, why. Each check makes one attempt (no reconnection, no retries), leaves no client
 * behind and resolves with the reason it failed (undefined when the service answered), so that
 * startup and the test preflight can say in one line what is missing.
 */
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { Redis } from 'ioredis'

/** How long a service gets to answer, in ms. */
export const CHECK_TIMEOUT_MS = 5000

/** `host:port` (and `/database`) of a URL, with no user name or password. */
export function addressOf(url: string): string {
  try {
    const parsed = new URL(url)
    const path = parsed.pathname.length > 1 ? parsed.pathname : ''
    return `${parsed.host || '(no host)'}${path}`
  } catch {
    return '(an unreadable URL)'
  }
}

/** An error as a short reason: its code and message, the message of the error it wraps. */
export function reasonOf(error: unknown): string {
  const { code, message, errors } = error as { code?: unknown; message?: string; errors?: unknown[] }
  // AggregateError (a host with IPv4 and IPv6 addresses): the first attempt says it.
  if (!message && Array.isArray(errors) && errors.length) return reasonOf(errors[0])
  const text = message || String(error)
  return typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text
}

/** Redis answers PING at `url` (its AUTH and database number included). */
export async function checkRedis(url: string, timeoutMs = CHECK_TIMEOUT_MS): Promise<string | undefined> {
  const client = new Redis(url, {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: timeoutMs,
  })
  // connect() rejects with "Connection is closed."; the cause comes as an 'error' event first.
  let cause: unknown
  client.on('error', (error: unknown) => (cause ??= error))
  try {
    await client.connect()
    await client.ping()
    return undefined
  } catch (error) {
    return reasonOf(cause ?? error)
  } finally {
    client.disconnect()
  }
}

/** PostgreSQL at `url` accepts the connection and answers a query; with `canCreateDatabases`, its role may CREATE DATABASE too. */
export async function checkPostgres(
  url: string,
  options: { timeoutMs?: number; canCreateDatabases?: boolean } = {},
): Promise<string | undefined> {
  const timeoutMs = options.timeoutMs ?? CHECK_TIMEOUT_MS
  // Loaded here, not at the top: `pg` comes with @prisma/adapter-pg, which a SQLite project lacks.
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs })
  client.on('error', () => {})
  try {
    await client.connect()
    const { rows } = await client.query<{ allowed: boolean; role: string }>(
      'SELECT (rolcreatedb OR rolsuper) AS allowed, rolname AS role FROM pg_roles WHERE rolname = current_user',
    )
    if (options.canCreateDatabases && !rows[0]?.allowed) return `role "${rows[0]?.role ?? '?'}" may not CREATE DATABASE`
    return undefined
  } catch (error) {
    return reasonOf(error)
  } finally {
    await client.end().catch(() => {})
  }
}

/** The SQLite file of a `file:` URL can be created or written: its folder exists (or is made) and is writable. */
export function checkSqliteFile(url: string): string | undefined {
  const path = resolve(url.slice('file:'.length).split('?')[0]!)
  try {
    mkdirSync(dirname(path), { recursive: true })
    accessSync(existsSync(path) ? path : dirname(path), constants.W_OK)
    return undefined
  } catch (error) {
    return reasonOf(error)
  }
}
