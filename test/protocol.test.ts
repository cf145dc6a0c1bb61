/**
 * graphql-transport-ws conformance, one test per rule, observed with a raw `ws` client that
 * speaks the protocol by hand (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md).
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { postGraphQL } from './helpers/clients.ts'
import { useFixture } from './helpers/fixture.ts'
import type { TestGateway } from './helpers/gateway.ts'
import { attemptUpgrade, connectRaw, openRaw, type RawClient } from './helpers/raw-socket.ts'
import { settled } from './helpers/rooms.ts'

const MESSAGES = 'subscription { messages { event data } }'

const env = useFixture()
let gateway: TestGateway

/** A raw socket, closed after the test. */
const raw = (kind: 'open' | 'acked' = 'acked', payload?: Record<string, unknown>): Promise<RawClient> =>
  kind === 'acked' ? env.connectRaw({ payload }) : env.openRaw()

beforeAll(() => {
  gateway = env.gateway
})

describe('connection_init and connection_ack', () => {
  it('should answer connection_init with connection_ack carrying { connectionId }', async () => {
    const client = await raw('open')
    client.send({ type: 'connection_init' })
    const ack = await client.next()
    expect(ack).toEqual({ type: 'connection_ack', payload: { connectionId: expect.stringMatching(/^[0-9a-f-]{36}$/) } })
  })

  it('should close with 4429 on a second connection_init after the ack', async () => {
    const client = await raw()
    client.send({ type: 'connection_init' })
    expect(await client.closed).toEqual({ code: 4429, reason: 'Too many initialisation requests' })
  })

  it('should close with 4429 on two connection_init sent back to back, before any ack', async () => {
    const client = await raw('open')
    client.send({ type: 'connection_init' })
    client.send({ type: 'connection_init' })
    expect((await client.closed).code).toBe(4429)
  })
})

describe('invalid messages (4400)', () => {
  it('should close with 4400 on a frame that is not JSON, and keep other connections working', async () => {
    const [bad, good] = await Promise.all([raw(), raw()])
    bad.send('{"type": "subscribe", "id": ')
    expect(await bad.closed).toEqual({ code: 4400, reason: 'Invalid message received' })
    await good.roundTrip()
  })

  it('should close with 4400 on a JSON frame that is not a message object', async () => {
    const client = await raw()
    client.send('[1, 2, 3]')
    expect((await client.closed).code).toBe(4400)
  })

  it('should close with 4400 on a message of unknown type', async () => {
    const client = await raw()
    client.send({ type: 'start', id: '1', payload: { query: '{ __typename }' } } as never)
    expect(await client.closed).toEqual({ code: 4400, reason: 'Invalid message received' })
  })

  it('should close with 4400 on a subscribe message without a query', async () => {
    const client = await raw()
    client.send({ type: 'subscribe', id: '1', payload: {} })
    expect((await client.closed).code).toBe(4400)
  })

  it('should close with 4400 on a binary frame, even one holding a valid message, and run nothing from it', async () => {
    const client = await raw()
    const before = await postGraphQL<{ users: unknown[] }>(gateway.url, '{ users { id } }')
    const mutation = {
      type: 'subscribe',
      id: 'm',
      payload: { query: 'mutation { createUser(data: { email: "binary@example.com", name: "B" }) { id } }' },
    }
    client.send(Buffer.from(JSON.stringify(mutation)), { binary: true })
    expect((await client.closed).code).toBe(4400)
    expect(client.received).toEqual([{ type: 'connection_ack', payload: expect.anything() }])
    expect(await postGraphQL(gateway.url, '{ users { id } }')).toEqual(before)
  })

  it('should close with 4400 on a binary connection_init before the ack', async () => {
    const client = await raw('open')
    client.send(Buffer.from(JSON.stringify({ type: 'connection_init' })), { binary: true })
    expect((await client.closed).code).toBe(4400)
    expect(client.received).toEqual([])
  })
})

describe('invalid frames (refused by ws)', () => {
  it('should close with 1007 on a text frame that is not UTF-8, and keep other connections working', async () => {
    const [bad, good] = await Promise.all([raw(), raw()])
    bad.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false })
    expect((await bad.closed).code).toBe(1007)
    await good.roundTrip()
  })
})

describe('subscribe before connection_ack (4401)', () => {
  it('should close with 4401 on a subscribe sent before connection_init', async () => {
    const client = await raw('open')
    client.subscribe('1', '{ __typename }')
    expect(await client.closed).toEqual({ code: 4401, reason: 'Unauthorized' })
    expect(client.received).toEqual([])
  })
})

describe('refused credentials (4403)', () => {
  let secured: TestGateway
  beforeAll(async () => {
    secured = await env.startGateway({ auth: { apiKeys: ['k'] } })
  })

  it('should close with 4403 when connection_init carries a wrong key, and acknowledge the right one', async () => {
    const refused = await openRaw(secured.wsUrl)
    refused.send({ type: 'connection_init', payload: { authorization: 'Bearer wrong' } })
    expect(await refused.closed).toEqual({ code: 4403, reason: 'Forbidden' })
    expect(refused.received).toEqual([])

    const accepted = await connectRaw(secured.wsUrl, { authorization: 'Bearer k' })
    expect(await accepted.execute('1', '{ __typename }')).toEqual({
      id: '1',
      type: 'next',
      payload: { data: { __typename: 'Query' } },
    })
    await accepted.close()
  })

  it('should close with 4403 when the authorization is not a Bearer value', async () => {
    const refused = await openRaw(secured.wsUrl)
    refused.send({ type: 'connection_init', payload: { authorization: 'k' } })
    expect((await refused.closed).code).toBe(4403)
  })
})

describe('subprotocol (4406)', () => {
  // graphql-ws's useServer on `ws` completes the upgrade without choosing a subprotocol when
  // the client offers none it knows, then closes the socket with 4406. What a client sees depends
  // on what it offered: per RFC 6455 a client that offered subprotocols must fail a handshake
  // whose response selects none, so `ws` (like browsers) never opens and sees 1006; a client
  // that offered none opens and then receives the 4406 close.
  it('should fail the handshake of a client offering only the legacy graphql-ws subprotocol (it sees 1006), and free the server socket', async () => {
    const outcome = await attemptUpgrade(gateway.wsUrl, 'graphql-ws')
    expect(outcome).toMatchObject({ kind: 'failed', code: 1006, error: { message: 'Server sent no subprotocol' } })
    const serverSocket = env.servers.last!
    await new Promise<void>((resolve) =>
      serverSocket.closed ? resolve() : serverSocket.once('close', () => resolve()),
    )
  })

  it('should close with 4406 a client that offers no subprotocol', async () => {
    const outcome = await attemptUpgrade(gateway.wsUrl, [])
    expect(outcome.kind).toBe('open')
    const client = (outcome as { client: RawClient }).client
    expect(client.socket.protocol).toBe('')
    expect(await client.closed).toEqual({ code: 4406, reason: 'Subprotocol not acceptable' })
  })

  it('should choose graphql-transport-ws when a client offers it among others', async () => {
    const outcome = await attemptUpgrade(gateway.wsUrl, ['graphql-ws', 'graphql-transport-ws'])
    expect(outcome.kind).toBe('open')
    const client = (outcome as { client: RawClient }).client
    env.defer(() => client.close())
    expect(client.socket.protocol).toBe('graphql-transport-ws')
    await client.init()
    await client.roundTrip()
  })
})

describe('connection_init timeout (4408)', () => {
  let strict: TestGateway
  beforeAll(async () => {
    strict = await env.startGateway({ limits: { connectionInitTimeoutMs: 200 } })
  })

  it('should close with 4408 a socket that sends no connection_init, and leave an initialised one open', async () => {
    const [silent, initialised] = await Promise.all([openRaw(strict.wsUrl), connectRaw(strict.wsUrl)])
    expect(await silent.closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' })
    // The initialised socket, opened at the same time, outlived the timeout.
    await initialised.roundTrip()
    expect(await initialised.execute('1', '{ __typename }')).toMatchObject({ type: 'next' })
    await initialised.close()
  })

  it('should close with 4408 a socket that only pings', async () => {
    const client = await openRaw(strict.wsUrl)
    await client.roundTrip()
    expect((await client.closed).code).toBe(4408)
  })
})

describe('duplicate operation id (4409)', () => {
  it('should close with 4409 on a subscribe reusing the id of an active subscription', async () => {
    const client = await raw()
    client.subscribe('dup', MESSAGES)
    client.subscribe('dup', MESSAGES)
    expect(await client.closed).toEqual({ code: 4409, reason: 'Subscriber for dup already exists' })
  })

  it('should close with 4409 on an id reused before the subscription the client completed wound down, leaking nothing', async () => {
    const client = await raw()
    const before = gateway.hub.subscriberCount
    client.subscribe('reused', MESSAGES)
    await settled(() => expect(gateway.hub.subscriberCount).toBe(before + 1))
    // In one write: graphql-ws forgets the id on complete, but the first operation is still
    // winding down when the second subscribe comes.
    client.send({ type: 'complete', id: 'reused' })
    client.subscribe('reused', MESSAGES)
    expect(await client.closed).toEqual({ code: 4409, reason: 'Subscriber for reused already exists' })
    expect(client.received.filter((m) => m.id === 'reused')).toEqual([])
    await settled(() => expect(gateway.hub.subscriberCount).toBe(before))
  })

  it('should accept an id again once its operation completed', async () => {
    const client = await raw()
    expect(await client.execute('again', '{ __typename }')).toMatchObject({ type: 'next' })
    expect(await client.execute('again', '{ __typename }')).toMatchObject({ type: 'next' })
    expect(client.isOpen).toBe(true)
  })
})

describe('ping and pong', () => {
  it('should answer ping with a pong carrying the same payload, and nothing else', async () => {
    const client = await raw()
    client.send({ type: 'ping', payload: { seq: 1, note: 'hello' } })
    expect(await client.next()).toEqual({ type: 'pong', payload: { seq: 1, note: 'hello' } })
    client.send({ type: 'ping' })
    expect(await client.next()).toEqual({ type: 'pong' })
    expect(client.received.filter((m) => m.type !== 'connection_ack')).toEqual([
      { type: 'pong', payload: { seq: 1, note: 'hello' } },
      { type: 'pong' },
    ])
  })

  it('should answer a WebSocket ping frame with a pong frame carrying the same data', async () => {
    const client = await raw()
    const pong = new Promise<Buffer>((resolve) => client.socket.once('pong', resolve))
    client.socket.ping(Buffer.from('are you there'))
    expect((await pong).toString()).toBe('are you there')
    expect(client.isOpen).toBe(true)
  })

  it('should read messages split across TCP writes, and several in one write', async () => {
    const client = await raw()
    // A masked client text frame (RFC 6455 §5.2), written to the TCP socket by hand.
    const frame = (message: object) => {
      const payload = Buffer.from(JSON.stringify(message))
      const mask = Buffer.from([1, 2, 3, 4])
      const masked = payload.map((byte, i) => byte ^ mask[i % 4]!)
      return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked])
    }
    const tcp = (client.socket as unknown as { _socket: import('node:net').Socket })._socket
    const split = frame({ type: 'ping', payload: { part: 'split' } })
    tcp.write(split.subarray(0, 9))
    await new Promise((resolve) => setTimeout(resolve, 20))
    tcp.write(split.subarray(9))
    expect(await client.next()).toEqual({ type: 'pong', payload: { part: 'split' } })
    tcp.write(Buffer.concat([frame({ type: 'ping', payload: { n: 1 } }), frame({ type: 'ping', payload: { n: 2 } })]))
    expect(await client.next()).toEqual({ type: 'pong', payload: { n: 1 } })
    expect(await client.next()).toEqual({ type: 'pong', payload: { n: 2 } })
    expect(client.isOpen).toBe(true)
  })

  it('should answer ping before connection_init', async () => {
    const client = await raw('open')
    client.send({ type: 'ping', payload: { early: true } })
    expect(await client.next()).toEqual({ type: 'pong', payload: { early: true } })
  })

  it('should not answer a pong', async () => {
    const client = await raw()
    client.send({ type: 'pong', payload: { unsolicited: true } })
    client.send({ type: 'ping', payload: { after: true } })
    // Messages are handled in order: had the pong been answered, that answer would come first.
    expect(await client.next()).toEqual({ type: 'pong', payload: { after: true } })
    expect(client.received.map((m) => m.type)).toEqual(['connection_ack', 'pong'])
    expect(client.isOpen).toBe(true)
  })
})

describe('complete', () => {
  const blast = async (event: string) => {
    const result = await postGraphQL(gateway.url, 'mutation($event: String!) { blast(event: $event) { recipients } }', {
      event,
    })
    expect(result.errors).toBeUndefined()
  }

  it('should stop a subscription the client completes: nothing more is sent for its id, not even complete', async () => {
    const client = await raw()
    const before = gateway.hub.subscriberCount
    client.subscribe('stopped', MESSAGES)
    client.subscribe('kept', MESSAGES)
    await settled(() => expect(gateway.hub.subscriberCount).toBe(before + 2))
    await blast('first')
    expect((await client.nextFor('stopped', 'next')).payload).toEqual({
      data: { messages: { event: 'first', data: null } },
    })
    expect((await client.nextFor('kept', 'next')).payload).toEqual({
      data: { messages: { event: 'first', data: null } },
    })

    client.send({ type: 'complete', id: 'stopped' })
    await settled(() => expect(gateway.hub.subscriberCount).toBe(before + 1))
    await blast('second')
    expect((await client.nextFor('kept', 'next')).payload).toEqual({
      data: { messages: { event: 'second', data: null } },
    })
    await client.roundTrip()
    expect(client.received.filter((m) => m.id === 'stopped')).toEqual([
      { id: 'stopped', type: 'next', payload: { data: { messages: { event: 'first', data: null } } } },
    ])
  })

  it('should let a client complete an id the server does not know, without closing', async () => {
    const client = await raw()
    client.send({ type: 'complete', id: 'never-subscribed' })
    await client.roundTrip()
    expect(client.isOpen).toBe(true)
  })

  it('should send complete after the single result of a query', async () => {
    const client = await raw()
    client.subscribe('q', '{ __typename }')
    expect(await client.nextFor('q')).toEqual({ id: 'q', type: 'next', payload: { data: { __typename: 'Query' } } })
    expect(await client.nextFor('q')).toEqual({ id: 'q', type: 'complete' })
  })

  it('should send complete when the server ends a subscription (leave ends a room subscription)', async () => {
    const client = await raw()
    const { connection } = (await client.execute('who', '{ connection { id } }')).payload.data
    const before = gateway.hub.subscriberCount
    client.subscribe('room', 'subscription { room(name: "lobby") { event } }')
    await settled(() => expect(gateway.hub.subscriberCount).toBe(before + 1))
    const left = await postGraphQL(
      gateway.url,
      'mutation($id: ID!) { leave(connectionId: $id, room: "lobby") { memberCount } }',
      { id: connection.id },
    )
    expect(left).toEqual({ data: { leave: { memberCount: 0 } } })
    expect(await client.nextFor('room')).toEqual({ id: 'room', type: 'complete' })
    expect(client.isOpen).toBe(true)
  })

  it('should send error and no complete for an operation that fails validation', async () => {
    const client = await raw()
    client.subscribe('bad', '{ nope }')
    const error = await client.nextFor('bad')
    expect(error).toMatchObject({
      id: 'bad',
      type: 'error',
      payload: [{ message: expect.stringMatching(/Cannot query field "nope"/) }],
    })
    await client.roundTrip()
    expect(client.received.filter((m) => m.id === 'bad')).toHaveLength(1)
  })
})

describe('shutdown (1001)', () => {
  it('should close every open socket with 1001 when the gateway stops', async () => {
    const own = await env.startGateway()
    const acked = await connectRaw(own.wsUrl)
    const pending = await openRaw(own.wsUrl)
    acked.subscribe('s', MESSAGES)
    await settled(() => expect(own.hub.subscriberCount).toBe(1))
    await own.close()
    expect(await acked.closed).toEqual({ code: 1001, reason: 'Server shutting down' })
    expect((await pending.closed).code).toBe(1001)
  })
})
