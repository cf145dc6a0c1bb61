import { describe, expect, it } from 'vitest'
import { newId, newLocalId } from '../src/ids.ts'

describe('ids', () => {
  it('newId makes distinct version-4 UUIDs, past the batch of random bytes it draws at once', () => {
    const ids = Array.from({ length: 1000 }, newId)
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(new Set(ids).size).toBe(ids.length)
    // Every hex digit turns up in every random position: the bytes are used, not a constant.
    const seen = new Set(ids.map((id) => id[0]))
    expect(seen.size).toBe(16)
  })

  it('newLocalId makes distinct short ids', () => {
    const ids = Array.from({ length: 100 }, newLocalId)
    expect(new Set(ids).size).toBe(100)
    expect(Math.max(...ids.map((id) => id.length))).toBeLessThan(8)
  })
})
