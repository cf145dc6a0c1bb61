/** Rooms in the schema: `sails.sockets` over GraphQL. */
import { roomMutations } from './mutations.ts'
import { roomQueries } from './queries.ts'
import { roomSubscriptions } from './subscriptions.ts'

export { roomTypeDefs } from './sdl.ts'

export const roomResolvers = { Query: roomQueries, Mutation: roomMutations, Subscription: roomSubscriptions }
