/**
 * The gateway in your own code, instead of `mizzen serve`: your Prisma Client, the generated data
 * model, your policies. Migrations are yours to apply (`npm run migrate`); mizzen applies none.
 *
 *     DATABASE_URL=postgres://… REDIS_URL=redis://127.0.0.1:6379 PORT=4000 npm run gateway
 */
import { createGateway, createMemoryBus, createRedisBus } from 'mizzen'
import config from '../mizzen.config.js'
import { dataModel, openPrisma } from './database.js'

const bus = process.env.REDIS_URL
  ? await createRedisBus({ url: process.env.REDIS_URL, prefix: process.env.MIZZEN_REDIS_PREFIX ?? 'mizzen:' })
  : createMemoryBus()
const gateway = await createGateway({
  prisma: openPrisma(),
  dataModel,
  bus,
  policies: config.policies,
  port: Number(process.env.PORT ?? 4000),
  host: process.env.HOST ?? '0.0.0.0',
  auth: { apiKeys: process.env.MIZZEN_API_KEYS?.split(',') ?? [] },
})
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => void gateway.close().then(() => process.exit(0)))
