/** mizzen's library API. */
export { createGateway, GRAPHQL_PATH, type Gateway, type GatewayOptions } from './gateway.ts'
export { knownVariables, loadConfig, unknownVariables, type Config, type UnknownVariable } from './config.ts'
export { defineConfig, type MizzenConfig } from './cli/config-file.ts'
export {
  applyMigrations,
  MigrationsFolderError,
  type ApplyMigrationsOptions,
  type SchemaFile,
} from './db/migrations.ts'
export { createAdapterFactory } from './db/adapter.ts'
export { ConfigError, ErrorCode, MizzenError } from './errors.ts'
export { realtime, type RealtimeOptions } from './prisma/extension.ts'
export type { Bus, BusStats, TopicMap } from './bus/bus.ts'
export { createMemoryBus } from './bus/memory.ts'
export { createRedisBus, type RedisBusOptions } from './bus/redis.ts'
export { SharedRedis, type SharedRedisOptions } from './redis/shared.ts'
export { modelVerbs, modelTopic, type ModelEvent, type ModelVerb } from './events.ts'
export type { DataModelMeta, ModelMeta, FieldMeta, EnumMeta } from './models/meta.ts'
export {
  linkDataModel,
  type DataModel,
  type Model,
  type Field,
  type ScalarField,
  type RelationField,
} from './models/data-model.ts'
export type { PrismaClientLike } from './prisma/client.ts'
export type { Policies, ModelPolicy, RoomPolicy, Rule, RoomRule } from './auth/policies.ts'
export type { Viewer, Role } from './auth/viewer.ts'
export type { AuthOptions } from './auth/authenticator.ts'
export { defaultLimits, type Limits } from './transport/limits.ts'
export type { Logger } from './logger.ts'
export { MemoryRoomRegistry } from './rooms/memory.ts'
export {
  createRedisRoomRegistry,
  RedisRoomRegistry,
  RoomCommandTimeoutError,
  type RedisRoomRegistryOptions,
} from './rooms/redis.ts'
export {
  UnknownConnectionError,
  type RoomRegistry,
  type MembershipChange,
  type MembershipReason,
  type RoomInfo,
  type Target,
} from './rooms/registry.ts'
export type { RoomsOptions, SendOptions, SendResult } from './rooms/rooms.ts'
