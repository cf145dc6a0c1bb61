/** Tokens and credentials for auth tests. */
import { SignJWT, type JWTPayload } from 'jose'

export const SERVICE_KEY = 'test-service-key-0123456789'
export const JWT_SECRET = 'test-secret-that-is-at-least-32-chars!'

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** An HS256 JWT for user `sub`, valid for `seconds` (negative: already expired). */
export function userToken(sub: string, seconds = 3600, claims: JWTPayload = {}, secret = JWT_SECRET): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + seconds)
    .sign(new TextEncoder().encode(secret))
}

/** A token with `alg: none`: no signature at all. */
export function unsignedToken(sub: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}.`
}
