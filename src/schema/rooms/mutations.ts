/**
 * Room mutations, over HTTP and WebSocket alike. They are all here, behind `guarded`, which
 * checks the room policies before anything happens.
 */
import type { GraphQLResolveInfo } from 'graphql'
import type { Access } from '../../auth/access.ts'
import type { GatewayContext } from '../../context.ts'
import type { Target } from '../../rooms/registry.ts'
import { roomClientError } from '../../errors.ts'
import { checkData, checkName, checkRooms } from '../../rooms/validation.ts'
import { selectsField } from '../selects-field.ts'

type Resolver<A> = (parent: unknown, args: A, context: GatewayContext, info: GraphQLResolveInfo) => Promise<unknown>

export interface MessageArgs {
  event: string
  data?: unknown
  omit?: string | null
  omitSelf?: boolean | null
}

/**
 * Wraps every room mutation: `allowed` checks the policies (and throws FORBIDDEN or
 * UNAUTHENTICATED) before it runs, and a connection that does not exist becomes NOT_FOUND.
 */
function guarded<A>(allowed: (args: A, access: Access) => void, resolve: Resolver<A>): Resolver<A> {
  return async (parent, args, context, info) => {
    allowed(args, context.access)
    try {
      return await resolve(parent, args, context, info)
    } catch (error) {
      throw roomClientError(error)
    }
  }
}

/** The message's content and who it leaves out, checked. */
function messageOf(args: MessageArgs, { connectionId, rooms }: GatewayContext) {
  const content = {
    event: checkName(args.event, 'event'),
    data: checkData(args.data, rooms.maxDataBytes),
    sender: connectionId ?? null,
  }
  // omitSelf over HTTP has no connection to leave out; it is not an error.
  const omit = [args.omit, args.omitSelf ? connectionId : undefined].filter((id): id is string => id != null)
  return { content, omit }
}

/**
 * Counting the recipients is a Redis request of its own on several gateways: only when the
 * operation asks for them (docs/architecture.md §5).
 */
const sendOptions = (info: GraphQLResolveInfo) => ({ countRecipients: selectsField(info, 'recipients') })

/** Moving members in and out of rooms is allowed to whoever may broadcast to all of them. */
const mayBroadcastTo = (rooms: readonly string[], access: Access) =>
  rooms.forEach((room) => access.assertBroadcast(room))

export const roomMutations = {
  broadcast: guarded<MessageArgs & { rooms: string[] }>(
    (args, access) => mayBroadcastTo(args.rooms, access),
    async (_parent, args, context, info) => {
      const { content, omit } = messageOf(args, context)
      const target: Target = { rooms: checkRooms(args.rooms, 'rooms'), omit }
      return context.rooms.send(content, target, sendOptions(info))
    },
  ),
  blast: guarded<MessageArgs>(
    (_args, access) => access.assertManageConnections('blast to every connection'),
    async (_parent, args, context, info) => {
      const { content, omit } = messageOf(args, context)
      return context.rooms.send(content, { rooms: null, omit }, sendOptions(info))
    },
  ),
  join: guarded<{ connectionId: string; room: string }>(
    (args, access) => mayBroadcastTo([args.room], access),
    async (_parent, args, { rooms }) =>
      rooms.registry.join(args.connectionId, checkName(args.room, 'room'), { kind: 'server' }),
  ),
  leave: guarded<{ connectionId: string; room: string }>(
    (args, access) => mayBroadcastTo([args.room], access),
    async (_parent, args, { rooms }) => rooms.registry.leave(args.connectionId, checkName(args.room, 'room')),
  ),
  leaveAll: guarded<{ room: string }>(
    // Its members leave every room they are in, not only this one.
    (_args, access) => access.assertManageConnections('make connections leave all their rooms'),
    async (_parent, args, { rooms }) => rooms.registry.leaveAll(checkName(args.room, 'room')),
  ),
  addRoomMembersToRooms: guarded<{ sourceRoom: string; rooms: string[] }>(
    (args, access) => mayBroadcastTo([args.sourceRoom, ...args.rooms], access),
    async (_parent, args, { rooms }) =>
      rooms.registry.addRoomMembersToRooms(checkName(args.sourceRoom, 'sourceRoom'), checkRooms(args.rooms, 'rooms')),
  ),
  removeRoomMembersFromRooms: guarded<{ sourceRoom: string; rooms: string[] }>(
    (args, access) => mayBroadcastTo([args.sourceRoom, ...args.rooms], access),
    async (_parent, args, { rooms }) =>
      rooms.registry.removeRoomMembersFromRooms(
        checkName(args.sourceRoom, 'sourceRoom'),
        checkRooms(args.rooms, 'rooms'),
      ),
  ),
}
