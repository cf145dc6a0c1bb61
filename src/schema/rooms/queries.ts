/** Room queries: who is where, for those allowed to know (docs/auth-and-policies.md). */
import type { GatewayContext } from '../../context.ts'
import { checkName } from '../../rooms/validation.ts'
import { assertMayReadMembers } from '../presence/resolvers.ts'

export const roomQueries = {
  connection: async (_parent: unknown, _args: unknown, { connectionId, rooms }: GatewayContext) => {
    if (!connectionId) return null
    const joined = await rooms.registry.roomsOf(connectionId)
    return joined && { id: connectionId, rooms: joined }
  },
  /** For the room's members and services (room policy `members`). */
  roomMembers: async (_parent: unknown, args: { room: string }, context: GatewayContext) => {
    const room = checkName(args.room, 'room')
    await assertMayReadMembers(room, context)
    return context.rooms.registry.members(room)
  },
  /** For services (policy `listRooms`): the names alone say who is online where. */
  rooms: (_parent: unknown, _args: unknown, { rooms, access }: GatewayContext) => {
    access.assertListRooms()
    return rooms.registry.rooms()
  },
}
