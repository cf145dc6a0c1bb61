/**
 * Presence in the schema, and the rule for every read of a room's membership: its own members
 * and services may read it, unless the room's `members` policy says otherwise (docs/architecture.md
 * §13; docs/auth-and-policies.md).
 */
import type { ReadMembersGrant } from '../../auth/access.ts'
import type { GatewayContext } from '../../context.ts'
import { badInput, roomClientError, webSocketRequired } from '../../errors.ts'
import type { PresenceEvent } from '../../presence/members.ts'
import { checkName } from '../../rooms/validation.ts'

/**
 * FORBIDDEN unless the caller may read `room`'s members (see `Access.assertReadMembers`); resolves
 * with what granted it.
 */
export async function assertMayReadMembers(room: string, context: GatewayContext): Promise<ReadMembersGrant> {
  const { access, rooms, viewer, connectionId } = context
  try {
    return await access.assertReadMembers(room, () => rooms.presence.isMember(room, viewer, connectionId))
  } catch (error) {
    throw roomClientError(error)
  }
}

/** A connection's meta, refused when its JSON is over `maxBytes`. */
export function checkMeta(meta: unknown, maxBytes: number, argument: string): unknown {
  const size = Buffer.byteLength(JSON.stringify(meta ?? null))
  if (size > maxBytes)
    throw badInput(`${argument} must be at most ${maxBytes} bytes of JSON, got ${size}`, { argument, limit: maxBytes })
  return meta ?? null
}

export const presenceResolvers = {
  Query: {
    presence: async (_parent: unknown, args: { room: string }, context: GatewayContext) => {
      const room = checkName(args.room, 'room')
      await assertMayReadMembers(room, context)
      try {
        return await context.rooms.presence.members(room)
      } catch (error) {
        throw roomClientError(error)
      }
    },
  },
  Mutation: {
    updatePresence: async (_parent: unknown, args: { room: string; meta: unknown }, context: GatewayContext) => {
      const { connectionId, rooms } = context
      if (!connectionId)
        throw webSocketRequired(
          'updatePresence sets the meta of the calling WebSocket connection; it cannot run over HTTP',
        )
      const room = checkName(args.room, 'room')
      const meta = checkMeta(args.meta, rooms.presence.maxMetaBytes, 'meta')
      try {
        if (!(await rooms.registry.roomsOf(connectionId))?.includes(room))
          throw badInput(`this connection is not in room "${room}": join it (room(name:)) first`, { argument: 'room' })
        await rooms.registry.setPresenceMeta(connectionId, room, meta)
      } catch (error) {
        throw roomClientError(error)
      }
      return true
    },
  },
  Subscription: {
    presence: {
      subscribe: async (_parent: unknown, args: { room: string }, context: GatewayContext) => {
        const room = checkName(args.room, 'room')
        const grant = await assertMayReadMembers(room, context)
        const { viewer, connectionId } = context
        // Readable for being a member only: the watch ends once the viewer is no longer one.
        const watcher =
          grant === 'membership' ? { connectionId, userId: viewer.role === 'user' ? viewer.id : undefined } : undefined
        try {
          return await context.rooms.presence.subscribe(room, watcher)
        } catch (error) {
          throw roomClientError(error)
        }
      },
      resolve: (event: PresenceEvent) => event,
    },
  },
}
