/**
 * `mizzen serve`: a gateway for the project's schema, configured from the environment (the
 * settings of the README's Configuration table), with the policies of the config file. Stops
 * gracefully on SIGINT/SIGTERM and exits 0.
 */
import { createMemoryBus } from '../bus/memory.ts'
import { createRedisBus } from '../bus/redis.ts'
import { loadConfig } from '../config.ts'
import { createAdapterFactory } from '../db/adapter.ts'
import { createGateway } from '../gateway.ts'
import { createLogger } from '../logger.ts'
import { createRedisRoomRegistry } from '../rooms/redis.ts'
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
  if (options.migrate) {
    const applied = await migrate(project, config.databaseUrl)
    if (applied.length) logger.info({ migrations: applied }, 'database migrated')
  }
  const dataModel = await project.dataModel()
  const PrismaClient = await project.prismaClientClass()
  const prisma = new PrismaClient({ adapter: await createAdapterFactory(config.databaseUrl, { timeoutMs: config.databaseTimeoutMs ?? 10_000 }) })
  const bus = config.redisUrl
    ? await createRedisBus({ url: config.redisUrl, history: config.history, outbox: config.outbox, onError: (err, topic) => logger.error({ err, topic }, 'redis bus error') })
    : createMemoryBus({ history: config.history, onListenerError: (err, topic) => logger.error({ err, topic }, 'bus listener failed') })
  // Room membership shared by every gateway on this Redis; the gateway closes it on shutdown.
  const registry = config.redisUrl
    ? await createRedisRoomRegistry({
        url: config.redisUrl,
        ...config.cluster,
        onError: (err, context) => logger.error({ err, context }, 'redis rooms registry error'),
        onHealed: ({ brokenForMs }) => logger.info({ brokenForMs }, 'redis rooms registry healed: Redis rewritten from this instance’s connections'),
      })
    : undefined
  const gateway = await createGateway({
    prisma,
    dataModel,
    port: config.port,
    host: config.host,
    nodeEnv: config.nodeEnv,
    logger,
    auth: config.auth,
    allowOpen: config.allowOpen,
    allowedOrigins: config.allowedOrigins,
    introspection: config.introspection,
    limits: config.limits,
    policies: configFile.policies,
    bus,
    rooms: { registry, clusterTimeoutMs: config.cluster.redisTimeoutMs },
  })
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
