/**
 * A raw `ws` client speaking graphql-transport-ws by hand, for protocol and limit tests: it keeps
 * every message it receives (so none is missed between two awaits), and records its close.
 * Also: upgrade attempts that may be refused, and the server side of each upgraded TCP socket.
 */
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import WebSocket from 'ws'

export type Message = { type: string; id?: string; payload?: any }

interface Waiter {
  match: (message: Message) => boolean
  resolve: (message: Message) => void
}

export class RawClient {
  /** Every message received, in order. */
  readonly received: Message[] = []
  /** Resolves with the close code and reason once the socket closes. */
  readonly closed: Promise<{ code: number; reason: string }>
  readonly #consumed = new Set<number>()
  readonly #waiters: Waiter[] = []

  constructor(readonly socket: WebSocket) {
    socket.on('error', () => {}) // surfaced as the close code
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as Message
      const index = this.received.push(message) - 1
      const waiter = this.#waiters.find((w) => w.match(message))
      if (waiter) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        this.#consumed.add(index)
        waiter.resolve(message)
      }
    })
    this.closed = new Promise((resolve) =>
      socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
    )
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN
  }

  /** Drops every message received so far (taken or not), to keep a long test's memory flat. */
  forget(): void {
    this.received.length = 0
    this.#consumed.clear()
  }

  /** Sends a message (an object is sent as JSON text, a string or buffer as is). */
  send(message: Message | string | Buffer, options: { binary?: boolean } = {}): void {
    this.socket.send(
      typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message),
      options,
    )
  }

  /** The first message not yet taken that matches (waiting for it if needed). */
  next(match: (message: Message) => boolean = () => true, timeoutMs = 10_000): Promise<Message> {
    const index = this.received.findIndex((message, i) => !this.#consumed.has(i) && match(message))
    if (index >= 0) {
      this.#consumed.add(index)
      return Promise.resolve(this.received[index]!)
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        reject(
          new Error(`no matching message within ${timeoutMs} ms; received ${JSON.stringify(this.received.slice(-5))}`),
        )
      }, timeoutMs)
      const waiter: Waiter = {
        match,
        resolve: (message) => {
          clearTimeout(timer)
          resolve(message)
        },
      }
      this.#waiters.push(waiter)
    })
  }

  /** The next message for operation `id` (optionally of one type). */
  nextFor(id: string, type?: string): Promise<Message> {
    return this.next((m) => m.id === id && (type === undefined || m.type === type))
  }

  /** Sends `connection_init` and resolves with the `connection_ack` payload. */
  async init(payload?: Record<string, unknown>): Promise<Record<string, unknown> | undefined> {
    this.send(payload === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload })
    const ack = await this.next((m) => m.type === 'connection_ack')
    return ack.payload
  }

  subscribe(id: string, query: string, variables?: Record<string, unknown>): void {
    this.send({ type: 'subscribe', id, payload: { query, ...(variables ? { variables } : {}) } })
  }

  /** Runs a query or mutation and resolves with its `next` payload, or the `error` payload. */
  async execute(id: string, query: string, variables?: Record<string, unknown>): Promise<Message> {
    this.subscribe(id, query, variables)
    const result = await this.next((m) => m.id === id && (m.type === 'next' || m.type === 'error'))
    if (result.type === 'next') await this.nextFor(id, 'complete')
    return result
  }

  /** Proves the socket is usable: a ping with a fresh payload comes back as the matching pong. */
  async roundTrip(): Promise<void> {
    const payload = { nonce: Math.random().toString(36).slice(2) }
    this.send({ type: 'ping', payload })
    await this.next((m) => m.type === 'pong' && m.payload?.nonce === payload.nonce)
  }

  /** Closes (normally) and waits for the close. */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return
    if (this.socket.readyState !== WebSocket.CLOSING) this.socket.close(1000)
    await this.closed
  }
}

/** Opens a raw socket offering `protocol` and waits for it to open. */
export function openRaw(
  url: string,
  protocol: string | string[] = 'graphql-transport-ws',
  options: WebSocket.ClientOptions = {},
): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocol, options)
    socket.once('open', () => resolve(new RawClient(socket)))
    socket.once('error', reject)
  })
}

/** Opens a raw socket, acknowledged. */
export async function connectRaw(
  url: string,
  payload?: Record<string, unknown>,
  options: WebSocket.ClientOptions = {},
): Promise<RawClient> {
  const client = await openRaw(url, 'graphql-transport-ws', options)
  await client.init(payload)
  return client
}

export type UpgradeOutcome =
  | { kind: 'open'; client: RawClient }
  /** The server answered the upgrade with an HTTP response (`unexpected-response`). */
  | { kind: 'refused'; status: number; body: string }
  /** The client itself failed the handshake. */
  | { kind: 'failed'; error: Error; code: number }

/** Attempts an upgrade and reports what a `ws` client observes. */
export function attemptUpgrade(
  url: string,
  protocol: string | string[] = 'graphql-transport-ws',
  options: WebSocket.ClientOptions = {},
): Promise<UpgradeOutcome> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, protocol, options)
    let error: Error | undefined
    socket.once('open', () => resolve({ kind: 'open', client: new RawClient(socket) }))
    socket.once('unexpected-response', (_request, response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (body += chunk))
      response.once('end', () => {
        socket.on('error', () => {})
        socket.terminate()
        resolve({ kind: 'refused', status: response.statusCode ?? 0, body })
      })
    })
    socket.once('error', (err) => (error = err))
    socket.once('close', (code) => {
      if (error) resolve({ kind: 'failed', error, code })
    })
  })
}

/**
 * The server side of every upgrade request the gateway's HTTP server receives, by client port,
 * so tests can see when the gateway really let go of a socket. Listens after the gateway's own
 * `upgrade` listener, so its `close` listeners (the connection counter) run first.
 */
export function trackServerSockets(server: Server) {
  const sockets = new Map<number, Socket>()
  server.on('upgrade', (_request, socket: Socket) => sockets.set(socket.remotePort!, socket))
  const of = (client: RawClient | WebSocket): Socket => {
    const socket = client instanceof RawClient ? client.socket : client
    const port = (socket as unknown as { _socket: Socket })._socket.localPort!
    const serverSocket = sockets.get(port)
    if (!serverSocket) throw new Error(`no server socket for client port ${port}`)
    return serverSocket
  }
  return {
    of,
    /** The server side of the latest upgrade request. */
    get last(): Socket | undefined {
      return [...sockets.values()].at(-1)
    },
    /** Resolves once the server side of `client`'s TCP connection is closed. */
    closed: (client: RawClient | WebSocket) => {
      const socket = of(client)
      return new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve())))
    },
  }
}
