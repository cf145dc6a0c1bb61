import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3'
import { PrismaPg } from '@prisma/adapter-pg'
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils'
import { databaseProvider } from './provider.ts'

/** The path of a `file:` SQLite URL, resolved against the working directory. */
export function sqliteFilePath(url: string): string {
  return resolve(url.slice('file:'.length).split('?')[0]!)
}

export interface AdapterOptions {
  /**
   * PostgreSQL: how long connecting, and then each query, may take, in ms, before it fails (a
   * server that accepts connections and never answers must not hang requests). None when unset.
   */
  timeoutMs?: number
}

/**
 * The Prisma driver adapter for `url`. For SQLite the file's directory is created, so the
 * default `file:./data/mizzen.db` works on a fresh clone.
 */
export function createAdapterFactory(url: string, options: AdapterOptions = {}): SqlMigrationAwareDriverAdapterFactory {
  if (databaseProvider(url) === 'sqlite') {
    const path = sqliteFilePath(url)
    mkdirSync(dirname(path), { recursive: true })
    return new PrismaBetterSqlite3({ url: `file:${path}` })
  }
  const { timeoutMs } = options
  return new PrismaPg(timeoutMs ? { connectionString: url, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs } : { connectionString: url })
}
