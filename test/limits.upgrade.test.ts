/**
 * Limits applied at the WebSocket upgrade, before any handshake: the path, the Origin allowlist
 * and the connection limits (global and per IP address). A refusal is an HTTP response, which a
 * `ws` client reports as `unexpected-response` with its status code.
 */
import { describe, expect, it } from 'vitest'
import { useFixture } from './helpers/fixture.ts'
import { attemptUpgrade, type RawClient } from './helpers/raw-socket.ts'

describe('connection limits', () => {
  const env = useFixture({ gateway: { limits: { maxConnections: 3, maxConnectionsPerIp: 2 } } })

  it('should refuse with 429 a connection over maxConnectionsPerIp and with 503 one over maxConnections, keep the others working, and count closed ones out', async () => {
    const { servers } = env
    const a1 = await env.connectRaw({ localAddress: '127.0.0.1' })
    const a2 = await env.connectRaw({ localAddress: '127.0.0.1' })
    expect(await env.attempt({ localAddress: '127.0.0.1' })).toEqual({
      kind: 'refused',
      status: 429,
      body: 'too many connections from this address\n',
    })

    // Another address still may, up to the global limit.
    const b1 = await env.connectRaw({ localAddress: '127.0.0.2' })
    expect(await env.attempt({ localAddress: '127.0.0.2' })).toEqual({
      kind: 'refused',
      status: 503,
      body: 'too many connections\n',
    })
    expect(await env.attempt({ localAddress: '127.0.0.3' })).toMatchObject({ kind: 'refused', status: 503 })
    for (const client of [a1, a2, b1]) await client.roundTrip()

    // Closing one frees its place in both counts (once the gateway's side of it closed).
    const a1Closed = servers.closed(a1)
    await a1.close()
    await a1Closed
    const a3 = await env.connectRaw({ localAddress: '127.0.0.1' })
    await a3.roundTrip()
    expect(await env.attempt({ localAddress: '127.0.0.4' })).toMatchObject({ kind: 'refused', status: 503 })

    // All closed: the counts are back to zero, and the whole allowance is there again.
    const allClosed = [a2, b1, a3].map((client) => servers.closed(client))
    await Promise.all([a2, b1, a3].map((client) => client.close()))
    await Promise.all(allClosed)
    const again = [
      await env.connectRaw({ localAddress: '127.0.0.1' }),
      await env.connectRaw({ localAddress: '127.0.0.1' }),
      await env.connectRaw({ localAddress: '127.0.0.5' }),
    ]
    for (const client of again) await client.roundTrip()
  })

  it('should count out sockets that never became graphql-ws connections (refused handshake, no init, refused subprotocol)', async () => {
    const { gateway, servers } = env
    // Five of each, against a limit of three: had one of them stayed counted, the last connects would fail.
    for (let i = 0; i < 5; i++) {
      const legacy = await attemptUpgrade(gateway.wsUrl, 'graphql-ws')
      expect(legacy.kind).toBe('failed')
      await new Promise<void>((resolve) =>
        servers.last!.closed ? resolve() : servers.last!.once('close', () => resolve()),
      )

      const uninitialised = await env.attempt()
      expect(uninitialised.kind).toBe('open')
      const client = (uninitialised as { client: RawClient }).client
      const closed = servers.closed(client)
      await client.close()
      await closed
    }
    const clients = [
      await env.connectRaw({ localAddress: '127.0.0.1' }),
      await env.connectRaw({ localAddress: '127.0.0.1' }),
      await env.connectRaw({ localAddress: '127.0.0.2' }),
    ]
    for (const client of clients) await client.roundTrip()
  })
})

describe('Origin allowlist', () => {
  const env = useFixture({ gateway: { allowedOrigins: ['https://app.example'] } })

  it('should refuse with 403 an upgrade from an Origin not in allowedOrigins, and accept an allowed one', async () => {
    const allowed = await env.attempt({ origin: 'https://app.example' })
    expect(allowed.kind).toBe('open')
    const client = (allowed as { client: RawClient }).client
    await client.init()

    expect(await env.attempt({ origin: 'https://evil.example' })).toEqual({
      kind: 'refused',
      status: 403,
      body: 'origin https://evil.example is not allowed\n',
    })
    // A look-alike is not the allowed origin.
    expect(await env.attempt({ origin: 'https://app.example.evil.example' })).toMatchObject({
      kind: 'refused',
      status: 403,
    })
    expect(await client.execute('q', '{ __typename }')).toEqual({
      id: 'q',
      type: 'next',
      payload: { data: { __typename: 'Query' } },
    })
  })

  it('should refuse with 403 an upgrade with no Origin once an allowlist is set', async () => {
    // Browsers always send Origin; a backend must send an allowed one (or run on a gateway without
    // an allowlist). Without an allowlist every Origin, and none, is accepted (tested elsewhere).
    expect(await env.attempt()).toEqual({ kind: 'refused', status: 403, body: 'origin (none) is not allowed\n' })
  })
})

describe('endpoint path', () => {
  const env = useFixture()

  it('should refuse with 404 an upgrade on another path, and keep the endpoint working', async () => {
    expect(await env.attempt({ path: '/nope' })).toEqual({
      kind: 'refused',
      status: 404,
      body: 'no WebSocket endpoint at /nope\n',
    })
    expect(await env.attempt({ path: '/graphql/extra' })).toMatchObject({ kind: 'refused', status: 404 })
    expect(await env.attempt({ path: '/health' })).toMatchObject({ kind: 'refused', status: 404 })
    const client = await env.connectRaw()
    await client.roundTrip()
  })

  it('should accept the endpoint with a query string', async () => {
    const outcome = await env.attempt({ path: '/graphql?client=test' })
    expect(outcome.kind).toBe('open')
    await (outcome as { client: RawClient }).client.init()
  })

  it('should accept any Origin, and none, without an allowlist', async () => {
    for (const origin of [undefined, 'https://anywhere.example']) {
      const outcome = await env.attempt({ origin })
      expect(outcome.kind).toBe('open')
    }
  })
})
