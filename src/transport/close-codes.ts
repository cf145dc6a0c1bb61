/**
 * WebSocket close codes the gateway uses, besides those graphql-ws sends on protocol violations
 * (4400 bad message, 4401 unauthorized, 4403 forbidden, 4406 subprotocol, 4408 init timeout,
 * 4409 duplicate id, 4429 too many init requests).
 */
export enum CloseCode {
  /** The gateway is shutting down; clients should reconnect elsewhere or later. */
  GoingAway = 1001,
  /** The client broke a limit: too many messages per second. (A client too slow to read is terminated: it sees 1006.) */
  PolicyViolation = 1008,
  /** An unexpected server error. */
  InternalError = 1011,
  /** graphql-ws's BadRequest: an invalid message; mizzen also sends it for a binary frame. */
  BadRequest = 4400,
  /** graphql-ws's Forbidden: refused credentials, or credentials that expired on an open connection. */
  Forbidden = 4403,
  /**
   * graphql-ws's SubscriberAlreadyExists: an operation id in use; mizzen also sends it for an id
   * the client completed and reused before its operation wound down.
   */
  SubscriberAlreadyExists = 4409,
}
