/**
 * Ids the gateway keeps for as long as what they name lives (connections, room subscriptions).
 *
 * Node's `randomUUID()` builds its text by concatenating the hex of each byte, so what it
 * returns is a rope: a tree of some 15 concatenated strings, about 480 bytes of heap for 36
 * characters, kept as long as the id is (and, once something flattens it, beside its flat
 * copy). An id made here is the same UUID copied once into a flat string, about 60 bytes:
 * with two ids per subscribed connection, that is some 0.8 KB of every idle connection
 * (docs/performance.md, What an idle connection holds).
 */
import { randomUUID } from 'node:crypto'

/** A random UUID (RFC 9562 version 4) as one flat string. */
export function newId(): string {
  return Buffer.from(randomUUID(), 'latin1').toString('latin1')
}
