/** What every resolver receives, over HTTP and WebSocket alike. */
import type { PrismaClient } from './db/database.ts'
import type { DataModelMeta } from './models/meta.ts'

export interface ServerContext {
  /** The Prisma Client the gateway reads and writes through. */
  readonly prisma: PrismaClient
  readonly dataModel: DataModelMeta
}

export interface GatewayContext extends ServerContext {
  /** The WebSocket connection the operation arrived on; absent over HTTP. */
  readonly connectionId?: string
}
