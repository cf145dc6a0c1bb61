/**
 * Errors meant for the client: a GraphQLError with a stable `extensions.code`, made by one
 * factory per code, and the messages more than one failure shares, each written once here.
 */
import { GraphQLError } from 'graphql'
import { ErrorCode } from './codes.ts'
import type { Service } from './service.ts'

type Extensions = Record<string, unknown>

/** An error meant for the client: Yoga does not mask GraphQLErrors, so its message is kept. */
export class MizzenError extends GraphQLError {
  constructor(code: ErrorCode, message: string, extensions: Extensions = {}) {
    super(message, { extensions: { ...extensions, code } })
  }
}

export const badInput = (message: string, extensions?: Extensions) =>
  new MizzenError(ErrorCode.BadUserInput, message, extensions)
export const notFound = (message: string, extensions?: Extensions) =>
  new MizzenError(ErrorCode.NotFound, message, extensions)
export const conflict = (message: string, extensions?: Extensions) =>
  new MizzenError(ErrorCode.Conflict, message, extensions)
export const forbidden = (message: string, extensions?: Extensions) =>
  new MizzenError(ErrorCode.Forbidden, message, extensions)
export const rateLimited = (message: string) => new MizzenError(ErrorCode.RateLimited, message)
export const webSocketRequired = (message: string) => new MizzenError(ErrorCode.WebSocketRequired, message)

/** Refused credentials over HTTP: 401 with `WWW-Authenticate: Bearer` (the `http` extension is Yoga's, never sent). */
export const unauthenticated = (message: string) =>
  new MizzenError(ErrorCode.Unauthenticated, message, {
    http: { status: 401, headers: { 'www-authenticate': 'Bearer' } },
  })

/** The client error for an unavailable service: retryable, naming it. */
export const unavailable = (service: Service, message: string, extensions?: Extensions) =>
  new MizzenError(ErrorCode.Unavailable, message, { ...extensions, service, retryable: true })

/** This gateway is stopping (its bus or registry closed): the client may retry on another. */
export const gatewayShuttingDown = () => unavailable('gateway', 'this gateway is shutting down; retry on another')

/**
 * A subscription must start over: `why` (the history no longer reaches back to its cursor, or
 * the gateway missed events) followed by what the client does about it.
 */
export const resyncRequired = (why: string, extensions?: Extensions) =>
  new MizzenError(
    ErrorCode.ResyncRequired,
    `${why}: reload with a query, then subscribe again without after`,
    extensions,
  )

/**
 * Client errors as the JSON array of an `error` message, for the transport to send without
 * masking (they are the client's by construction).
 */
export const clientErrorsJson = (...errors: readonly MizzenError[]) =>
  JSON.stringify(errors.map((error) => error.toJSON()))
