import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { examplePolicies } from '../examples/app/policies.ts'
import { bearer, JWT_SECRET, SERVICE_KEY, unsignedToken, userToken } from './helpers/auth.ts'
import { connectWs, executeWs, postGraphQL } from './helpers/clients.ts'
import { useFixture } from './helpers/fixture.ts'
import type { TestGateway } from './helpers/gateway.ts'

describe('auth with an API key and an HS256 secret', () => {
  const env = useFixture({
    gateway: { auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET }, policies: examplePolicies },
  })
  let gateway: TestGateway

  beforeAll(() => {
    gateway = env.gateway
  })

  const broadcast = 'mutation { broadcast(rooms: ["lobby"], event: "hi") { recipients } }'

  describe('over HTTP', () => {
    it('should treat a request without credentials as anonymous', async () => {
      expect(await postGraphQL(gateway.url, '{ tags { id } }')).toEqual({ data: { tags: [] } })
      const refused = await postGraphQL(gateway.url, broadcast)
      expect(refused.errors?.[0]).toMatchObject({
        message: 'anonymous clients may not broadcast to room "lobby"',
        extensions: { code: 'FORBIDDEN' },
      })
    })

    it('should give an API key the service role', async () => {
      expect(await postGraphQL(gateway.url, broadcast, undefined, { authorization: `Bearer ${SERVICE_KEY}` })).toEqual({
        data: { broadcast: { recipients: 0 } },
      })
    })

    it('should give a valid JWT the user role with its sub as id', async () => {
      const user = await gateway.prisma.user.create({ data: { email: 'jwt@example.com', name: 'Jay' } })
      const result = await postGraphQL(
        gateway.url,
        '{ users { id name } }',
        undefined,
        bearer(await userToken(String(user.id))),
      )
      expect(result).toEqual({ data: { users: [{ id: String(user.id), name: 'Jay' }] } })
      const refused = await postGraphQL(gateway.url, broadcast, undefined, bearer(await userToken(String(user.id))))
      expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN')
    })

    it.each([
      ['a token signed with another secret', () => userToken('1', 3600, {}, 'another-secret-that-is-32-chars-long!!')],
      ['an expired token', () => userToken('1', -60)],
      ['an unsigned token (alg: none)', async () => unsignedToken('1')],
      ['a token with no sub', async () => userToken('', 3600)],
      ['a wrong API key', async () => 'not-the-key'],
      [
        'a token that never expires (no exp)',
        () =>
          new SignJWT({})
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject('1')
            .sign(new TextEncoder().encode(JWT_SECRET)),
      ],
    ])('should answer 401 UNAUTHENTICATED for %s', async (_what, token) => {
      const response = await fetch(gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...bearer(await token()) },
        body: JSON.stringify({ query: '{ tags { id } }' }),
      })
      expect(response.status).toBe(401)
      expect(response.headers.get('www-authenticate')).toBe('Bearer')
      const body = (await response.json()) as { errors: { extensions: { code: string } }[] }
      expect(body.errors[0]!.extensions.code).toBe('UNAUTHENTICATED')
    })

    it('should call a wrong key a wrong key, not a malformed JWT', async () => {
      const result = await postGraphQL(gateway.url, '{ tags { id } }', undefined, bearer('k2'))
      expect(result.errors?.[0]).toMatchObject({
        message: 'invalid API key or token',
        extensions: { code: 'UNAUTHENTICATED' },
      })
    })

    it('should refuse an Authorization header that is not a Bearer token', async () => {
      const result = await postGraphQL(gateway.url, '{ tags { id } }', undefined, {
        authorization: `Basic ${Buffer.from('a:b').toString('base64')}`,
      })
      expect(result.errors?.[0]).toMatchObject({
        message: 'authorization must be "Bearer <token>"',
        extensions: { code: 'UNAUTHENTICATED' },
      })
    })

    it('should not take an API key from anywhere but the Authorization header', async () => {
      const inQuery = await fetch(`${gateway.url}?access_token=${SERVICE_KEY}&apiKey=${SERVICE_KEY}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': SERVICE_KEY, cookie: `token=${SERVICE_KEY}` },
        body: JSON.stringify({ query: broadcast }),
      })
      const body = (await inQuery.json()) as { errors: { extensions: { code: string } }[] }
      expect(body.errors[0]!.extensions.code).toBe('FORBIDDEN')
    })
  })

  describe('over WebSocket', () => {
    it('should authenticate connection_init and apply the role to every operation', async () => {
      const service = connectWs(gateway.wsUrl, { authorization: `Bearer ${SERVICE_KEY}` })
      expect((await service.ack)?.connectionId).toBeTypeOf('string')
      expect(await executeWs(service.client, broadcast)).toEqual({ data: { broadcast: { recipients: 0 } } })
      await service.client.dispose()
    })

    it('should close with 4403 when connection_init carries invalid credentials', async () => {
      for (const authorization of [
        `Bearer ${await userToken('1', -60)}`,
        'Bearer wrong-key',
        `Bearer ${unsignedToken('1')}`,
      ]) {
        const refused = connectWs(gateway.wsUrl, { authorization })
        expect(await refused.closed).toBe(4403)
        await refused.client.dispose()
      }
    })

    it('should treat an API key outside `authorization` as no credentials', async () => {
      const misplaced = connectWs(gateway.wsUrl, {
        apiKey: SERVICE_KEY,
        headers: { authorization: `Bearer ${SERVICE_KEY}` },
      })
      await misplaced.ack
      await expect(executeWs(misplaced.client, broadcast)).resolves.toMatchObject({
        errors: [{ extensions: { code: 'FORBIDDEN' } }],
      })
      await misplaced.client.dispose()
    })

    it('should close an open connection with 4403 when its token expires', async () => {
      const expiring = connectWs(gateway.wsUrl, bearer(await userToken('1', 2)))
      await expiring.ack
      expect(await executeWs(expiring.client, '{ tags { id } }')).toEqual({ data: { tags: [] } })
      expect(await expiring.closed).toBe(4403)
      await expiring.client.dispose()
    })

    it('should keep each connection of a token that several share to itself, and expire every one', async () => {
      // Signed in the same second: two connections with the same claims, each expiring on its own.
      const token = await userToken('1', 2)
      const [first, second] = [connectWs(gateway.wsUrl, bearer(token)), connectWs(gateway.wsUrl, bearer(token))]
      const other = connectWs(gateway.wsUrl, bearer(await userToken('1', 3600)))
      await Promise.all([first.ack, second.ack, other.ack])
      await first.client.dispose()
      expect(await executeWs(second.client, '{ tags { id } }')).toEqual({ data: { tags: [] } })
      expect(await second.closed).toBe(4403)
      expect(await executeWs(other.client, '{ tags { id } }')).toEqual({ data: { tags: [] } })
      await Promise.all([second.client.dispose(), other.client.dispose()])
    })
  })
})

describe('auth with a JWKS URL, issuer and audience', () => {
  const env = useFixture({ gateways: 0 })
  let gateway: TestGateway
  let jwks: Server
  let sign: (claims: { iss?: string; aud?: string }) => Promise<string>

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256')
    const jwk = { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' }
    jwks = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: [jwk] }))
    }).listen(0, '127.0.0.1')
    await once(jwks, 'listening')
    const { port } = jwks.address() as { port: number }
    sign = (claims) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
        .setSubject('7')
        .setIssuer(claims.iss ?? 'https://issuer.test')
        .setAudience(claims.aud ?? 'mizzen')
        .setExpirationTime('1h')
        .sign(privateKey)
    gateway = await env.startGateway({
      auth: { jwksUrl: `http://127.0.0.1:${port}/jwks.json`, jwtIssuer: 'https://issuer.test', jwtAudience: 'mizzen' },
      policies: examplePolicies,
    })
  })
  afterAll(() => {
    jwks?.close()
  })

  it('should accept a token signed by a key of the JWKS with the right issuer and audience', async () => {
    const result = await postGraphQL(gateway.url, '{ users { id } }', undefined, bearer(await sign({})))
    expect(result).toEqual({ data: { users: [] } })
  })

  it.each([
    ['issuer', { iss: 'https://evil.test' }],
    ['audience', { aud: 'someone-else' }],
  ])('should refuse a token with the wrong %s', async (_what, claims) => {
    const result = await postGraphQL(gateway.url, '{ users { id } }', undefined, bearer(await sign(claims)))
    expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
  })
})

describe('auth with a PEM public key', () => {
  const env = useFixture({ gateways: 0 })
  it('should accept tokens signed by its private key and refuse others', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256')
    const other = await generateKeyPair('ES256')
    const gateway = await env.startGateway({
      auth: { jwtPublicKey: await exportSPKI(publicKey) },
      policies: examplePolicies,
    })
    const token = (key: CryptoKey) =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('3').setExpirationTime('1h').sign(key)
    expect(await postGraphQL(gateway.url, '{ users { id } }', undefined, bearer(await token(privateKey)))).toEqual({
      data: { users: [] },
    })
    const refused = await postGraphQL(gateway.url, '{ users { id } }', undefined, bearer(await token(other.privateKey)))
    expect(refused.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED')
    await gateway.close()
  })
})
