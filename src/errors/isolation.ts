/**
 * A group's execution read something its group key does not hold (docs/architecture.md §6). A bug in a resolver, not the client's fault: it is thrown in every
 * environment (a null field and a masked error beat another viewer's data), shown in
 * development and tests, masked as an unexpected error (and logged) in production.
 */
export class IsolationError extends Error {
  override readonly name = 'IsolationError'
  constructor(
    /** What was read, as a path from the context: `context.viewer.id`. */
    readonly read: string,
    why = 'a group of subscriptions shares one execution per event, and its context holds only what the group key holds',
  ) {
    super(`${read} is not part of this subscription's group key: ${why}`)
  }
}
