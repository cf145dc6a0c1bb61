/** The contract every bus backend keeps; each backend is listed in `backends`. */
import { afterEach, describe, expect, it } from 'vitest'
import type { Bus } from '../src/bus/bus.ts'
import { BusClosedError } from '../src/bus/bus.ts'
import { createMemoryBus } from '../src/bus/memory.ts'
import type { ModelEvent } from '../src/events.ts'

const backends: { name: string; create: () => Promise<Bus> }[] = [{ name: 'memory', create: async () => createMemoryBus() }]

const event = (id: string): ModelEvent => ({ model: 'User', verb: 'CREATED', id, node: { id: Number(id), name: `n${id}` }, at: new Date(0).toISOString() })

describe.each(backends)('$name bus', ({ create }) => {
  const open: Bus[] = []
  const bus = async () => {
    const created = await create()
    open.push(created)
    return created
  }
  afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close()))
  })

  it('should deliver to every listener of a topic, in publish order', async () => {
    const b = await bus()
    const first: string[] = []
    const second: string[] = []
    b.subscribe('model:User', (e) => first.push(e.id))
    b.subscribe('model:User', (e) => second.push(e.id))
    for (const id of ['1', '2', '3']) await b.publish('model:User', event(id))
    expect(first).toEqual(['1', '2', '3'])
    expect(second).toEqual(['1', '2', '3'])
  })

  it('should keep topics apart', async () => {
    const b = await bus()
    const posts: string[] = []
    b.subscribe('model:Post', (e) => posts.push(e.id))
    await b.publish('model:User', event('1'))
    expect(posts).toEqual([])
  })

  it('should stop delivering after unsubscribe', async () => {
    const b = await bus()
    const seen: string[] = []
    const off = b.subscribe('model:User', (e) => seen.push(e.id))
    await b.publish('model:User', event('1'))
    off()
    await b.publish('model:User', event('2'))
    expect(seen).toEqual(['1'])
  })

  it('should carry the payload intact', async () => {
    const b = await bus()
    let received: ModelEvent | undefined
    b.subscribe('model:User', (e) => (received = e))
    await b.publish('model:User', event('7'))
    expect(received).toEqual(event('7'))
  })

  it('should keep delivering to others when a listener throws', async () => {
    const b = await bus()
    const seen: string[] = []
    b.subscribe('model:User', () => {
      throw new Error('listener bug')
    })
    b.subscribe('model:User', (e) => seen.push(e.id))
    await b.publish('model:User', event('1'))
    expect(seen).toEqual(['1'])
  })

  it('should answer ping while open and refuse publishing once closed', async () => {
    const b = await bus()
    await expect(b.ping()).resolves.toBeUndefined()
    await b.close()
    await expect(b.publish('model:User', event('1'))).rejects.toBeInstanceOf(BusClosedError)
    await expect(b.ping()).rejects.toBeInstanceOf(BusClosedError)
  })
})
