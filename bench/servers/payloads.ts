/**
 * What every server publishes for a stamp, in the same shape: the record or message a GraphQL
 * subscriber's selection set would return, so that every server sends frames of about the same
 * size.
 */
import { stampTitle, type Scenario, type Stamp } from '../common.ts'

/** The root value each GraphQL server's subscription resolves to (a model event or a room message). */
export function eventFor(scenario: Scenario, stamp: Stamp) {
  const at = new Date().toISOString()
  switch (scenario) {
    case 'room':
      return { event: 'm', data: stamp, sentAt: at }
    case 'userEvents':
      return {
        model: 'User',
        verb: 'MESSAGE' as const,
        recordId: '1',
        node: { id: 1, email: 'ada@example.com', name: 'Ada', createdAt: new Date(0) },
        data: stamp,
        at,
      }
    case 'postEvents': {
      const node = { id: 7, title: stampTitle(stamp), body: null, published: true, authorId: 1 }
      return {
        model: 'Post',
        verb: 'UPDATED' as const,
        recordId: '7',
        node,
        previous: { ...node, title: 'before' },
        updatedFields: ['title'],
        at,
      }
    }
  }
}

/** The `data` of the result a subscriber receives (what raw ws sends as is). */
export function resultDataFor(scenario: Scenario, stamp: Stamp) {
  const event = eventFor(scenario, stamp) as Record<string, any>
  switch (scenario) {
    case 'room':
      return { room: { event: event.event, data: event.data, sentAt: event.sentAt } }
    case 'userEvents':
      return { userEvents: { verb: event.verb, recordId: event.recordId, data: event.data } }
    case 'postEvents':
      return {
        postEvents: { verb: event.verb, recordId: event.recordId, node: { title: event.node.title, published: true } },
      }
  }
}
