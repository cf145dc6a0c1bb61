/**
 * The client address behind reverse proxies (MIZZEN_TRUST_PROXY), as Express and Fastify take
 * it from X-Forwarded-For, and the per-IP connection limit that depends on it.
 */
import type { IncomingMessage } from 'node:http'
import { describe, expect, it } from 'vitest'
import { clientAddressResolver, parseTrustProxy, type TrustProxy } from '../src/http/client-address.ts'
import { useFixture } from './helpers/fixture.ts'

/** A request as it reaches the gateway: its socket's peer, and the header the proxies wrote. */
const request = (peer: string, forwardedFor?: string | string[]) =>
  ({
    socket: { remoteAddress: peer },
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  }) as unknown as IncomingMessage

const addressOf = (trust: TrustProxy, peer: string, forwardedFor?: string | string[]) =>
  clientAddressResolver(trust)(request(peer, forwardedFor))

describe('client address', () => {
  it('should ignore X-Forwarded-For unless told to trust proxies', () => {
    expect(addressOf(false, '10.0.0.2', '203.0.113.9')).toBe('10.0.0.2')
    expect(addressOf(0, '10.0.0.2', '203.0.113.9')).toBe('10.0.0.2')
    expect(addressOf(false, '::ffff:10.0.0.2')).toBe('10.0.0.2')
  })

  it('should take, with a hop count, the address that many hops behind the socket', () => {
    // client 203.0.113.9 → proxy 198.51.100.1 → load balancer 10.0.0.2 → gateway
    const header = '203.0.113.9, 198.51.100.1'
    expect(addressOf(1, '10.0.0.2', header)).toBe('198.51.100.1')
    expect(addressOf(2, '10.0.0.2', header)).toBe('203.0.113.9')
    // More hops trusted than there are: the left-most address.
    expect(addressOf(5, '10.0.0.2', header)).toBe('203.0.113.9')
    expect(addressOf(1, '10.0.0.2')).toBe('10.0.0.2')
  })

  it('should skip trusted addresses and ranges, and stop at the first untrusted hop', () => {
    const trust = parseTrustProxy('loopback, 10.0.0.0/8')
    // A client that writes its own X-Forwarded-For ("1.2.3.4") cannot pass for it: 203.0.113.9 is not trusted.
    expect(addressOf(trust, '127.0.0.1', '1.2.3.4, 203.0.113.9, 10.1.2.3')).toBe('203.0.113.9')
    expect(addressOf(trust, '::1', '203.0.113.9')).toBe('203.0.113.9')
    expect(addressOf(trust, '::ffff:127.0.0.1', '203.0.113.9')).toBe('203.0.113.9')
    // The socket's peer itself is not a proxy we trust: the header is not believed.
    expect(addressOf(trust, '198.51.100.7', '203.0.113.9')).toBe('198.51.100.7')
    expect(addressOf(parseTrustProxy('2001:db8::/32'), '2001:db8::1', '2001:db9::5')).toBe('2001:db9::5')
    // Several X-Forwarded-For headers count as one list, in order.
    expect(addressOf(trust, '127.0.0.1', ['203.0.113.9', '10.0.0.5'])).toBe('203.0.113.9')
  })

  it('should take the left-most address when every hop is trusted (true)', () => {
    expect(addressOf(true, '10.0.0.2', '203.0.113.9, 198.51.100.1')).toBe('203.0.113.9')
  })

  it('should stop at a malformed entry rather than believe what lies beyond it', () => {
    expect(addressOf(true, '10.0.0.2', '203.0.113.9, not-an-ip, 198.51.100.1')).toBe('198.51.100.1')
    expect(addressOf(2, '10.0.0.2', ' , 198.51.100.1')).toBe('198.51.100.1')
  })

  it.each([['10.0.0.0/33'], ['300.1.1.1'], ['proxy.internal'], ['10.0.0.1/8/1']])(
    'should refuse %s naming the setting',
    (value) => {
      expect(() => parseTrustProxy(value)).toThrow(/^MIZZEN_TRUST_PROXY: /)
    },
  )
})

describe('per-IP connection limit behind a trusted proxy', () => {
  // One proxy in front: the gateway is told the client address by the hop on loopback.
  const env = useFixture({ gateway: { trustProxy: 1, limits: { maxConnectionsPerIp: 2 } } })
  const from = (address: string) => ({ headers: { 'x-forwarded-for': address } })

  it('should count clients by their forwarded address, not the proxy’s', async () => {
    await env.connectRaw(from('203.0.113.1'))
    await env.connectRaw(from('203.0.113.1'))
    expect(await env.attempt(from('203.0.113.1'))).toEqual({
      kind: 'refused',
      status: 429,
      body: 'too many connections from this address\n',
    })
    // Another client behind the same proxy is not held back by the first one's connections.
    const other = await env.connectRaw(from('203.0.113.2'))
    await other.roundTrip()
  })
})

describe('per-IP connection limit without trusted proxies', () => {
  const env = useFixture({ gateway: { limits: { maxConnectionsPerIp: 2 } } })

  it('should ignore X-Forwarded-For: a client cannot pick its own address', async () => {
    await env.connectRaw({ headers: { 'x-forwarded-for': '203.0.113.1' } })
    await env.connectRaw({ headers: { 'x-forwarded-for': '203.0.113.2' } })
    expect(await env.attempt({ headers: { 'x-forwarded-for': '203.0.113.3' } })).toMatchObject({
      kind: 'refused',
      status: 429,
    })
  })
})
