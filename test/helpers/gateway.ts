/** Starts a real gateway on 127.0.0.1, port 0, with a fresh database, for one test file. */
import { pino } from 'pino'
import { expect, vi } from 'vitest'
import { dataModel, openExampleDatabase, type PrismaClient } from '../../examples/app/database.ts'
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway.ts'
import type { TestDatabase } from './databases.ts'

/** A gateway's options, but for the client and data model: the example app's, on the test database. */
export type TestGatewayOptions = Omit<GatewayOptions<PrismaClient>, 'prisma' | 'dataModel'> & {
  /** PostgreSQL: the client's connect and query timeout, in ms (as `MIZZEN_DATABASE_TIMEOUT_MS`). @default 10000 */
  databaseTimeoutMs?: number
}

export interface TestGateway extends Gateway<PrismaClient> {
  /** The same endpoint as `url`, as ws://. */
  readonly wsUrl: string
}

export async function startGateway(
  database: TestDatabase,
  { databaseTimeoutMs, ...options }: TestGatewayOptions = {},
): Promise<TestGateway> {
  // The example migrations are applied here, as `npm start` does; the gateway itself applies none.
  const { prisma } = await openExampleDatabase(database.url, { timeoutMs: databaseTimeoutMs })
  const gateway = await createGateway({
    prisma,
    dataModel,
    port: 0,
    host: '127.0.0.1',
    nodeEnv: 'test',
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    shutdownGraceMs: 1000,
    ...options,
    // Tests open many connections from 127.0.0.1, quickly.
    limits: { maxConnectionsPerIp: 10_000, maxMessagesPerSecond: 10_000, ...options.limits },
  })
  return Object.assign(gateway, { wsUrl: gateway.url.replace(/^http/, 'ws') })
}

/** Waits for the gateway's state to satisfy `check` (it throws until then). */
export const settled = (check: () => void | Promise<void>) => vi.waitFor(check, { timeout: 20_000, interval: 5 })

/** Waits until the gateway holds `count` subscriptions: they attach and detach asynchronously. */
export const waitForSubscribers = (gateway: TestGateway, count: number) =>
  settled(() => expect(gateway.hub.subscriberCount).toBe(count))
