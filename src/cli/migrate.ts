/** `mizzen migrate`: the project's migrations applied to `DATABASE_URL`, offline (`prisma migrate deploy`). */
import { createAdapterFactory } from '../db/adapter.ts'
import { applyMigrations, MigrationsFolderError } from '../db/migrations.ts'
import { CliError } from './errors.ts'
import type { Project } from './project.ts'

/** Applies the pending migrations; returns their names. */
export async function migrate(project: Project, databaseUrl: string): Promise<string[]> {
  project.checkDatabase(databaseUrl)
  try {
    return await applyMigrations({
      schema: project.schema.files,
      migrationsDir: project.migrationsDir,
      adapterFactory: await createAdapterFactory(databaseUrl),
    })
  } catch (error) {
    if (error instanceof MigrationsFolderError)
      throw new CliError(`${error.message} (give it with --migrations, or \`migrations\` in mizzen.config)`)
    throw error
  }
}
