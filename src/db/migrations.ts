/**
 * Prisma-layout migrations (`<dir>/<timestamp>_<name>/migration.sql` and `migration_lock.toml`),
 * applied with the wasm schema engine exactly as `prisma migrate deploy` would, so
 * `_prisma_migrations` stays compatible with Prisma's own tooling.
 */
import type { Dirent } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils'
import type { PrismaClientLike } from '../prisma/client.ts'
import { noSchemaFilter, withSchemaEngine } from './schema-engine.ts'

/** A Prisma schema file: its path (for the engine's messages) and its text. */
export interface SchemaFile {
  readonly path: string
  readonly content: string
}

export interface ApplyMigrationsOptions {
  /** The Prisma schema, as one file or the files of a schema folder. */
  readonly schema: readonly SchemaFile[]
  /** The migrations folder, in Prisma's layout (`prisma migrate dev` writes it). */
  readonly migrationsDir: string
  /** How to reach the database (see `createAdapterFactory`). */
  readonly adapterFactory: SqlMigrationAwareDriverAdapterFactory
}

/** Thrown when the migrations folder is missing or is not in Prisma's layout. */
export class MigrationsFolderError extends Error {
  override readonly name = 'MigrationsFolderError'
}

/** The migrations among a migrations folder's entries, in the order they apply: its folders, by name. */
const migrationNames = (entries: readonly Dirent[]) =>
  entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()

/** The migrations of `migrationsDir` that `_prisma_migrations` does not record as applied (all of them when it is missing). */
export async function pendingMigrations(prisma: PrismaClientLike, migrationsDir: string): Promise<string[]> {
  const names = migrationNames(await readdir(migrationsDir, { withFileTypes: true }))
  const rows = await (
    prisma.$queryRawUnsafe(
      'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
    ) as Promise<{ migration_name: string }[]>
  ).catch(() => [])
  const applied = new Set(rows.map((row) => row.migration_name))
  return names.filter((name) => !applied.has(name))
}

async function readMigrationList(baseDir: string) {
  const entries = await readdir(baseDir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new MigrationsFolderError(`no migrations folder at ${baseDir}`)
    throw error
  })
  const lock = await readFile(join(baseDir, 'migration_lock.toml'), 'utf8').catch(() => {
    throw new MigrationsFolderError(`${baseDir} has no migration_lock.toml: is it a Prisma migrations folder?`)
  })
  const names = migrationNames(entries)
  const migrationDirectories = await Promise.all(
    names.map(async (name) => ({
      path: name,
      migrationFile: {
        path: 'migration.sql',
        content: { tag: 'ok' as const, value: await readFile(join(baseDir, name, 'migration.sql'), 'utf8') },
      },
    })),
  )
  return {
    baseDir,
    lockfile: { path: 'migration_lock.toml', content: lock },
    shadowDbInitScript: '',
    migrationDirectories,
  }
}

/**
 * Brings the database behind `adapterFactory` to the schema by applying every migration of
 * `migrationsDir` it has not run yet (`prisma migrate deploy`). Returns the names of the
 * migrations applied now.
 */
export async function applyMigrations(options: ApplyMigrationsOptions): Promise<string[]> {
  const migrationsList = await readMigrationList(options.migrationsDir)
  return withSchemaEngine(options.schema, options.adapterFactory, async (engine) => {
    const { appliedMigrationNames } = await engine.applyMigrations({ migrationsList, filters: noSchemaFilter })
    return appliedMigrationNames
  })
}
