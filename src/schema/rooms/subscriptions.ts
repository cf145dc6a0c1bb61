/**
 * Room subscriptions. Both read the connection's topic in the delivery hub (see
 * `connectionTopic`); `room` also holds a membership for as long as it runs.
 */
import type { GatewayContext } from '../../context.ts'
import type { Logger } from '../../logger.ts'
import { newId } from '../../ids.ts'
import type { EndListener } from '../../delivery/subscription.ts'
import type { RoomRegistry } from '../../rooms/registry.ts'
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

/**
 * What a `room` subscription runs when it ends: it drops its reason to be in the room. An object
 * of its own rather than a closure made in the resolver: the resolver's closures share one scope
 * with the request's context, which a closure made there would keep alive (the request, its
 * parsed query, the viewer's access) for as long as the subscription runs, and an object is
 * smaller than a closure and its scope (docs/performance.md, What an idle connection holds).
 */
class RoomRelease implements EndListener {
  constructor(
    private readonly registry: RoomRegistry,
    private readonly logger: Logger,
    private readonly connectionId: string,
    private readonly room: string,
    private readonly subscriptionId: string,
  ) {}

  subscriptionEnded(): Promise<void> {
    const { connectionId, room } = this
    return this.registry
      .release(connectionId, room, this.subscriptionId)
      .catch((err: unknown) => this.logger.error({ err, connectionId, room }, 'leaving a room failed'))
  }
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
      const subscriptionId = newId()
      const { after } = args
      const base = new RoomSelection(room, events)
      const selection = after == null ? base : new ResumedSelection(base, roomSignalHooks(room))
      // Listen before joining, so nothing broadcast after the join is missed; leave when it ends,
      // however it ends (the registry ignores the release if the room was already left).
      const subscription = context.rooms.listen(
        connectionId,
        selection,
        new RoomRelease(registry, context.logger, connectionId, room, subscriptionId),
      )
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
