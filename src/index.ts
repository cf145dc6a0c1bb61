/** mizzen's library API. */
export { createGateway, GRAPHQL_PATH, type Gateway, type GatewayOptions } from './gateway.ts'
export { loadConfig, type Config } from './config.ts'
export { openDatabase, type Database } from './db/database.ts'
export { ConfigError, ErrorCode, MizzenError } from './errors.ts'
export { realtime, type RealtimeOptions } from './prisma/extension.ts'
export type { Bus, TopicMap } from './bus/bus.ts'
export { createMemoryBus } from './bus/memory.ts'
export { createRedisBus, type RedisBusOptions } from './bus/redis.ts'
export { modelVerbs, modelTopic, type ModelEvent, type ModelVerb } from './events.ts'
export type { DataModelMeta, ModelMeta, FieldMeta } from './models/meta.ts'
export { MemoryRoomRegistry } from './rooms/memory.ts'
export { createRedisRoomRegistry, RedisRoomRegistry, RoomCommandTimeoutError, type RedisRoomRegistryOptions } from './rooms/redis.ts'
export {
  UnknownConnectionError,
  type RoomRegistry,
  type MembershipChange,
  type MembershipReason,
  type RoomInfo,
  type Target,
} from './rooms/registry.ts'
export type { RoomsOptions } from './rooms/rooms.ts'
