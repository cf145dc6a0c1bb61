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

/**
 * The Prisma driver adapter for `url`. For SQLite the file's directory is created, so the
 * default `file:./data/mizzen.db` works on a fresh clone.
 */
export function createAdapterFactory(url: string): SqlMigrationAwareDriverAdapterFactory {
  if (databaseProvider(url) === 'sqlite') {
    const path = sqliteFilePath(url)
    mkdirSync(dirname(path), { recursive: true })
    return new PrismaBetterSqlite3({ url: `file:${path}` })
  }
  return new PrismaPg({ connectionString: url })
}
