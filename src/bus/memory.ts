/**
 * The in-memory bus: one process, no service. Listeners run synchronously in publish order;
 * a listener that throws is reported and does not stop the others.
 */
import { BusClosedError, type Bus, type Listener, type Topic, type TopicMap } from './bus.ts'

export interface MemoryBusOptions {
  /** Told about a listener that threw. @default logs nothing */
  onListenerError?: (error: unknown, topic: string) => void
}

export function createMemoryBus(options: MemoryBusOptions = {}): Bus & { listenerCount(): number } {
  const listeners = new Map<string, Set<(payload: unknown) => void>>()
  let closed = false
  return {
    async publish<T extends Topic>(topic: T, payload: TopicMap[T]) {
      if (closed) throw new BusClosedError()
      for (const listener of [...(listeners.get(topic) ?? [])]) {
        try {
          listener(payload)
        } catch (error) {
          options.onListenerError?.(error, topic)
        }
      }
    },
    subscribe<T extends Topic>(topic: T, listener: Listener<T>) {
      let set = listeners.get(topic)
      if (!set) listeners.set(topic, (set = new Set()))
      const entry = listener as (payload: unknown) => void
      set.add(entry)
      return () => {
        set.delete(entry)
        if (set.size === 0 && listeners.get(topic) === set) listeners.delete(topic)
      }
    },
    async ping() {
      if (closed) throw new BusClosedError()
    },
    async close() {
      closed = true
      listeners.clear()
    },
    listenerCount: () => [...listeners.values()].reduce((sum, set) => sum + set.size, 0),
  }
}
