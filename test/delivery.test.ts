import { describe, expect, it } from 'vitest'
import { DeliveryHub } from '../src/delivery/hub.ts'

describe('delivery hub', () => {
  it('should offer each payload to every subscriber of the topic and queue what they select', async () => {
    const hub = new DeliveryHub()
    const evens = hub.subscribe<number, number>('n', (n) => (n % 2 === 0 ? n : undefined))
    const all = hub.subscribe<number, string>('n', (n) => `#${n}`)
    for (const n of [1, 2, 3, 4]) hub.deliver('n', n)
    expect([(await evens.next()).value, (await evens.next()).value]).toEqual([2, 4])
    expect(all.buffered).toBe(4)
    expect((await all.next()).value).toBe('#1')
  })

  it('should detach a subscriber on return() and forget empty topics', async () => {
    const hub = new DeliveryHub()
    const a = hub.subscribe('t', (p) => p)
    const b = hub.subscribe('u', (p) => p)
    expect([hub.subscriberCount, hub.topicCount]).toEqual([2, 2])
    await a.return()
    expect([hub.subscriberCount, hub.topicCount]).toEqual([1, 1])
    expect(await a.next()).toEqual({ value: undefined, done: true })
    await b.return()
    expect([hub.subscriberCount, hub.topicCount]).toEqual([0, 0])
  })

  it('should resolve a waiting reader on delivery and on end', async () => {
    const hub = new DeliveryHub()
    const stream = hub.subscribe('t', (p) => p)
    const first = stream.next()
    hub.deliver('t', 'x')
    expect(await first).toEqual({ value: 'x', done: false })
    const second = stream.next()
    stream.end()
    expect(await second).toEqual({ value: undefined, done: true })
  })

  it('should let a selector end its stream after a last value', async () => {
    const hub = new DeliveryHub()
    const stream = hub.subscribe<string, string>('t', (p, control) => {
      if (p === 'last') control.endAfterThis()
      return p
    })
    hub.deliver('t', 'a')
    hub.deliver('t', 'last')
    hub.deliver('t', 'b')
    const values: string[] = []
    for await (const value of stream) values.push(value)
    expect(values).toEqual(['a', 'last'])
    expect(hub.subscriberCount).toBe(0)
  })

  it('should call onEnd once, after detaching, however the stream ends', async () => {
    const hub = new DeliveryHub()
    const ended: string[] = []
    const returned = hub.subscribe('t', (p) => p, () => ended.push(`returned:${hub.subscriberCount}`))
    const selected = hub.subscribe<string, string>('t', (p, control) => (control.endAfterThis(), p), () => ended.push('selected'))
    const all = hub.subscribe('u', (p) => p, () => ended.push('all'))
    await returned.return()
    await returned.return()
    hub.deliver('t', 'x')
    hub.endAll()
    expect(ended).toEqual(['returned:2', 'selected', 'all'])
    expect((await selected.next()).value).toBe('x')
    expect(await all.next()).toEqual({ value: undefined, done: true })
  })

  it('should end only the subscription whose selector throws', async () => {
    const errors: unknown[] = []
    const hub = new DeliveryHub({ onSelectorError: (error) => errors.push(error) })
    const broken = hub.subscribe('t', () => {
      throw new Error('bug')
    })
    const fine = hub.subscribe('t', (p) => p)
    expect(hub.deliver('t', 1)).toBe(1)
    expect(broken.done).toBe(true)
    expect((await fine.next()).value).toBe(1)
    expect(errors).toHaveLength(1)
  })
})
