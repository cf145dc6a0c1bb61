/** The array-and-head queue under the outbox, the handed ring and a topic's pending messages. */
import { describe, expect, it } from 'vitest'
import { FrontQueue } from '../src/bus/front-queue.ts'

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

describe('FrontQueue', () => {
  it('should give items back first in, first out, across compactions', () => {
    const queue = new FrontQueue<number>()
    for (const n of range(0, 5000)) queue.push(n)
    expect(queue.shift(1500)).toEqual(range(0, 1500))
    expect(queue.shiftWhile((n) => n < 3000)).toBe(1500)
    expect(queue.length).toBe(2000)
    expect([...queue]).toEqual(range(3000, 5000))
    queue.push(5000)
    expect(queue.toArray()).toEqual(range(3000, 5001))
    expect(queue.shift(10_000)).toEqual(range(3000, 5001))
    expect(queue.length).toBe(0)
    expect(queue.shift(1)).toEqual([])
  })

  it('should put items back in front, in their order, after some were taken', () => {
    const queue = new FrontQueue<string>()
    for (const item of ['c', 'd', 'e']) queue.push(item)
    queue.shift(1)
    queue.unshift(['a', 'b'])
    queue.unshift([])
    expect(queue.toArray()).toEqual(['a', 'b', 'd', 'e'])
    expect(queue.shiftWhile((item) => item < 'c')).toBe(2)
    expect([...queue]).toEqual(['d', 'e'])
  })
})
