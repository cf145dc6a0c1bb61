/** Resource limits of the gateway, with safe defaults. Every one is configurable. */

export interface Limits {
  /** Largest WebSocket message accepted; bigger ones close the socket with 1009. Bytes. @default 65536 */
  maxPayloadBytes: number
  /** Open WebSocket connections in all; over it the upgrade is refused with HTTP 503. @default 10000 */
  maxConnections: number
  /** Open WebSocket connections from one IP address; over it the upgrade is refused with HTTP 429. @default 1000 */
  maxConnectionsPerIp: number
  /** Active subscriptions on one connection; more are refused with RATE_LIMITED. @default 100 */
  maxSubscriptionsPerConnection: number
  /** Deepest selection set accepted (HTTP and WebSocket). @default 12 */
  maxDepth: number
  /** Most aliases in one operation. @default 30 */
  maxAliases: number
  /** Most tokens in one document (checked while parsing). @default 5000 */
  maxTokens: number
  /** Messages a connection may send per second; more close it with 1008. @default 100 */
  maxMessagesPerSecond: number
  /**
   * Bytes a connection may leave unread in its send buffer; a slower consumer is disconnected so
   * that memory stays bounded. The socket is terminated, not closed: a close frame would wait
   * behind the unread data, so the client sees 1006. @default 4194304 (4 MiB)
   */
  maxBufferedBytes: number
  /** Time a client has to send `connection_init` before the socket is closed with 4408. ms. @default 3000 */
  connectionInitTimeoutMs: number
  /**
   * How often the server pings each WebSocket; a socket that has sent nothing (no pong, no
   * message) a whole period after its ping is terminated at its next visit, within two periods
   * (the client sees 1006). ms. @default 12000
   */
  keepAliveMs: number
}

export const defaultLimits: Limits = {
  maxPayloadBytes: 64 * 1024,
  maxConnections: 10_000,
  maxConnectionsPerIp: 1_000,
  maxSubscriptionsPerConnection: 100,
  maxDepth: 12,
  maxAliases: 30,
  maxTokens: 5_000,
  maxMessagesPerSecond: 100,
  maxBufferedBytes: 4 * 1024 * 1024,
  connectionInitTimeoutMs: 3_000,
  keepAliveMs: 12_000,
}
