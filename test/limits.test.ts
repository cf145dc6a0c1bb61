/**
 * Limits against hostile input on an open connection: frames over maxPayload, oversized
 * queries, too many subscriptions, message floods and slow consumers. Each test also checks
 * that other connections keep working.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { postGraphQL } from './helpers/clients.ts'
import { databaseKinds, type TestDatabase } from './helpers/databases.ts'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { connectRaw, type RawClient, trackServerSockets } from './helpers/raw-socket.ts'
import { settled } from './helpers/rooms.ts'
import type { GatewayOptions } from '../src/gateway.ts'

const sqlite = databaseKinds.find((kind) => kind.provider === 'sqlite')!
const MESSAGES = 'subscription { messages { event } }'
const BLAST = 'mutation($event: String!, $data: JSON) { blast(event: $event, data: $data) { recipients } }'

/** A gateway of its own for one describe block, with its raw clients closed after each test. */
function useGateway(options: GatewayOptions) {
  const context = {} as { gateway: TestGateway; database: TestDatabase; servers: ReturnType<typeof trackServerSockets> }
  const clients: RawClient[] = []
  beforeAll(async () => {
    context.database = await sqlite.create()
    context.gateway = await startGateway(context.database, options)
    context.servers = trackServerSockets(context.gateway.server)
  })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()))
  })
  afterAll(async () => {
    await context.gateway?.close()
    await context.database?.drop()
  })
  return Object.assign(context, {
    async connect(): Promise<RawClient> {
      const client = await connectRaw(context.gateway.wsUrl)
      clients.push(client)
      return client
    },
  })
}

const usersQuery = '{ users { id } }'

/** Proves a connection still works: a ping round trip and a query. */
async function stillWorks(client: RawClient): Promise<void> {
  await client.roundTrip()
  const id = `check-${Math.random().toString(36).slice(2)}`
  expect(await client.execute(id, usersQuery)).toMatchObject({ type: 'next', payload: { data: { users: expect.any(Array) } } })
}

describe('max payload', () => {
  const env = useGateway({ limits: { maxPayloadBytes: 1024 } })

  it('should close with 1009 a socket that sends a frame over maxPayloadBytes, and keep other connections working', async () => {
    const [big, other] = await Promise.all([env.connect(), env.connect()])
    // Observed, not replaced: the refusal is the client's fault, not an internal error on stderr.
    const consoleError = vi.spyOn(console, 'error')
    try {
      big.subscribe('big', `{ __typename ${'#'.repeat(2048)}\n }`)
      expect((await big.closed).code).toBe(1009)
      expect(consoleError).not.toHaveBeenCalled()
    } finally {
      consoleError.mockRestore()
    }
    expect(big.received.filter((m) => m.id === 'big')).toEqual([])
    await stillWorks(other)
  })

  it('should accept a frame just under maxPayloadBytes', async () => {
    const client = await env.connect()
    const query = `{ __typename }${' '.repeat(900)}`
    expect(await client.execute('fits', query)).toEqual({ id: 'fits', type: 'next', payload: { data: { __typename: 'Query' } } })
  })
})

describe('message rate', () => {
  const env = useGateway({ limits: { maxMessagesPerSecond: 20 } })

  it('should close with 1008 a connection that floods pings, and keep other connections working', async () => {
    const [flooder, other] = await Promise.all([env.connect(), env.connect()])
    for (let i = 0; i < 500; i++) flooder.send({ type: 'ping', payload: { i } })
    expect(await flooder.closed).toEqual({ code: 1008, reason: 'Too many messages' })
    // Whatever was answered came before the limit (at most two one-second windows of it).
    expect(flooder.received.filter((m) => m.type === 'pong').length).toBeLessThanOrEqual(40)
    await stillWorks(other)
  })

  it('should run none of the messages that arrive after the limit closed the connection', async () => {
    const flooder = await env.connect()
    const flood = 200
    for (let i = 0; i < flood; i++) {
      flooder.subscribe(`w${i}`, `mutation { createUser(data: { email: "flood${i}@example.com", name: "F" }) { id } }`)
    }
    expect((await flooder.closed).code).toBe(1008)
    const { data } = await postGraphQL<{ users: { email: string }[] }>(env.gateway.url, '{ users { email } }')
    const created = data!.users.filter((user) => user.email.startsWith('flood')).length
    // The limit admits 20 messages a second (the init was one of them); a flood spanning a window
    // boundary could get two windows' worth, never the rest.
    expect(created).toBeGreaterThan(0)
    expect(created).toBeLessThanOrEqual(40)
  })

  it('should count WebSocket ping frames too, closing a flood of them with 1008', async () => {
    const [flooder, other] = await Promise.all([env.connect(), env.connect()])
    for (let i = 0; i < 500; i++) flooder.socket.ping(Buffer.from(`ping ${i}`))
    expect((await flooder.closed).code).toBe(1008)
    await stillWorks(other)
  })
})
