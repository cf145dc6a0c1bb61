/**
 * `npm start`: the gateway built from prisma/schema.prisma, configured from the environment.
 * Stops gracefully on SIGINT/SIGTERM and exits 0; a bad setting exits 1 naming it.
 */
import { examplePolicies } from './app/policies.ts'
import { loadConfig } from './config.ts'
import { ConfigError } from './errors.ts'
import { createGateway } from './gateway.ts'
import { createLogger } from './logger.ts'
import { gatewaySettings, openServices, StartupError } from './startup.ts'

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
  // Every service a setting names answers, or startup stops here saying which (StartupError).
  const services = await openServices(config, logger)
  let gateway
  try {
    gateway = await createGateway({ ...gatewaySettings(config), ...services, logger, policies: examplePolicies })
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
  } else if (error instanceof StartupError) {
    console.error(`mizzen: cannot start: ${error.message}`)
  } else {
    // The message says what failed (an unreachable database, say); the stack is for debugging.
    console.error(`mizzen: failed to start: ${error instanceof Error ? error.message : String(error)}`)
    if (process.env.LOG_LEVEL === 'debug' || process.env.LOG_LEVEL === 'trace') console.error(error)
  }
  process.exit(1)
})
