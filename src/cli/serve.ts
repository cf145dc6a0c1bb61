/**
 * `mizzen serve`: a gateway for the project's schema, configured from the environment (the
 * settings of docs/configuration.md), with the policies of the config file. Stops
 * gracefully on SIGINT/SIGTERM and exits 0.
 */
import { loadConfig, unknownVariables } from '../config.ts'
import { existsSync } from 'node:fs'
import { createAdapterFactory } from '../db/adapter.ts'
import { pendingMigrations } from '../db/migrations.ts'
import { createGateway } from '../gateway.ts'
import { createLogger } from '../logger.ts'
import { checkServices, gatewaySettings, openServices } from '../startup.ts'
import type { LoadedConfig } from './config-file.ts'
import { migrate } from './migrate.ts'
import type { Project } from './project.ts'

export interface ServeOptions {
  /** Apply pending migrations before serving. */
  readonly migrate: boolean
}

export async function serve(project: Project, configFile: LoadedConfig, options: ServeOptions): Promise<void> {
  const config = loadConfig()
  project.checkDatabase(config.databaseUrl)
  const logger = createLogger(config.logLevel)
  // A misspelt setting would otherwise be silent, its setting left at its default.
  for (const { name, closest } of unknownVariables())
    logger.warn(
      { variable: name, closest },
      `${name} is not a mizzen setting and is ignored: did you mean ${closest}? (docs/configuration.md lists them)`,
    )
  // Every service a setting names answers, or serving stops here saying which (StartupError).
  await checkServices(config)
  if (options.migrate) {
    const applied = await migrate(project, config.databaseUrl)
    if (applied.length) logger.info({ migrations: applied }, 'database migrated')
  }
  const dataModel = await project.dataModel()
  const PrismaClient = await project.prismaClientClass()
  const prisma = new PrismaClient({
    adapter: await createAdapterFactory(config.databaseUrl, { timeoutMs: config.databaseTimeoutMs ?? 10_000 }),
  })
  if (!options.migrate && existsSync(project.migrationsDir)) {
    // Not fatal (the database may be migrated by other means), but /ready stays 503 until the tables exist.
    const pending = await pendingMigrations(prisma, project.migrationsDir).catch(() => [])
    if (pending.length)
      logger.warn(
        { pending },
        `the database lacks ${pending.length} migration(s) of ${project.show(project.migrationsDir)}: run \`mizzen migrate\` (or serve --migrate)`,
      )
  }
  const services = await openServices(config, logger)
  const gateway = await createGateway({
    ...gatewaySettings(config),
    ...services,
    prisma,
    dataModel,
    logger,
    policies: configFile.policies,
  })
  const stop = (signal: NodeJS.Signals) => {
    // Exit whatever happens, even when logging itself fails (a closed stdout).
    void (async () => {
      let code = 0
      try {
        logger.info({ signal }, 'shutting down')
        await gateway.close()
      } catch (error) {
        code = 1
        try {
          logger.error({ err: error }, 'shutdown failed')
        } catch {
          // Nowhere left to say it.
        }
      }
      process.exit(code)
    })()
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
