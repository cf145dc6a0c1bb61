/**
 * A group of identical live queries (docs/live-queries.md): one document with one set of
 * variables, for viewers whose policies for the models it reads are the same (the fast path's
 * group key, docs/architecture.md). The group executes the query, compares the result with the
 * last one it sent, and hands a new one to every member: the cost of a change does not grow with
 * the number of clients holding the query.
 *
 * Throttle: at most one execution per `intervalMs`, counted from the end of the previous one, so
 * that results leave at least that far apart and a burst of writes costs one execution per
 * interval. An invalidation that arrives while the group waits or executes is never lost: it
 * makes one more execution (the trailing edge), so the last result always reflects the last write.
 */
import type { ExecutionResult } from 'graphql'
import { errorsJson, type MaskError } from '../transport/frames.ts'
import { LiveResult } from './result.ts'

/** Where a member's results go: a WebSocket operation or an SSE stream. */
export interface LiveMember {
  /** A result different from the previous one (the first: the query's result). */
  deliver(result: LiveResult): void
  /** The server ends the operation after the last result (a refused query, shutdown). */
  complete(): void
  /** Executing failed as a whole (`errorsJson`: the masked errors); the operation ends. */
  fail(errorsJson: string, error: unknown): void
}

/** Executes the group's query once (graphql-js `execute` with the context built from the group key, docs/architecture.md §6). */
export type LiveExecute = () => ExecutionResult | Promise<ExecutionResult>

/** What a group reports to the registry that holds it. */
export interface GroupOwner {
  /** The group has no member left: forget it. */
  dissolved(group: LiveGroup): void
  /** One execution started (for `LiveQueries.executions`). */
  executed(): void
  /** `count` results were handed to members (for `mizzen_deliveries_total{kind="live"}`). */
  delivered(count: number): void
}

export class LiveGroup {
  readonly #members = new Set<LiveMember>()
  #last: LiveResult | undefined
  #running = false
  /** An invalidation came since the running or last execution started: execute again. */
  #dirty = false
  #timer: NodeJS.Timeout | undefined
  /** When the last execution ended (ms since the epoch); the next starts `intervalMs` after it at the earliest. */
  #lastEndedAt = Number.NEGATIVE_INFINITY
  #dissolved = false

  constructor(
    readonly key: string,
    /** The models whose events re-execute it. */
    readonly models: readonly string[],
    readonly intervalMs: number,
    private readonly execute: LiveExecute,
    private readonly mask: MaskError,
    private readonly owner: GroupOwner,
  ) {}

  get size(): number {
    return this.#members.size
  }

  /** Adds a member: it receives the group's current result now (or its first, once executed). */
  join(member: LiveMember): void {
    this.#members.add(member)
    const last = this.#last
    if (last) {
      member.deliver(last)
      this.owner.delivered(1)
    } else if (!this.#running && !this.#timer) {
      this.#run()
    }
  }

  /** A member leaves (the client completed it, or went away); the last one dissolves the group. */
  leave(member: LiveMember): void {
    if (!this.#members.delete(member) || this.#members.size > 0) return
    this.#dissolve()
  }

  /** A model the query reads changed: execute again, at the throttle's pace. */
  invalidate(): void {
    if (this.#dissolved) return
    this.#dirty = true
    this.#schedule()
  }

  /** Ends every member (shutdown). */
  endAll(): void {
    for (const member of [...this.#members]) this.#end(member)
  }

  #schedule(): void {
    if (this.#running || this.#timer) return
    const wait = this.#lastEndedAt + this.intervalMs - Date.now()
    if (wait <= 0) this.#run()
    else this.#timer = setTimeout(() => this.#run(), wait)
  }

  #run(): void {
    this.#timer = undefined
    this.#dirty = false
    this.#running = true
    this.owner.executed()
    let outcome: ExecutionResult | Promise<ExecutionResult>
    try {
      outcome = this.execute()
    } catch (error) {
      this.#settle(undefined, error)
      return
    }
    if (typeof (outcome as Promise<ExecutionResult>).then === 'function')
      (outcome as Promise<ExecutionResult>).then(
        (result) => this.#settle(result, undefined),
        (error: unknown) => this.#settle(undefined, error ?? new Error('live query execution failed')),
      )
    else this.#settle(outcome as ExecutionResult, undefined)
  }

  #settle(result: ExecutionResult | undefined, error: unknown): void {
    this.#running = false
    this.#lastEndedAt = Date.now()
    if (this.#dissolved) return
    if (result === undefined) {
      const json = errorsJson([error], this.mask)
      for (const member of [...this.#members]) member.fail(json, error)
      this.#members.clear()
      this.#dissolve()
      return
    }
    const next = new LiveResult(result, this.mask)
    const first = this.#last === undefined
    // Never a result equal to the last one sent.
    if (next.json !== this.#last?.json) {
      next.previous = this.#last
      if (this.#last) this.#last.previous = undefined
      this.#last = next
      for (const member of [...this.#members]) member.deliver(next)
      this.owner.delivered(this.#members.size)
      // Refused as a whole at the start: the query may not run, and ends as it would without
      // @live. Later, such a result is a race with concurrent writes (a row read, its relation
      // deleted before it resolved): it is sent, and the next invalidation corrects it.
      if (next.refused && first) {
        for (const member of [...this.#members]) this.#end(member)
        return
      }
    }
    if (this.#dirty) this.#schedule()
  }

  #end(member: LiveMember): void {
    this.leave(member)
    member.complete()
  }

  #dissolve(): void {
    if (this.#dissolved) return
    this.#dissolved = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.owner.dissolved(this)
  }
}
