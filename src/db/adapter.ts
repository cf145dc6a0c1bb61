/**
 * The Prisma driver adapter a `DATABASE_URL` names. The adapters are optional peer dependencies
 * (a PostgreSQL project need not compile better-sqlite3), so each is loaded when first needed,
 * and a missing one is reported by name.
 */
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils'
import { ConfigError } from '../errors.ts'
import { databaseProvider } from './provider.ts'

/** The path of a `file:` SQLite URL, resolved against the working directory. */
export function sqliteFilePath(url: string): string {
  return resolve(url.slice('file:'.length).split('?')[0]!)
}

async function load<T>(specifier: string, what: string): Promise<T> {
  try {
    return (await import(specifier)) as T
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error
    throw new ConfigError('DATABASE_URL', `${what} needs the package ${specifier}: npm install ${specifier}`)
  }
}

export interface AdapterOptions {
  /**
   * PostgreSQL: how long connecting, and then each query, may take, in ms, before it fails (a
   * server that accepts connections and never answers must not hang requests). None when unset.
   */
  timeoutMs?: number | undefined
}

/**
 * The Prisma driver adapter for `url`. For SQLite the file's directory is created, so a URL such
 * as `file:./data/app.db` works on a fresh checkout.
 */
export async function createAdapterFactory(
  url: string,
  options: AdapterOptions = {},
): Promise<SqlMigrationAwareDriverAdapterFactory> {
  if (databaseProvider(url) === 'sqlite') {
    const { PrismaBetterSqlite3 } = await load<typeof import('@prisma/adapter-better-sqlite3')>(
      '@prisma/adapter-better-sqlite3',
      'a SQLite DATABASE_URL',
    )
    const path = sqliteFilePath(url)
    mkdirSync(dirname(path), { recursive: true })
    return new PrismaBetterSqlite3({ url: `file:${path}` })
  }
  const { PrismaPg } = await load<typeof import('@prisma/adapter-pg')>(
    '@prisma/adapter-pg',
    'a PostgreSQL DATABASE_URL',
  )
  const { timeoutMs } = options
  return new PrismaPg(
    timeoutMs
      ? { connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs }
      : { connectionString: url },
  )
}
