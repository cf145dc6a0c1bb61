/** The map kept per connection (src/compact-map.ts): a Map's behaviour, from none to one to several entries and back. */
import { describe, expect, it } from 'vitest'
import { CompactMap } from '../src/compact-map.ts'

const contents = (map: CompactMap<number>) => ({ keys: [...map.keys()], values: [...map.values()], size: map.size })

describe('CompactMap', () => {
  it('should answer as a Map does while it holds none or one entry', () => {
    const map = new CompactMap<number>()
    expect(contents(map)).toEqual({ keys: [], values: [], size: 0 })
    expect([map.get('a'), map.has('a'), map.delete('a')]).toEqual([undefined, false, false])
    map.set('a', 1).set('a', 2)
    expect(contents(map)).toEqual({ keys: ['a'], values: [2], size: 1 })
    expect([map.get('a'), map.has('a'), map.get('b'), map.has('b'), map.delete('b')]).toEqual([
      2,
      true,
      undefined,
      false,
      false,
    ])
    expect(map.delete('a')).toBe(true)
    expect(contents(map)).toEqual({ keys: [], values: [], size: 0 })
    map.set('b', 3)
    expect(contents(map)).toEqual({ keys: ['b'], values: [3], size: 1 })
  })

  it('should keep every entry, in insertion order, from the second on and after deletions', () => {
    const map = new CompactMap<number>()
    map.set('a', 1).set('b', 2).set('c', 3)
    expect(contents(map)).toEqual({ keys: ['a', 'b', 'c'], values: [1, 2, 3], size: 3 })
    expect(map.delete('a')).toBe(true)
    expect(map.delete('a')).toBe(false)
    map.set('b', 4).set('a', 5)
    expect(contents(map)).toEqual({ keys: ['b', 'c', 'a'], values: [4, 3, 5], size: 3 })
    map.delete('b')
    map.delete('c')
    map.delete('a')
    expect(contents(map)).toEqual({ keys: [], values: [], size: 0 })
    expect([map.get('a'), map.has('c')]).toEqual([undefined, false])
  })

  it('should hold the empty string as a key', () => {
    const map = new CompactMap<number>()
    map.set('', 1)
    expect([map.get(''), map.has(''), map.size]).toEqual([1, true, 1])
    map.set('x', 2)
    expect([map.get(''), map.get('x'), map.size]).toEqual([1, 2, 2])
  })
})
