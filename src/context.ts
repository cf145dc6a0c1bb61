/** What every resolver receives, over HTTP and WebSocket alike. */
import type { Access } from './auth/access.ts'
import type { Viewer } from './auth/viewer.ts'
import type { Bus } from './bus/bus.ts'
import type { DeliveryHub } from './delivery/hub.ts'
import type { Logger } from './logger.ts'
import type { PrismaClientLike } from './prisma/client.ts'
import type { DataModel } from './models/data-model.ts'
import type { Rooms } from './rooms/rooms.ts'

export interface ServerContext {
  /** The Prisma Client the gateway reads and writes through (with the realtime extension). */
  readonly prisma: PrismaClientLike
  /** The data model the gateway serves, linked. */
  readonly dataModel: DataModel
  /** Carries events between writers and every gateway instance. */
  readonly bus: Bus
  /** Local subscribers by topic: where delivery happens. */
  readonly hub: DeliveryHub
  /** Room messaging and membership (`sails.sockets`). */
  readonly rooms: Rooms
  readonly logger: Logger
}

/**
 * A request's or a subscriber's context. A group's execution of a subscription event gets one
 * built from its group key alone: the server's parts, `viewer.role` and `access`'s read checks
 * for the models the selection set reaches; reading anything else throws IsolationError
 * (docs/architecture.md §6).
 */
export interface GatewayContext extends ServerContext {
  /** The WebSocket connection the operation arrived on; absent over HTTP. */
  readonly connectionId?: string
  /** Who is asking (from the Authorization header, or the connection_init payload). */
  readonly viewer: Viewer
  /** The policies applied to this viewer: every permission check goes through it. */
  readonly access: Access
}
