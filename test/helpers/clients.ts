/** Real clients for tests: HTTP (fetch), graphql-ws on `ws`, and a raw WebSocket. */
import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws'

export type ExecutionResult<T> = FormattedExecutionResult<T, unknown>
import WebSocket from 'ws'

export interface GraphQLResponse<T = Record<string, unknown>> {
  data?: T | null
  errors?: { message: string; extensions?: { code?: string } & Record<string, unknown> }[]
}

/** POSTs one operation and returns the parsed body (whatever the status). */
export async function postGraphQL<T = Record<string, any>>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...headers,
    },
    body: JSON.stringify({ query, variables }),
  })
  return (await response.json()) as GraphQLResponse<T>
}

export interface WsClient {
  readonly client: Client
  /** The payload of `connection_ack`. */
  readonly ack: Promise<Record<string, unknown> | undefined>
  /** Resolves with the close event's code when the socket closes. */
  readonly closed: Promise<number>
}

/** A graphql-ws client that connects now and does not retry, so tests see every close. */
export function connectWs(url: string, connectionParams?: Record<string, unknown>): WsClient {
  let onAck!: (payload: Record<string, unknown> | undefined) => void
  let onClosed!: (code: number) => void
  const ack = new Promise<Record<string, unknown> | undefined>((resolve) => (onAck = resolve))
  const closed = new Promise<number>((resolve) => (onClosed = resolve))
  const client = createClient({
    url,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    connectionParams,
    on: {
      connected: (_socket, payload) => onAck(payload as Record<string, unknown> | undefined),
      closed: (event) => onClosed((event as { code: number }).code),
    },
    onNonLazyError: () => {},
  })
  return { client, ack, closed }
}

/** Runs a query or mutation over graphql-ws and returns its single result. */
export function executeWs<T = Record<string, any>>(
  client: Client,
  query: string,
  variables?: Record<string, unknown>,
): Promise<ExecutionResult<T>> {
  return new Promise((resolve, reject) => {
    let result: ExecutionResult<T> | undefined
    client.subscribe<T>(
      { query, variables },
      {
        next: (value) => (result = value),
        error: reject,
        complete: () => (result ? resolve(result) : reject(new Error('completed with no result'))),
      },
    )
  })
}

/** A subscription whose events are collected and awaited one by one. */
export interface Subscription<T> {
  /** Resolves with the next event (or rejects after `timeoutMs`). */
  next(timeoutMs?: number): Promise<ExecutionResult<T>>
  /** Every event received so far, consumed or not. */
  readonly received: ExecutionResult<T>[]
  /** Resolves when the server completes the subscription. */
  readonly completed: Promise<void>
  /** Stops the subscription from the client side. */
  stop(): void
}

export function subscribeWs<T = Record<string, any>>(
  client: Client,
  query: string,
  variables?: Record<string, unknown>,
): Subscription<T> {
  const received: ExecutionResult<T>[] = []
  const waiting: ((value: ExecutionResult<T>) => void)[] = []
  let consumed = 0
  let onComplete!: () => void
  const completed = new Promise<void>((resolve) => (onComplete = resolve))
  const stop = client.subscribe<T>(
    { query, variables },
    {
      next: (value) => {
        received.push(value)
        const waiter = waiting.shift()
        if (waiter) {
          consumed++
          waiter(value)
        }
      },
      error: (error) => {
        received.push({
          errors: Array.isArray(error) ? error : [{ message: String((error as Error).message ?? error) }],
        } as ExecutionResult<T>)
        onComplete()
      },
      complete: onComplete,
    },
  )
  return {
    received,
    completed,
    stop,
    next(timeoutMs = 5000) {
      if (consumed < received.length) return Promise.resolve(received[consumed++]!)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no event within ${timeoutMs} ms for ${query.trim().split('\n')[0]}`)),
          timeoutMs,
        )
        waiting.push((value) => {
          clearTimeout(timer)
          resolve(value)
        })
      })
    },
  }
}

/** Resolves with the next message of a raw socket, parsed as JSON. */
export function waitForMessage(socket: WebSocket, timeoutMs = 5000): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message')), timeoutMs)
    socket.once('message', (data) => {
      clearTimeout(timer)
      resolve(JSON.parse(String(data)))
    })
  })
}

/** Resolves with the close code of a raw socket. */
export function waitForClose(socket: WebSocket, timeoutMs = 5000): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    if (socket.readyState === WebSocket.CLOSED) return reject(new Error('already closed'))
    const timer = setTimeout(() => reject(new Error('socket did not close')), timeoutMs)
    socket.once('close', (code, reason) => {
      clearTimeout(timer)
      resolve({ code, reason: String(reason) })
    })
  })
}

/** Opens a raw graphql-transport-ws socket (or another subprotocol) and waits for it to open. */
export function openRawSocket(
  url: string,
  protocol: string | string[] = 'graphql-transport-ws',
  options: WebSocket.ClientOptions = {},
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocol, options)
    socket.once('open', () => resolve(socket))
    socket.once('error', reject)
  })
}
