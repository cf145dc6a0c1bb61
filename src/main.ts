/**
 * `npm start`: the gateway built from prisma/schema.prisma, configured from the environment.
 * Stops gracefully on SIGINT/SIGTERM and exits 0; a bad setting exits 1 naming it.
 */
import { examplePolicies } from './app/policies.ts'
import { createMemoryBus } from './bus/memory.ts'
import { createRedisBus } from './bus/redis.ts'
import { loadConfig } from './config.ts'
import { ConfigError } from './errors.ts'
import { createGateway } from './gateway.ts'
import { createLogger } from './logger.ts'
import { createRedisRoomRegistry } from './rooms/redis.ts'

async function main(): Promise<void> {
  let config
  try {
    config = loadConfig()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    console.error(`mizzen: invalid configuration: ${error.message}`)
    process.exit(1)
  }
  const logger = createLogger(config.logLevel)
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
  let gateway
  try {
    gateway = await createGateway({
      port: config.port,
      host: config.host,
      databaseUrl: config.databaseUrl,
      nodeEnv: config.nodeEnv,
      logger,
      auth: config.auth,
      allowOpen: config.allowOpen,
      allowedOrigins: config.allowedOrigins,
      introspection: config.introspection,
      limits: config.limits,
      policies: examplePolicies,
      bus,
      databaseTimeoutMs: config.databaseTimeoutMs,
      rooms: { registry, clusterTimeoutMs: config.cluster.redisTimeoutMs },
    })
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    console.error(`mizzen: invalid configuration: ${error.message}`)
    process.exit(1)
  }
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

main().catch((error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE' || code === 'EACCES') {
    console.error(`mizzen: cannot listen: ${(error as Error).message} (set PORT or HOST)`)
  } else {
    // The message says what failed (an unreachable database, say); the stack is for debugging.
    console.error(`mizzen: failed to start: ${error instanceof Error ? error.message : String(error)}`)
    if (process.env.LOG_LEVEL === 'debug' || process.env.LOG_LEVEL === 'trace') console.error(error)
  }
  process.exit(1)
})
