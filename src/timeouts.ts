/** Bounded waits: nothing the gateway awaits on another process may hang a client. */

/** Thrown by `withTimeout` when the wait ran out (the work itself may still finish later). */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError'
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
  ) {
    super(`${what} did not answer within ${timeoutMs} ms`)
  }
}

/**
 * Settles like `promise`, or rejects with a TimeoutError naming `what` after `timeoutMs`. The
 * timer does not keep the process alive, and is cleared as soon as `promise` settles.
 */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, timeoutMs)), timeoutMs)
    timer.unref()
  })
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
}
