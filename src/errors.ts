/**
 * mizzen's one error module (its parts are under `errors/`): the stable codes every client
 * error carries (`extensions.code`), one factory per code, the mapping of infrastructure
 * (Redis, database, peer), Prisma write, rooms registry and history failures to client errors,
 * the WebSocket close codes, startup errors that name the offending setting, and the error a
 * group's execution throws when it reads outside its key. Every message a
 * client can see for one of these failures is written once, in `errors/`.
 */
export { ErrorCode } from './errors/codes.ts'
export {
  badInput,
  clientErrorsJson,
  conflict,
  forbidden,
  gatewayShuttingDown,
  MizzenError,
  notFound,
  rateLimited,
  resyncRequired,
  unauthenticated,
  unavailable,
  webSocketRequired,
} from './errors/client.ts'
export { CloseCode } from './errors/close-codes.ts'
export { ConfigError, positiveSetting, StartupError } from './errors/config.ts'
export { historyClientError, roomClientError } from './errors/domain.ts'
export { ClosedError, ResyncError, UnknownTargetError } from './errors/failures.ts'
export { IsolationError } from './errors/isolation.ts'
export { classifyInfrastructureError, maskInfrastructureErrors, toUnavailable } from './errors/infrastructure.ts'
export { writeClientError } from './errors/prisma-writes.ts'
export { redisFailed, type Service, ServiceUnavailableError } from './errors/service.ts'
