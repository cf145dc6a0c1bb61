/**
 * `mizzen serve`: a gateway for the project's schema, configured from the environment (the
 * settings of the README's Configuration table), with the policies of the config file. Stops
 * gracefully on SIGINT/SIGTERM and exits 0.
 */
import { loadConfig } from '../config.ts'
import { createAdapterFactory } from '../db/adapter.ts'
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
  // Every service a setting names answers, or serving stops here saying which (StartupError).
  await checkServices(config)
  if (options.migrate) {
    const applied = await migrate(project, config.databaseUrl)
    if (applied.length) logger.info({ migrations: applied }, 'database migrated')
  }
  const dataModel = await project.dataModel()
  const PrismaClient = await project.prismaClientClass()
  const prisma = new PrismaClient({ adapter: await createAdapterFactory(config.databaseUrl, { timeoutMs: config.databaseTimeoutMs ?? 10_000 }) })
  const services = await openServices(config, logger)
  const gateway = await createGateway({ ...gatewaySettings(config), ...services, prisma, dataModel, logger, policies: configFile.policies })
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down')
    gateway.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
