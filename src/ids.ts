/**
 * Ids the gateway keeps for as long as what they name lives (connections, room subscriptions).
 *
 * Node's `randomUUID()` builds its text by concatenating the hex of each byte, so what it
 * returns is a rope: a tree of some 15 concatenated strings, about 480 bytes of heap for 36
 * characters, kept as long as the id is (and, once something flattens it, beside its flat
 * copy). An id made here is the same UUID copied once into a flat string, about 60 bytes
 * (docs/performance.md, What an idle connection holds).
 */
import { randomUUID } from 'node:crypto'

/** A random UUID (RFC 9562 version 4) as one flat string. */
export function newId(): string {
  return Buffer.from(randomUUID(), 'latin1').toString('latin1')
}

let lastLocalId = 0

/**
 * An id unique within this process only, and short (about 30 bytes of heap): for what never
 * leaves the process that made it and is named together with a connection's id anyway (a
 * `room` subscription's reason to be in its room: the registry keeps it on the instance that
 * holds the connection, docs/architecture.md §8).
 */
export function newLocalId(): string {
  return (++lastLocalId).toString(36)
}
