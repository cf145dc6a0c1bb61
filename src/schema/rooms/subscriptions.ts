/**
 * Room subscriptions. Both read the connection's topic in the delivery hub (see
 * `connectionTopic`); `room` also holds a membership for as long as it runs.
 */
import { randomUUID } from 'node:crypto'
import type { GatewayContext } from '../../context.ts'
import { ErrorCode, MizzenError } from '../../errors.ts'
import type { RoomMessage } from '../../rooms/messages.ts'
import { toRoomClientError } from './errors.ts'
import { MessagesSelection, RoomSelection } from '../../rooms/selectors.ts'
import { checkEvents, checkName } from '../../rooms/validation.ts'

/** The connection a room subscription belongs to: rooms have WebSocket members only. */
function connectionOf(context: GatewayContext, field: string): string {
  if (context.connectionId) return context.connectionId
  throw new MizzenError(ErrorCode.WebSocketRequired, `${field} needs a WebSocket connection (graphql-transport-ws on this endpoint); it cannot run over HTTP`)
}

const passThrough = (message: RoomMessage) => message

export const roomSubscriptions = {
  room: {
    subscribe: async (_parent: unknown, args: { name: string; events?: string[] | null }, context: GatewayContext) => {
      const connectionId = connectionOf(context, 'room')
      const room = checkName(args.name, 'name')
      const events = checkEvents(args.events)
      context.access.assertJoin(room)
      const { registry } = context.rooms
      const subscriptionId = randomUUID()
      // Listen before joining, so nothing broadcast after the join is missed; leave when it ends,
      // however it ends (the registry ignores the release if the room was already left).
      const { logger } = context
      const subscription = context.rooms.listen(connectionId, new RoomSelection(room, events), () =>
        registry.release(connectionId, room, subscriptionId).catch((err: unknown) => logger.error({ err, connectionId, room }, 'leaving a room failed')),
      )
      try {
        await registry.join(connectionId, room, { kind: 'subscription', subscriptionId })
      } catch (error) {
        await subscription.cancel()
        throw toRoomClientError(error)
      }
      return subscription
    },
    resolve: passThrough,
  },
  messages: {
    subscribe: (_parent: unknown, args: { events?: string[] | null }, context: GatewayContext) =>
      context.rooms.listen(connectionOf(context, 'messages'), new MessagesSelection(checkEvents(args.events))),
    resolve: passThrough,
  },
}
