/**
 * Ids the gateway keeps for as long as what they name lives (connections, room subscriptions).
 *
 * Node's `randomUUID()` builds its text by concatenating the hex of each byte, so what it
 * returns is a rope: a tree of some 15 concatenated strings, about 480 bytes of heap for 36
 * characters, kept as long as the id is (and, once something flattens it, beside its flat
 * copy). An id made here is written as text into a buffer and read out once as a flat string,
 * about 60 bytes, in a quarter of the time that copying a `randomUUID()` took (0.3 µs against
 * 1.3 in a loop; each connection's handshake makes one; docs/performance.md, What an idle
 * connection holds).
 */
import { randomFillSync } from 'node:crypto'

/** Random bytes drawn 128 ids at a time, as Node's `randomUUID()` does. */
const random = Buffer.alloc(16 * 128)
let randomOffset = random.length
const text = Buffer.alloc(36)
const HEX = Buffer.from('0123456789abcdef', 'latin1')

/** A random UUID (RFC 9562 version 4) as one flat string. */
export function newId(): string {
  if (randomOffset === random.length) {
    randomFillSync(random)
    randomOffset = 0
  }
  const at = randomOffset
  randomOffset += 16
  // Version 4 and the RFC's variant.
  random[at + 6] = (random[at + 6]! & 0x0f) | 0x40
  random[at + 8] = (random[at + 8]! & 0x3f) | 0x80
  let j = 0
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[j++] = 0x2d
    const byte = random[at + i]!
    text[j++] = HEX[byte >> 4]!
    text[j++] = HEX[byte & 15]!
  }
  return text.toString('latin1', 0, 36)
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
