import { describe, expect, it } from 'vitest'
import { SharedViewers } from '../src/auth/shared-viewers.ts'
import { anonymous, service, UserViewer } from '../src/auth/viewer.ts'

const claims = (sub: string, extra: Record<string, unknown> = {}) => ({
  sub,
  exp: 2_000_000_000,
  iat: 1_900_000_000,
  ...extra,
})

describe('UserViewer', () => {
  it('should read expiresAt from exp, in ms', () => {
    const viewer = new UserViewer('1', claims('1'))
    expect(viewer).toMatchObject({ role: 'user', id: '1', expiresAt: 2_000_000_000_000 })
    expect(new UserViewer('1', { sub: '1' }).expiresAt).toBeUndefined()
  })

  it('should be frozen with its claims, nested ones too', () => {
    const viewer = new UserViewer('1', claims('1', { org: { teams: ['a'] } }))
    expect(Object.isFrozen(viewer)).toBe(true)
    expect(() => {
      ;(viewer.claims.org as { teams: string[] }).teams.push('b')
    }).toThrow(TypeError)
    expect(() => {
      ;(viewer.claims as Record<string, unknown>).sub = '2'
    }).toThrow(TypeError)
  })
})

describe('SharedViewers', () => {
  it('should give connections of one user with the same claims one viewer', () => {
    const viewers = new SharedViewers()
    const first = viewers.acquire(new UserViewer('1', claims('1', { org: { teams: ['a'] } })))
    const second = viewers.acquire(new UserViewer('1', claims('1', { org: { teams: ['a'] } })))
    expect(second).toBe(first)
    expect(viewers.size).toBe(1)
  })

  it('should keep apart viewers whose claims differ, and other users', () => {
    const viewers = new SharedViewers()
    const first = viewers.acquire(new UserViewer('1', claims('1')))
    const other = new UserViewer('1', claims('1', { exp: 2_000_000_001 }))
    expect(viewers.acquire(other)).toBe(other)
    const nested = new UserViewer('1', claims('1', { org: { teams: ['b'] } }))
    expect(viewers.acquire(nested)).toBe(nested)
    const extra = new UserViewer('1', claims('1', { scope: undefined }))
    expect(viewers.acquire(extra)).toBe(extra)
    const user2 = new UserViewer('2', claims('2'))
    expect(viewers.acquire(user2)).toBe(user2)
    expect(viewers.acquire(new UserViewer('1', claims('1')))).toBe(first)
  })

  it('should let a shared viewer go once every connection holding it released it', () => {
    const viewers = new SharedViewers()
    const first = viewers.acquire(new UserViewer('1', claims('1')))
    viewers.acquire(new UserViewer('1', claims('1')))
    const other = viewers.acquire(new UserViewer('1', claims('1', { exp: 2_000_000_001 })))
    viewers.release(other) // not the shared one: changes nothing
    viewers.release(first)
    expect(viewers.size).toBe(1)
    viewers.release(first)
    expect(viewers.size).toBe(0)
    const next = new UserViewer('1', claims('1'))
    expect(viewers.acquire(next)).toBe(next)
  })

  it('should leave anonymous, service and other viewers as they are', () => {
    const viewers = new SharedViewers()
    const plain = { role: 'user' as const, id: '1', claims: claims('1') }
    expect(viewers.acquire(plain)).toBe(plain)
    expect(viewers.acquire({ ...plain })).not.toBe(plain)
    expect(viewers.acquire(anonymous)).toBe(anonymous)
    expect(viewers.acquire(service)).toBe(service)
    expect(viewers.size).toBe(0)
  })
})
