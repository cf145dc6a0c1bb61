/**
 * A gateway of its own for one describe block, on a fresh SQLite database, with raw WebSocket
 * clients that are closed after each test and a record of the server's own sockets.
 */
import { afterAll, afterEach, beforeAll } from 'vitest'
import { databaseKinds, type TestDatabase } from './databases.ts'
import { startGateway, type TestGateway, type TestGatewayOptions } from './gateway.ts'
import { attemptUpgrade, connectRaw, type RawClient, trackServerSockets, type UpgradeOutcome } from './raw-socket.ts'

const sqlite = databaseKinds.find((kind) => kind.provider === 'sqlite')!

export function useRawGateway(options: TestGatewayOptions) {
  const context = {} as { gateway: TestGateway; database: TestDatabase; servers: ReturnType<typeof trackServerSockets> }
  const clients: RawClient[] = []
  beforeAll(async () => {
    context.database = await sqlite.create()
    context.gateway = await startGateway(context.database, options)
    context.servers = trackServerSockets(context.gateway.server)
  })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()))
  })
  afterAll(async () => {
    await context.gateway?.close()
    await context.database?.drop()
  })
  return Object.assign(context, {
    /** An upgrade attempt; a socket it opens is closed after the test. */
    async attempt(options: { path?: string; localAddress?: string; origin?: string } = {}): Promise<UpgradeOutcome> {
      const url = context.gateway.wsUrl.replace('/graphql', options.path ?? '/graphql')
      const outcome = await attemptUpgrade(url, 'graphql-transport-ws', { localAddress: options.localAddress, origin: options.origin })
      if (outcome.kind === 'open') clients.push(outcome.client)
      return outcome
    },
    /** An acknowledged connection from `localAddress` (any 127.x.y.z reaches the loopback gateway). */
    async connect(localAddress = '127.0.0.1'): Promise<RawClient> {
      const client = await connectRaw(context.gateway.wsUrl, undefined, { localAddress })
      clients.push(client)
      return client
    },
  })
}
