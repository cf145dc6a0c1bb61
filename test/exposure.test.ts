/**
 * What the gateway reveals: the introspection switch (the same on HTTP, SSE and WebSocket),
 * error masking in production, and refusing to start open in production.
 */
import { pino } from 'pino'
import { beforeAll, describe, expect, it } from 'vitest'
import { dataModel, openExampleDatabase } from '../examples/app/database.ts'
import { createGateway } from '../src/gateway.ts'
import { ConfigError } from '../src/errors.ts'
import { connectWs, executeWs, postGraphQL, type GraphQLResponse } from './helpers/clients.ts'
import { missing, useFixture } from './helpers/fixture.ts'
import type { TestGateway } from './helpers/gateway.ts'
import { connectRaw } from './helpers/raw-socket.ts'
const INTROSPECTION = '{ __schema { types { name } } }'

/** POSTs an operation asking for an SSE response, and returns the first `next` event's result. */
async function postSse(url: string, query: string): Promise<GraphQLResponse> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query }),
  })
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
  const text = await response.text()
  const event = text.split('\n\n').find((block) => block.split('\n').includes('event: next'))
  if (!event) throw new Error(`no next event in ${JSON.stringify(text)}`)
  const data = event
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => line.slice('data:'.length).trim())
  return JSON.parse(data.join('\n')) as GraphQLResponse
}

/** The same operation over HTTP, SSE and WebSocket (a raw socket). */
async function overEveryTransport(gateway: TestGateway, query: string) {
  const client = await connectRaw(gateway.wsUrl)
  const ws = await client.execute('op', query)
  await client.close()
  return {
    http: await postGraphQL(gateway.url, query),
    sse: await postSse(gateway.url, query),
    ws: ws.type === 'error' ? { errors: ws.payload } : ws.payload,
  }
}

const messages = (result: GraphQLResponse) => result.errors?.map((error) => error.message)

describe('introspection switch', () => {
  const env = useFixture({ gateways: 0 })
  let closed: TestGateway
  let open: TestGateway
  beforeAll(async () => {
    // Two gateways on one database file: one with introspection off, one with the default.
    closed = await env.startGateway({ introspection: false })
    open = await env.startGateway()
  })

  it('should refuse introspection the same way over HTTP, SSE and WebSocket when introspection is false', async () => {
    const { http, sse, ws } = await overEveryTransport(closed, INTROSPECTION)
    expect(http.data ?? undefined).toBeUndefined()
    expect(messages(http)).toEqual([
      'GraphQL introspection has been disabled, but the requested query contained the field "__schema".',
      'GraphQL introspection has been disabled, but the requested query contained the field "types".',
    ])
    expect(messages(sse)).toEqual(messages(http))
    expect(messages(ws as GraphQLResponse)).toEqual(messages(http))
    // Nothing else is refused.
    expect(await postGraphQL(closed.url, '{ users { id } }')).toEqual({ data: { users: [] } })
    expect(await postGraphQL(closed.url, '{ __typename }')).toEqual({ data: { __typename: 'Query' } })
  })

  it('should answer introspection over HTTP, SSE and WebSocket by default outside production', async () => {
    const { http, sse, ws } = await overEveryTransport(open, INTROSPECTION)
    for (const result of [http, sse, ws] as GraphQLResponse<{ __schema: { types: { name: string }[] } }>[]) {
      expect(result.errors).toBeUndefined()
      expect(result.data!.__schema.types.map((type) => type.name)).toEqual(
        expect.arrayContaining(['User', 'Post', 'RoomMessage']),
      )
    }
  })
})

describe.skipIf(missing('postgresql'))('production', () => {
  // A room policy that throws: a bug of the app, an unexpected error to mask.
  const bug = () => {
    throw new Error('policy bug: secret internal detail')
  }
  const env = useFixture({
    database: 'postgresql',
    gateway: { nodeEnv: 'production', allowOpen: true, policies: { rooms: [{ match: /^buggy$/, broadcast: bug }] } },
  })
  let gateway: TestGateway
  beforeAll(() => {
    gateway = env.gateway
  })

  it('should mask an unexpected error over HTTP and WebSocket, and keep BAD_USER_INPUT messages', async () => {
    const buggy = 'mutation { broadcast(rooms: ["buggy"], event: "x") { recipients } }'
    const http = await postGraphQL(gateway.url, buggy)
    expect(http.data).toBeNull()
    // Nothing of the cause (no message, no stack): a generic message and code.
    expect(http.errors).toEqual([
      {
        message: 'Unexpected error.',
        locations: [{ line: 1, column: 12 }],
        path: ['broadcast'],
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      },
    ])

    const { client, ack } = connectWs(gateway.wsUrl)
    await ack
    const ws = await executeWs(client, buggy)
    expect(ws).toEqual({ data: null, errors: http.errors })

    // The client's own mistakes keep their message and code.
    const badInput = '{ users(take: -1) { id } }'
    const httpBad = await postGraphQL(gateway.url, badInput)
    expect(httpBad.errors).toEqual([
      expect.objectContaining({
        message: 'take must be between 0 and 1000, got -1',
        extensions: { code: 'BAD_USER_INPUT' },
      }),
    ])
    expect((await executeWs(client, badInput)).errors).toEqual(httpBad.errors)
    await client.dispose()
  })

  it('should answer UNAVAILABLE, naming the database and nothing internal, when the database goes away', async () => {
    // Working at first; then the database goes away under the running gateway.
    expect(await postGraphQL(gateway.url, '{ users { id } }')).toEqual({ data: { users: [] } })
    await env.database.drop()
    const http = await postGraphQL(gateway.url, '{ users { id } }')
    expect(http).toEqual({
      data: null,
      errors: [
        {
          message: 'the database does not exist',
          locations: [{ line: 1, column: 3 }],
          path: ['users'],
          extensions: { code: 'UNAVAILABLE', service: 'database', retryable: true },
        },
      ],
    })
    const { client, ack } = connectWs(gateway.wsUrl)
    await ack
    expect(await executeWs(client, '{ users { id } }')).toEqual(http)
    await client.dispose()
  })

  it('should refuse introspection by default in production', async () => {
    const { http, ws } = await overEveryTransport(gateway, INTROSPECTION)
    expect(messages(http)?.[0]).toMatch(/^GraphQL introspection has been disabled/)
    expect(messages(ws as GraphQLResponse)).toEqual(messages(http))
  })
})

/** A gateway start that is expected to be refused: its client is lazy, and a refused start never makes the first query that would open it. */
async function attempt(options: Partial<Parameters<typeof createGateway>[0]>) {
  const { prisma } = await openExampleDatabase('file:/nonexistent/never-opened.db', { migrate: false })
  return createGateway({ prisma, dataModel, logger: pino({ level: 'silent' }), port: 0, host: '127.0.0.1', ...options })
}

describe('options that would leave the gateway less protected than they say', () => {
  it('should refuse a JWT secret shorter than 32 characters, as MIZZEN_JWT_SECRET does', async () => {
    await expect(attempt({ auth: { jwtSecret: 'short' } })).rejects.toMatchObject({
      setting: 'auth.jwtSecret',
      message: expect.stringContaining('at least 32 characters'),
    })
    await expect(attempt({ auth: { jwtSecret: 'x'.repeat(31) } })).rejects.toBeInstanceOf(ConfigError)
  })

  it('should refuse policies for a model the data model does not have, naming it and the models', async () => {
    const refused = attempt({ policies: { models: { Post: { read: 'anonymous' }, Mesage: { read: 'anonymous' } } } })
    await expect(refused).rejects.toBeInstanceOf(ConfigError)
    await expect(refused).rejects.toMatchObject({
      setting: 'policies.models',
      message: expect.stringMatching(/"Mesage" is not a model of the data model \(its models: .*Post.*\)/),
    })
  })
})

describe('production without credentials', () => {
  it('should refuse to start in production with no credentials, with a ConfigError naming MIZZEN_API_KEYS', async () => {
    const refused = attempt({ nodeEnv: 'production' })
    await expect(refused).rejects.toBeInstanceOf(ConfigError)
    await expect(refused).rejects.toMatchObject({
      setting: 'MIZZEN_API_KEYS',
      message: expect.stringContaining('MIZZEN_API_KEYS'),
    })
  })
})
