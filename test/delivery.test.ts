/**
 * The delivery hub on its own: subscriptions, their selections, groups, replay then live. The
 * transport's sinks are stood in for by recording sinks (the hub's only client interface);
 * everything else is the real hub.
 */
import { describe, expect, it } from 'vitest'
import { DeliveryHub, type Selection } from '../src/delivery/hub.ts'
import { Rendering, type SubscriptionSink } from '../src/delivery/rendering.ts'

/** Takes every payload as is. */
const all: Selection<unknown> = { see: (payload) => payload }
/** Even numbers, doubled. */
const evens: Selection<number, number, number> = { see: (n) => n, pick: (n) => (n % 2 === 0 ? n * 2 : undefined) }

/** A sink that records what a subscription was sent, and a renderer that counts its calls. */
function recorder() {
  const sent: (string | 'complete')[] = []
  const sink: SubscriptionSink = {
    next: (rendering) => sent.push(rendering.json ?? `pending`),
    complete: () => sent.push('complete'),
  }
  return { sent, sink }
}
function countingRenderer() {
  const calls: unknown[] = []
  return { calls, render: (value: unknown) => (calls.push(value), Rendering.of(JSON.stringify({ data: value }))) }
}

describe('delivery hub: subscriptions read as streams', () => {
  it('should offer each payload to every subscription of the topic and queue what they pick', async () => {
    const hub = new DeliveryHub()
    const doubled = hub.subscribe('n', evens)[Symbol.asyncIterator]()
    const every = hub.subscribe('n', all)[Symbol.asyncIterator]()
    for (const n of [1, 2, 3, 4]) hub.deliver('n', n)
    expect([(await doubled.next()).value, (await doubled.next()).value]).toEqual([4, 8])
    expect(every.buffered).toBe(4)
    expect((await every.next()).value).toBe(1)
  })

  it('should buffer what arrives before the subscription is consumed, and deliver it first', async () => {
    const hub = new DeliveryHub()
    const subscription = hub.subscribe('n', all)
    hub.deliver('n', 'early')
    const stream = subscription[Symbol.asyncIterator]()
    hub.deliver('n', 'late')
    expect([(await stream.next()).value, (await stream.next()).value]).toEqual(['early', 'late'])
  })

  it('should detach a subscription on return() and forget empty topics', async () => {
    const hub = new DeliveryHub()
    const a = hub.subscribe('t', all)[Symbol.asyncIterator]()
    const b = hub.subscribe('u', all)[Symbol.asyncIterator]()
    expect([hub.subscriberCount, hub.topicCount]).toEqual([2, 2])
    await a.return()
    expect([hub.subscriberCount, hub.topicCount]).toEqual([1, 1])
    expect(await a.next()).toEqual({ value: undefined, done: true })
    await b.return()
    expect([hub.subscriberCount, hub.topicCount]).toEqual([0, 0])
  })

  it('should keep delivering to every subscription as a topic goes from one to several and back to one', async () => {
    const hub = new DeliveryHub()
    const first = hub.subscribe('t', all)[Symbol.asyncIterator]()
    expect(hub.deliver('t', 1)).toBe(1)
    const second = hub.subscribe('t', all)[Symbol.asyncIterator]()
    const third = hub.subscribe('t', all)[Symbol.asyncIterator]()
    expect(hub.deliver('t', 2)).toBe(3)
    await first.return()
    await third.return()
    expect([hub.subscriberCount, hub.topicCount]).toEqual([1, 1])
    expect(hub.deliver('t', 3)).toBe(1)
    const fourth = hub.subscribe('t', all)[Symbol.asyncIterator]()
    expect(hub.deliver('t', 4)).toBe(2)
    expect([second.buffered, fourth.buffered]).toEqual([3, 1])
    await second.return()
    await fourth.return()
    expect([hub.subscriberCount, hub.topicCount]).toEqual([0, 0])
    expect(hub.deliver('t', 5)).toBe(0)
  })

  it('should let a subscription that ends while a payload is delivered leave the others their payload', async () => {
    const hub = new DeliveryHub()
    // The first ends the second while the topic's subscriptions are being offered the payload.
    let second: AsyncIterator<unknown> | undefined
    const ending: Selection<unknown> = { see: (payload) => (void second?.return?.(), payload) }
    const first = hub.subscribe('t', ending)[Symbol.asyncIterator]()
    second = hub.subscribe('t', all)[Symbol.asyncIterator]()
    const third = hub.subscribe('t', all)[Symbol.asyncIterator]()
    expect(hub.deliver('t', 1)).toBe(2)
    expect((await first.next()).value).toBe(1)
    expect((await third.next()).value).toBe(1)
    expect(await second.next()).toEqual({ value: undefined, done: true })
  })

  it('should let a selection end its subscription after a last value, or on a payload it does not deliver', async () => {
    const hub = new DeliveryHub()
    const untilLast: Selection<string> = {
      see: (p) => p,
      admit: (p, control) => (p === 'last' && control.endAfterThis(), true),
    }
    const untilStop: Selection<string> = {
      see: (p) => p,
      admit: (p, control) => (p === 'stop' ? (control.endAfterThis(), false) : true),
    }
    const a = hub.subscribe('t', untilLast)
    const b = hub.subscribe('t', untilStop)
    for (const p of ['a', 'last', 'stop', 'b']) hub.deliver('t', p)
    const read = async (s: AsyncIterable<unknown>) => {
      const values: unknown[] = []
      for await (const value of s) values.push(value)
      return values
    }
    expect(await read(a)).toEqual(['a', 'last'])
    expect(await read(b)).toEqual(['a', 'last'])
    expect(hub.subscriberCount).toBe(0)
  })

  it('should call onEnd once, after detaching, however the subscription ends, and wait for it on cancel', async () => {
    const hub = new DeliveryHub()
    const ended: string[] = []
    let release!: () => void
    const cancelled = hub.subscribe(
      't',
      all,
      () =>
        new Promise<void>((resolve) => (release = () => (ended.push(`cancelled:${hub.subscriberCount}`), resolve()))),
    )
    const ending: Selection<string> = { see: (p) => p, admit: (_p, control) => (control.endAfterThis(), true) }
    const selected = hub.subscribe('t', ending, () => void ended.push('selected'))
    const shutdown = hub.subscribe('u', all, () => void ended.push('shutdown'))
    let wound = false
    const winding = cancelled.cancel().then(() => (wound = true))
    await Promise.resolve()
    expect(wound).toBe(false)
    release()
    await winding
    await cancelled.cancel()
    hub.deliver('t', 'x')
    hub.endAll()
    // Ended before being consumed: their consumer still gets what was delivered, then the end.
    expect((await selected[Symbol.asyncIterator]().next()).value).toBe('x')
    expect(await shutdown[Symbol.asyncIterator]().next()).toEqual({ value: undefined, done: true })
    expect(ended).toEqual(['cancelled:2', 'selected', 'shutdown'])
  })

  it('should end only the subscription whose selection throws', async () => {
    const errors: unknown[] = []
    const hub = new DeliveryHub({ onSelectorError: (error) => errors.push(error) })
    const broken = hub.subscribe('t', {
      see: () => {
        throw new Error('bug')
      },
    })
    const brokenStream = broken[Symbol.asyncIterator]()
    const fine = hub.subscribe('t', all)[Symbol.asyncIterator]()
    hub.deliver('t', 1)
    expect(broken.ended).toBe(true)
    expect(await brokenStream.next()).toEqual({ value: undefined, done: true })
    expect((await fine.next()).value).toBe(1)
    expect(errors).toHaveLength(1)
  })
})

describe('delivery hub: groups (the fast path)', () => {
  it('should run the shared selection and the rendering once per group and payload, for every member', () => {
    const hub = new DeliveryHub()
    let seen = 0
    let picked = 0
    const counted: Selection<number, number, { n: number }> = {
      see: (n) => (seen++, n),
      pick: (n) => (picked++, n % 2 === 0 ? { n } : undefined),
    }
    const { calls, render } = countingRenderer()
    const members = Array.from({ length: 5 }, () => recorder())
    for (const member of members) hub.join(hub.subscribe('n', counted), 'same', render, member.sink)
    const other = recorder()
    hub.join(hub.subscribe('n', evens), 'other', render, other.sink)
    expect(hub.groupCount).toBe(2)

    for (const n of [1, 2, 3, 4]) hub.deliver('n', n)
    expect([seen, picked]).toEqual([4, 4])
    expect(calls).toEqual([{ n: 2 }, 4, { n: 4 }, 8])
    for (const member of members) expect(member.sent).toEqual(['{"data":{"n":2}}', '{"data":{"n":4}}'])
    expect(other.sent).toEqual(['{"data":4}', '{"data":8}'])
  })

  it('should keep per-member state apart within a group, and let a member leave without the others', async () => {
    const hub = new DeliveryHub()
    // Each member completes after its own count of payloads: state that must not be shared.
    const upTo = (count: number): Selection<number> => {
      let left = count
      return { see: (n) => n, admit: (_n, control) => (--left === 0 && control.endAfterThis(), true) }
    }
    const { render } = countingRenderer()
    const one = recorder()
    const three = recorder()
    const cancelled = recorder()
    hub.join(hub.subscribe('n', upTo(1)), 'g', render, one.sink)
    hub.join(hub.subscribe('n', upTo(3)), 'g', render, three.sink)
    const leaving = hub.subscribe('n', upTo(9))
    hub.join(leaving, 'g', render, cancelled.sink)
    hub.deliver('n', 1)
    await leaving.cancel()
    for (const n of [2, 3, 4]) hub.deliver('n', n)
    expect(one.sent).toEqual(['{"data":1}', 'complete'])
    expect(three.sent).toEqual(['{"data":1}', '{"data":2}', '{"data":3}', 'complete'])
    expect(cancelled.sent).toEqual(['{"data":1}'])
    expect([hub.subscriberCount, hub.groupCount]).toEqual([0, 0])
  })

  it('should complete at once a subscription that ended before it joined', () => {
    const hub = new DeliveryHub()
    const subscription = hub.subscribe('n', all)
    hub.endAll()
    const { sent, sink } = recorder()
    hub.join(subscription, 'g', countingRenderer().render, sink)
    expect(sent).toEqual(['complete'])
    expect(hub.groupCount).toBe(0)
  })

  it('should hand a pending rendering to every member in delivery order, and fill it in later', async () => {
    const hub = new DeliveryHub()
    let resolve!: (json: string) => void
    const slow = (value: unknown) =>
      value === 1 ? Rendering.later(new Promise((r) => (resolve = r)), String) : Rendering.of(`{"data":${value}}`)
    const order: string[] = []
    const renderings: Rendering[] = []
    const sink: SubscriptionSink = {
      next: (rendering) => (renderings.push(rendering), order.push(rendering.ready ? rendering.json! : 'pending')),
      complete: () => {},
    }
    hub.join(hub.subscribe('n', all), 'g', slow, sink)
    hub.deliver('n', 1)
    hub.deliver('n', 2)
    expect(order).toEqual(['pending', '{"data":2}'])
    resolve('{"data":1}')
    await new Promise((r) => setImmediate(r))
    expect(renderings.map((rendering) => rendering.json)).toEqual(['{"data":1}', '{"data":2}'])
  })
})

describe('delivery hub: replay then live (docs/architecture.md §7)', () => {
  const replayed =
    (payloads: number[], lastReplayed: number) =>
    (subscription: { replay(p: number[], covers: (live: number) => boolean): void }) =>
      subscription.replay(payloads, (live) => live <= lastReplayed)

  it('should deliver the replay, then the live payloads it does not cover, then live ones, through the group', () => {
    const hub = new DeliveryHub()
    const { render } = countingRenderer()
    const subscription = hub.subscribe<number>('n', evens)
    hub.deliver('n', 4) // live while history is read: covered by the replay
    hub.deliver('n', 6) // live, after what the history held
    replayed([2, 3, 4], 4)(subscription)
    const { sent, sink } = recorder()
    hub.join(subscription, 'g', render, sink)
    hub.deliver('n', 8)
    // The selection applies to replayed payloads too (3 is odd).
    expect(sent).toEqual(['{"data":4}', '{"data":8}', '{"data":12}', '{"data":16}'])
  })

  it('should replay to a stream the same way', async () => {
    const hub = new DeliveryHub()
    const subscription = hub.subscribe<number>('n', all)
    hub.deliver('n', 2)
    hub.deliver('n', 3)
    replayed([1, 2], 2)(subscription)
    const stream = subscription[Symbol.asyncIterator]()
    hub.deliver('n', 4)
    const values = []
    for (let i = 0; i < 4; i++) values.push((await stream.next()).value)
    expect(values).toEqual([1, 2, 3, 4])
  })

  it('should apply a selection that ends the subscription during the replay, and deliver nothing after', () => {
    const hub = new DeliveryHub()
    const untilZero: Selection<number> = {
      see: (n) => n,
      admit: (n, control) => (n === 0 && control.endAfterThis(), true),
    }
    const subscription = hub.subscribe<number>('n', untilZero)
    hub.deliver('n', 5)
    subscription.replay([1, 0, 2], () => false)
    const { sent, sink } = recorder()
    hub.join(subscription, 'g', countingRenderer().render, sink)
    hub.deliver('n', 6)
    expect(sent).toEqual(['{"data":1}', '{"data":0}', 'complete'])
    expect([hub.subscriberCount, hub.groupCount]).toEqual([0, 0])
  })

  it('should refuse a replay once the subscription is consumed', () => {
    const hub = new DeliveryHub()
    const subscription = hub.subscribe<number>('n', all)
    hub.join(subscription, 'g', countingRenderer().render, recorder().sink)
    expect(() => subscription.replay([1], () => false)).toThrow(/before the subscription is consumed/)
  })
})
