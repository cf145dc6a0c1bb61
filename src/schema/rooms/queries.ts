/** Room queries: who is where. */
import type { GatewayContext } from '../../context.ts'
import { checkName } from '../../rooms/validation.ts'

export const roomQueries = {
  connection: async (_parent: unknown, _args: unknown, { connectionId, rooms }: GatewayContext) => {
    if (!connectionId) return null
    const joined = await rooms.registry.roomsOf(connectionId)
    return joined && { id: connectionId, rooms: joined }
  },
  roomMembers: (_parent: unknown, args: { room: string }, { rooms }: GatewayContext) =>
    rooms.registry.members(checkName(args.room, 'room')),
  rooms: (_parent: unknown, _args: unknown, { rooms }: GatewayContext) => rooms.registry.rooms(),
}
