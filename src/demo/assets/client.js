// A small graphql-transport-ws client for the browser demo (the protocol:
// https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md), and a GraphQL-over-HTTP helper.
// One socket; connection_init carries the token; subscriptions end when the socket closes, and the
// client reconnects (with backoff) and says so, so that the page subscribes again.

/** Reconnection delays, in ms: 0.5 s, 1 s, 2 s, … at most 10 s. */
const backoff = (attempt) => Math.min(500 * 2 ** attempt, 10_000)

export class GraphQLWsClient {
  /**
   * @param {string} url ws:// or wss:// URL of the GraphQL endpoint
   * @param {{ token?: () => string, onConnected?: (connectionId: string) => void, onClosed?: (code: number, reason: string) => void }} options
   */
  constructor(url, options = {}) {
    this.url = url
    this.options = options
    this.socket = undefined
    this.connectionId = undefined
    this.operations = new Map()
    this.nextId = 1
    this.attempt = 0
    this.stopped = false
  }

  /** Opens the socket (again after a close, unless `close()` was called). */
  connect() {
    if (this.stopped) return
    const socket = new WebSocket(this.url, 'graphql-transport-ws')
    this.socket = socket
    socket.onopen = () => {
      const token = this.options.token?.()
      socket.send(
        JSON.stringify({ type: 'connection_init', payload: token ? { authorization: `Bearer ${token}` } : {} }),
      )
    }
    socket.onmessage = (event) => this.#receive(JSON.parse(event.data))
    socket.onclose = (event) => {
      if (this.socket !== socket) return
      this.socket = undefined
      this.connectionId = undefined
      // The server forgets every operation with the socket: their sinks hear that they ended.
      this.#dropOperations()
      this.options.onClosed?.(event.code, event.reason)
      // 4403: refused credentials (a new token reconnects); otherwise try again.
      if (!this.stopped && event.code !== 4403) setTimeout(() => this.connect(), backoff(this.attempt++))
    }
  }

  /** Every operation ended with the socket: `closed()` on each sink. */
  #dropOperations() {
    const operations = [...this.operations.values()]
    this.operations.clear()
    for (const sink of operations) sink.closed?.()
  }

  #receive(message) {
    switch (message.type) {
      case 'connection_ack':
        this.attempt = 0
        this.connectionId = message.payload?.connectionId
        this.options.onConnected?.(this.connectionId)
        return
      case 'ping':
        this.socket?.send(JSON.stringify({ type: 'pong' }))
        return
      case 'next':
        this.operations.get(message.id)?.next?.(message.payload)
        return
      case 'error': {
        const sink = this.operations.get(message.id)
        this.operations.delete(message.id)
        sink?.error?.(message.payload)
        return
      }
      case 'complete': {
        const sink = this.operations.get(message.id)
        this.operations.delete(message.id)
        sink?.complete?.()
        return
      }
    }
  }

  /**
   * Starts an operation on the open connection (call it from `onConnected`).
   * @returns a function that completes it
   */
  subscribe(query, variables, sink) {
    const id = String(this.nextId++)
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN || !this.connectionId) {
      sink.error?.([{ message: 'not connected' }])
      return () => {}
    }
    this.operations.set(id, sink)
    this.socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }))
    return () => {
      if (!this.operations.delete(id)) return
      if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ id, type: 'complete' }))
    }
  }

  /** Closes the socket for good. */
  close() {
    this.stopped = true
    this.socket?.close(1000, 'bye')
  }

  /** Closes the socket and opens a new one (a new token). */
  reconnect() {
    const socket = this.socket
    this.attempt = 0
    if (socket) {
      socket.onclose = null
      this.socket = undefined
      this.connectionId = undefined
      this.#dropOperations()
      socket.close(1000, 'reconnecting')
    }
    this.connect()
  }
}

/** POSTs a query or mutation; resolves its `data`, rejects with its first error. */
export async function request(url, query, variables, token) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) })
  const result = await response.json()
  if (result.errors?.length) throw new Error(result.errors.map((error) => error.message).join('; '))
  return result.data
}
