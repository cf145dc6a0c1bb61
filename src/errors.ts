/**
 * mizzen's error hierarchy. Every error a client can see carries a stable `extensions.code`;
 * configuration errors name the offending setting.
 */
import { GraphQLError } from 'graphql'

/** A bad setting: startup stops with this message, which names the setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`)
  }
}

/** `value` if it is a positive safe integer, else a ConfigError naming `setting` (and the value's `unit`, if any). */
export function positiveSetting(setting: string, value: number, unit?: string): number {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new ConfigError(setting, `expected a positive integer${unit ? ` (${unit})` : ''}, got ${value}`)
  return value
}

export const ErrorCode = {
  BadUserInput: 'BAD_USER_INPUT',
  NotFound: 'NOT_FOUND',
  Conflict: 'CONFLICT',
  Unauthenticated: 'UNAUTHENTICATED',
  Forbidden: 'FORBIDDEN',
  RateLimited: 'RATE_LIMITED',
  /** The operation needs a WebSocket connection (room subscriptions), and came over HTTP. */
  WebSocketRequired: 'WEBSOCKET_REQUIRED',
  /**
   * A service the gateway depends on (Redis, the database, another gateway instance) failed or
   * did not answer in time; `extensions.service` names it. The operation may be retried.
   */
  Unavailable: 'UNAVAILABLE',
  /**
   * The history no longer reaches back to a subscription's `after:` cursor, or the gateway missed
   * events it cannot deliver: reload with a query and subscribe again without `after`.
   */
  ResyncRequired: 'RESYNC_REQUIRED',
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** An error meant for the client: Yoga does not mask GraphQLErrors, so its message is kept. */
export class MizzenError extends GraphQLError {
  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { ...extensions, code } })
  }
}

export const badInput = (message: string, extensions?: Record<string, unknown>) =>
  new MizzenError(ErrorCode.BadUserInput, message, extensions)
export const notFound = (message: string, extensions?: Record<string, unknown>) =>
  new MizzenError(ErrorCode.NotFound, message, extensions)
export const forbidden = (message: string, extensions?: Record<string, unknown>) =>
  new MizzenError(ErrorCode.Forbidden, message, extensions)

/** What the gateway depends on, as `extensions.service` of an UNAVAILABLE error names it. */
export type Service = 'redis' | 'database' | 'gateway'

/**
 * A service the gateway depends on failed or did not answer in time. Thrown by the layers that
 * talk to it (the Redis rooms registry, readiness checks); clients see it as UNAVAILABLE.
 */
export class ServiceUnavailableError extends Error {
  override readonly name = 'ServiceUnavailableError'
  constructor(
    readonly service: Service,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** The client error for an unavailable service: retryable, naming it. */
export const unavailable = (service: Service, message: string, extensions?: Record<string, unknown>) =>
  new MizzenError(ErrorCode.Unavailable, message, { ...extensions, service, retryable: true })
