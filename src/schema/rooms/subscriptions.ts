/**
 * Room subscriptions. Both read the connection's topic in the delivery hub (see
 * `connectionTopic`); `room` also holds a membership for as long as it runs.
 */
import type { GatewayContext } from '../../context.ts'
import { newLocalId } from '../../ids.ts'
import { roomClientError, webSocketRequired } from '../../errors.ts'
import { ResumedSelection, resumeSubscription } from '../../delivery/resume.ts'
import { roomsTopic, type ConnectionSignal, type RoomMessage } from '../../rooms/messages.ts'
import { MessagesSelection, RoomSelection } from '../../rooms/selectors.ts'
import { checkEvents, checkName } from '../../rooms/validation.ts'
import { checkMeta } from '../presence/resolvers.ts'

/** The connection a room subscription belongs to: rooms have WebSocket members only. */
function connectionOf(context: GatewayContext, field: string): string {
  if (context.connectionId) return context.connectionId
  throw webSocketRequired(
    `${field} needs a WebSocket connection (graphql-transport-ws on this endpoint); it cannot run over HTTP`,
  )
}

const passThrough = (message: RoomMessage) => message

/** A room message signal carries its mark; the delivered message, its cursor in `room`. */
const roomSignalHooks = (room: string) => ({
  markOf: (signal: ConnectionSignal) => (signal.kind === 'message' ? signal.mark : undefined),
  withCursor: (message: RoomMessage, cursor: string): RoomMessage => ({ ...message, room, cursor }),
})

export const roomSubscriptions = {
  room: {
    subscribe: async (
      _parent: unknown,
      args: { name: string; events?: string[] | null; after?: string | null; presence?: unknown },
      context: GatewayContext,
    ) => {
      const connectionId = connectionOf(context, 'room')
      const room = checkName(args.name, 'name')
      const events = checkEvents(args.events)
      const meta =
        args.presence == null ? null : checkMeta(args.presence, context.rooms.presence.maxMetaBytes, 'presence')
      context.access.assertJoin(room)
      const { registry, presence } = context.rooms
      const subscriptionId = newLocalId()
      const { after } = args
      // Listen before joining, so nothing broadcast after the join is missed. Its selection
      // releases its reason to be in the room when it ends, however it ends (the registry ignores
      // the release if the room was already left): an object rather than a closure made here,
      // whose scope would keep the request's context (the request, its parsed query, the
      // viewer's access) alive for as long as the subscription runs.
      const base = new RoomSelection(room, events, context.rooms, connectionId, subscriptionId)
      const selection = after == null ? base : new ResumedSelection(base, roomSignalHooks(room))
      const subscription = context.rooms.listen(connectionId, selection, base)
      // Its presence meta first, so that the join shows it at once. A `presence(room)` subscription
      // sent right after this one waits for the join (Presence.isMember).
      const joined = presence.joining(
        connectionId,
        room,
        (async () => {
          if (meta !== null) await registry.setPresenceMeta(connectionId, room, meta)
          await registry.join(connectionId, room, { kind: 'subscription', subscriptionId })
        })(),
      )
      try {
        await joined
      } catch (error) {
        await subscription.cancel()
        // The meta of a join that did not happen would show at a later one.
        if (meta !== null) await registry.setPresenceMeta(connectionId, room, null).catch(() => {})
        throw roomClientError(error)
      }
      if (selection instanceof ResumedSelection) {
        // Once joined: what the room receives from now on comes live, what it received since the cursor from its history.
        await resumeSubscription(
          subscription,
          selection,
          () => context.bus.resume(roomsTopic, after!, room),
          ({ payload, mark }) =>
            // What a broadcast left this connection out of, it would not have received.
            payload.target.omit.includes(connectionId)
              ? undefined
              : ({
                  kind: 'message',
                  message: payload.message,
                  rooms: [room],
                  cursors: new Map([[room, mark.cursor()]]),
                  mark,
                } satisfies ConnectionSignal),
        )
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
