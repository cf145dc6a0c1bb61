/**
 * Turns of the event loop, as the socket writes of a fan-out count them (docs/performance.md,
 * The write path). A turn is the synchronous run of one callback from the event loop and the
 * microtasks after it; a socket is written to at most twice in one: its first frame of the turn
 * at once (no frame waits for the rest of a fan-out to be built), and whatever else it is due in
 * that turn in one write at its end. A source that delivers many events in one turn (every
 * message of one read from Redis) holds every frame from the first, so that each socket gets
 * all of them in one write.
 */

/** The turn's number, counted only in turns that asked for it. */
let turn = 0
/** A microtask is queued that starts the next turn's count. */
let ending = false
/** Every frame of this turn waits for its end. */
let holdAll = false

function nextTurn(): void {
  // Kept a small integer: it is compared, never read as a count.
  turn = (turn + 1) & 0x3fffffff
  ending = false
  holdAll = false
}

function endAtMicrotask(): void {
  if (ending) return
  ending = true
  queueMicrotask(nextTurn)
}

/** This turn's number: a writer that stamped it on a socket knows the socket was written in this turn. */
export function currentTurn(): number {
  endAtMicrotask()
  return turn
}

/** Every frame from now until the end of this turn leaves at its end, one write per socket. */
export function holdWritesThisTurn(): void {
  holdAll = true
  endAtMicrotask()
}

/** Whether `holdWritesThisTurn` was called in this turn. */
export function writesHeldThisTurn(): boolean {
  return holdAll
}
