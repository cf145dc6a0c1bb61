/**
 * An `ids` subscription's selection on its own (src/delivery/model-events.ts): the ids it watches
 * are an array while few and a Set beyond, and either way it admits only them and completes once
 * every one of them is deleted, duplicates counted once.
 */
import { describe, expect, it } from 'vitest'
import { ModelEventSelection, modelEventSelection, watchedIds } from '../src/delivery/model-events.ts'
import type { DeliveredModelEvent } from '../src/events.ts'

const event = (recordId: string, verb: DeliveredModelEvent['verb']) =>
  ({ model: 'User', verb, recordId, node: { id: recordId } }) as unknown as DeliveredModelEvent

/** Offers `events` to a selection of `ids`; which were admitted, and after which it asked to end. */
function run(ids: string[], events: DeliveredModelEvent[]) {
  const selection = new ModelEventSelection({ ids: watchedIds(ids) })
  const admitted: string[] = []
  let endedAfter: string | undefined
  for (const each of events) {
    let ending = false
    const seen = selection.see(each)
    if (seen && selection.admit(seen, { endAfterThis: () => void (ending = true) })) admitted.push(each.recordId)
    if (ending && endedAfter === undefined) endedAfter = `${each.verb} ${each.recordId}`
  }
  return { admitted, endedAfter }
}

describe('ids subscriptions: watched ids', () => {
  it('should be an array of the distinct ids while few, a Set beyond', () => {
    expect(watchedIds(['1', '2', '1'])).toEqual(['1', '2'])
    const many = Array.from({ length: 9 }, (_, i) => String(i))
    expect(watchedIds(many)).toBeInstanceOf(Set)
    expect([...watchedIds(many)]).toEqual(many)
  })

  for (const [name, ids] of [
    ['few, with a duplicate', ['1', '2', '2']],
    ['many', Array.from({ length: 12 }, (_, i) => String(i + 1))],
  ] as const) {
    it(`should admit only the watched records and complete once all are deleted (${name})`, () => {
      const watched = [...new Set(ids)]
      const last = watched.at(-1)!
      const events = [
        event('99', 'UPDATED'),
        event('1', 'UPDATED'),
        ...watched.slice(0, -1).map((id) => event(id, 'DELETED')),
        event('1', 'UPDATED'),
        event(last, 'UPDATED'),
        event(last, 'DELETED'),
      ]
      const { admitted, endedAfter } = run([...ids], events)
      expect(admitted).toEqual(['1', ...watched.slice(0, -1), last, last])
      expect(endedAfter).toBe(`DELETED ${last}`)
    })
  }
})

describe('mEvents selections: one per filter', () => {
  it('should share one selection between equal filters without ids, and never between different ones or with ids', () => {
    const mine = { OR: [{ published: { equals: true } }, { authorId: { equals: 1 } }] }
    const theirs = { OR: [{ published: { equals: true } }, { authorId: { equals: 2 } }] }
    const a = modelEventSelection('Post', { verbs: ['UPDATED'], visible: mine })
    // The same filter built again, its keys in another order: the same selection.
    const b = modelEventSelection('Post', { visible: { OR: [...mine.OR] }, verbs: ['UPDATED'] })
    expect(b).toBe(a)
    expect(modelEventSelection('Post', { verbs: ['UPDATED'], visible: theirs })).not.toBe(a)
    expect(modelEventSelection('Post', { verbs: ['CREATED'], visible: mine })).not.toBe(a)
    expect(modelEventSelection('User', { verbs: ['UPDATED'], visible: mine })).not.toBe(a)
    const ids = watchedIds(['1'])
    expect(modelEventSelection('Post', { ids })).not.toBe(modelEventSelection('Post', { ids }))
  })
})
