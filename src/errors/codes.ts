/** The stable `extensions.code` of every error a client can see (docs/architecture.md §10). */
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
