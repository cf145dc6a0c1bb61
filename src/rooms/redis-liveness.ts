/**
 * Liveness of the instances sharing a Redis rooms registry. Each instance refreshes a heartbeat
 * key that lives `heartbeatTtlMs`, every third of that; an instance is dead once its heartbeat
 * expired (it lost Redis for that long), or once nobody has listened on its command channel for a
 * third of it (it crashed: its connections to Redis closed with it). Dead instances are purged by every cluster read
 * (see redis-scripts.ts) and, so that Redis holds no ghost even when nobody reads, by a periodic
 * sweep on every instance.
 */
import type { RedisMirror } from './redis-mirror.ts'
import type { RoomStorage } from './redis-store.ts'

export interface LivenessOptions {
  readonly mirror: RedisMirror
  readonly store: RoomStorage
  readonly heartbeatTtlMs: number
  readonly sweepIntervalMs: number
}

/** Starts the heartbeat and the sweep; returns the function that stops them. */
export function startLiveness({ mirror, store, heartbeatTtlMs, sweepIntervalMs }: LivenessOptions): () => void {
  const beat = () => void mirror.beat()
  const sweep = () => {
    // While Redis is out of reach, healing refreshes the heartbeat and sweeping waits.
    if (mirror.state === 'broken') return
    store.sweep().catch((error: unknown) => mirror.broke(error, 'rooms registry sweep'))
  }
  // unref: the registry alone must not keep a process alive.
  const timers = [
    setInterval(beat, Math.max(1, Math.floor(heartbeatTtlMs / 3))).unref(),
    setInterval(sweep, sweepIntervalMs).unref(),
  ]
  return () => timers.forEach((timer) => clearInterval(timer))
}
