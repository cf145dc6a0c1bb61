/**
 * The one set of WebSocket close codes: graphql-ws's (4400 bad message, 4401 unauthorized, 4403
 * forbidden, 4406 subprotocol, 4408 init timeout, 4409 duplicate id, 4429 too many init
 * requests, 4500 internal error), with mizzen's additions from the WebSocket standard. Where
 * mizzen sends a graphql-ws code for a case of its own, the member says so.
 */
import { CloseCode as GraphQLWsCloseCode } from 'graphql-ws'

const MizzenCloseCode = {
  /** The gateway is shutting down; clients should reconnect elsewhere or later. */
  GoingAway: 1001,
  /** The client broke a limit: too many messages per second. (A client too slow to read is terminated: it sees 1006.) */
  PolicyViolation: 1008,
} as const

/**
 * graphql-ws's `CloseCode` plus mizzen's own. mizzen also sends graphql-ws's `BadRequest` (4400)
 * for a binary frame, `Forbidden` (4403) for credentials that expire on an open connection, and
 * `SubscriberAlreadyExists` (4409) for an id the client completed and reused before its
 * operation wound down.
 */
export const CloseCode = Object.freeze({ ...GraphQLWsCloseCode, ...MizzenCloseCode })
export type CloseCode = GraphQLWsCloseCode | (typeof MizzenCloseCode)[keyof typeof MizzenCloseCode]
