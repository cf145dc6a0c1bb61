/**
 * Decides on WebSocket upgrades before any handshake: the path must be the GraphQL endpoint,
 * the Origin must be allowed, and the connection limits must not be reached. A refusal is an
 * HTTP response (404, 403, 503, 429) that every client sees.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { requestPath } from '../http/handler.ts'

export interface UpgradeRules {
  path: string
  /** Allowed `Origin` values; empty allows any (clients authenticate with tokens, not cookies). */
  allowedOrigins: readonly string[]
  maxConnections: number
  maxConnectionsPerIp: number
  /** The client's address (behind trusted proxies: from X-Forwarded-For; see http/client-address.ts). */
  clientAddress: (request: IncomingMessage) => string
}

export interface Refusal {
  status: number
  message: string
}

/** Counts open connections, in all and per IP address. */
export class ConnectionCounter {
  #total = 0
  readonly #byIp = new Map<string, number>()

  get total(): number {
    return this.#total
  }

  count(ip: string): number {
    return this.#byIp.get(ip) ?? 0
  }

  /** Counts a connection from `ip`. */
  open(ip: string): void {
    this.#total++
    this.#byIp.set(ip, this.count(ip) + 1)
  }

  /** Uncounts a connection `open` counted: once per connection, when its socket closed. */
  close(ip: string): void {
    this.#total--
    const left = this.count(ip) - 1
    if (left > 0) this.#byIp.set(ip, left)
    else this.#byIp.delete(ip)
  }
}

export function checkUpgrade(
  request: IncomingMessage,
  rules: UpgradeRules,
  counter: ConnectionCounter,
): Refusal | undefined {
  const path = requestPath(request)
  if (path !== rules.path) return { status: 404, message: `no WebSocket endpoint at ${path}` }
  const origin = request.headers.origin
  if (rules.allowedOrigins.length && (!origin || !rules.allowedOrigins.includes(origin))) {
    return { status: 403, message: `origin ${origin ?? '(none)'} is not allowed` }
  }
  if (counter.total >= rules.maxConnections) return { status: 503, message: 'too many connections' }
  if (counter.count(rules.clientAddress(request)) >= rules.maxConnectionsPerIp)
    return { status: 429, message: 'too many connections from this address' }
  return undefined
}

const reasons: Record<number, string> = {
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
}

/** Answers an upgrade request with a plain HTTP error and closes the socket. */
export function refuseUpgrade(socket: Duplex, refusal: Refusal): void {
  const body = `${refusal.message}\n`
  socket.end(
    `HTTP/1.1 ${refusal.status} ${reasons[refusal.status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
}

/**
 * Lets go of the peer address Node keeps on the TCP socket once it was read (`_peername`: an
 * object, and the property slot holding it, some 100 bytes for the socket's life). The connection
 * keeps the one string it needs (docs/performance.md, What an idle connection holds); Node reads
 * the address again if anything asks for it. Deleted right after it was read, it is the socket's
 * last property, so the socket keeps its fast shape.
 */
export function forgetPeerAddress(socket: Duplex): void {
  if ('_peername' in socket) delete (socket as Duplex & { _peername?: unknown })._peername
}
