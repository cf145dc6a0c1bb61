/**
 * The bus carries events between the writers (the realtime Prisma extension, room mutations)
 * and every gateway instance. In memory by default; other backends implement the same contract
 * (test/bus.contract.test.ts runs it over each).
 */
import type { ModelEvent } from '../events.ts'
import type { RoomEnvelope } from '../rooms/messages.ts'

/**
 * The typed topic map: topic name → payload. Model events travel on `model:<Model>`; other
 * features add their topics here.
 */
export interface TopicMap {
  [topic: `model:${string}`]: ModelEvent
  /** Room broadcasts and blasts: every instance delivers them to its own connections. */
  'rooms:message': RoomEnvelope
}

export type Topic = keyof TopicMap & string
export type Listener<T extends Topic> = (payload: TopicMap[T]) => void

export interface Bus {
  /**
   * Sends `payload` to every listener of `topic`, in every process on this bus. Listeners in this
   * process are called before `publish` resolves and never wait on the network. Rejects when the
   * message could not be handed to the bus.
   */
  publish<T extends Topic>(topic: T, payload: TopicMap[T]): Promise<void>
  /** Calls `listener` for every payload published on `topic` from now on; returns the unsubscribe function. */
  subscribe<T extends Topic>(topic: T, listener: Listener<T>): () => void
  /** Resolves when the bus can carry messages (for `/ready`). */
  ping(): Promise<void>
  /** Stops delivery and releases connections; later publishes reject. */
  close(): Promise<void>
}

export class BusClosedError extends Error {
  override readonly name = 'BusClosedError'
  constructor() {
    super('the bus is closed')
  }
}
