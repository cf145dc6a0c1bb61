/** A Prisma client with the realtime extension on a fresh database, and the events it publishes. */
import type { Bus } from '../../src/bus/bus.ts'
import { createMemoryBus } from '../../src/bus/memory.ts'
import { dataModel, openExampleDatabase, type ExampleDatabase as Database } from '../../examples/app/database.ts'
import type { ModelEvent } from '../../src/events.ts'
import { realtime } from '../../src/prisma/extension.ts'
import type { TestDatabase } from './databases.ts'

export interface RealtimeFixture {
  readonly database: Database
  readonly prisma: ReturnType<typeof extend>
  readonly bus: Bus
  /** Every event published so far, in order. */
  readonly events: ModelEvent[]
  /** Forgets the events received so far. */
  clear(): void
  close(): Promise<void>
}

const extend = (database: Database, bus: Bus) =>
  database.prisma.$extends(realtime({ bus, dataModel, logger: { error: () => {} } }))

export async function openRealtime(test: TestDatabase, bus: Bus = createMemoryBus()): Promise<RealtimeFixture> {
  const database = await openExampleDatabase(test.url)
  const events: ModelEvent[] = []
  for (const model of dataModel.models) bus.subscribe(`model:${model.name}`, (event) => events.push(event))
  return {
    database,
    prisma: extend(database, bus),
    bus,
    events,
    clear: () => (events.length = 0),
    close: async () => {
      await bus.close()
      await database.close()
    },
  }
}

/** The events in a short form that reads well in assertions. */
export const brief = (events: readonly ModelEvent[]) =>
  events.map((e) =>
    [
      e.verb,
      `${e.model}:${e.recordId}`,
      e.attribute,
      e.addedIds?.join(','),
      e.removedIds?.join(','),
      e.updatedFields?.join(','),
    ]
      .filter((part) => part !== undefined)
      .join(' '),
  )
