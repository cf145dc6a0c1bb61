/**
 * Turns an `Authorization` value (`Bearer <JWT or API key>`) into a Viewer. JWTs are verified
 * with jose against an HS256 secret, a public key (PEM) or a JWKS URL; `exp`, `nbf`, and the
 * configured issuer and audience are enforced, and `alg: none` never verifies.
 */
import { createHash, createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto'
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose'
import { ConfigError } from '../errors.ts'
import { anonymous, service, UserViewer, type Viewer } from './viewer.ts'

export interface AuthOptions {
  /** Service API keys; a request bearing one has the `service` role. */
  apiKeys?: readonly string[]
  /** HS256/384/512 shared secret for user JWTs: at least 32 bytes (256 bits), as `MIZZEN_JWT_SECRET`. */
  jwtSecret?: string
  /** PEM public key (RSA, EC or Ed25519) for user JWTs. */
  jwtPublicKey?: string
  /** JWKS URL for user JWTs (keys are fetched and cached by jose). */
  jwksUrl?: string
  /** Required `iss` of user JWTs. */
  jwtIssuer?: string
  /** Required `aud` of user JWTs. */
  jwtAudience?: string
}

/** The credentials were given but are not valid: HTTP answers 401, WebSocket closes 4403. */
export class AuthError extends Error {
  override readonly name = 'AuthError'
}

export interface Authenticator {
  /** No credentials are configured: everyone is treated as `service` (development only). */
  readonly open: boolean
  authenticate(authorization: string | null | undefined): Promise<Viewer>
}

const digest = (value: string) => createHash('sha256').update(value).digest()

function algorithmsFor(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512']
    case 'ec':
      return ['ES256', 'ES384', 'ES512']
    case 'ed25519':
      return ['EdDSA', 'Ed25519']
    default:
      throw new Error(`unsupported public key type ${key.asymmetricKeyType}`)
  }
}

/** The shortest HS256 secret accepted: the hash's output size (RFC 7518, 3.2). */
const MIN_SECRET_BYTES = 32

type Verifier = (token: string) => Promise<Record<string, unknown>>

function jwtVerifier(options: AuthOptions): Verifier | undefined {
  // A user token must expire: one without `exp` would stay valid forever once leaked.
  const claims = { issuer: options.jwtIssuer, audience: options.jwtAudience, requiredClaims: ['exp'] }
  if (options.jwtSecret) {
    const secret = new TextEncoder().encode(options.jwtSecret)
    // A short HMAC secret can be brute-forced from one token; the same rule as MIZZEN_JWT_SECRET.
    if (secret.length < MIN_SECRET_BYTES)
      throw new ConfigError('auth.jwtSecret', `must be at least ${MIN_SECRET_BYTES} characters (256 bits) for HS256`)
    return async (token) =>
      (await jwtVerify(token, secret, { ...claims, algorithms: ['HS256', 'HS384', 'HS512'] })).payload
  }
  if (options.jwtPublicKey) {
    const key = createPublicKey(options.jwtPublicKey)
    const algorithms = algorithmsFor(key)
    return async (token) => (await jwtVerify(token, key, { ...claims, algorithms })).payload
  }
  if (options.jwksUrl) {
    const keys: JWTVerifyGetKey = createRemoteJWKSet(new URL(options.jwksUrl))
    return async (token) => (await jwtVerify(token, keys, claims)).payload
  }
  return undefined
}

export function createAuthenticator(options: AuthOptions): Authenticator {
  const apiKeys = (options.apiKeys ?? []).filter(Boolean).map(digest)
  const verify = jwtVerifier(options)
  const open = apiKeys.length === 0 && !verify
  const isApiKey = (token: string) => {
    const candidate = digest(token)
    // Compare with every key, in constant time, so timing tells nothing about which matched.
    return apiKeys.reduce((found, key) => timingSafeEqual(key, candidate) || found, false)
  }

  return {
    open,
    async authenticate(authorization) {
      if (open) return service
      if (authorization == null || authorization === '') return anonymous
      const match = /^Bearer\s+(\S+)\s*$/i.exec(String(authorization))
      if (!match) throw new AuthError('authorization must be "Bearer <token>"')
      const token = match[1]!
      if (isApiKey(token)) return service
      // Not a key: a JWT if it has a JWT's three parts, else a wrong key, whatever is configured.
      if (!verify || token.split('.').length !== 3) throw new AuthError('invalid API key or token')
      let payload: Record<string, unknown>
      try {
        payload = await verify(token)
      } catch (error) {
        if (error instanceof joseErrors.JWTExpired) throw new AuthError('token expired')
        if (error instanceof joseErrors.JOSEError) throw new AuthError(`invalid token: ${error.message}`)
        throw error
      }
      if (typeof payload.sub !== 'string' || payload.sub === '') throw new AuthError('invalid token: no sub claim')
      return new UserViewer(payload.sub, payload)
    },
  }
}
