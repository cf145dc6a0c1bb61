/**
 * A group: the subscriptions that would receive the same result for every payload, because
 * they run the same document with the same variables for viewers whose policies are the same
 * (docs/architecture.md §6; the key is the transport's to build, and never names a connection). The group
 * runs the shared parts of the selection (`see`, `pick`) and the execution once per payload,
 * and every member reuses what it produced: the per-payload cost of a group does not grow with
 * its size.
 */
import type { Selection } from './selection.ts'
import type { Rendering } from './rendering.ts'

/** Executes the group's selection set on a root value and serialises the result, once. */
export type Renderer<V> = (value: V) => Rendering

const NOTHING = Symbol('nothing')

export class Group<P = unknown, S = unknown, V = unknown> {
  #members = 0
  // One-entry memos, each keyed by the identity of its input: members of a model topic share
  // the payload; members reached one connection at a time (rooms) share the picked value.
  #payload: P | typeof NOTHING = NOTHING
  #seen: S | undefined
  #seenFor: S | typeof NOTHING = NOTHING
  #value: V | undefined
  #valueFor: V | typeof NOTHING = NOTHING
  #rendering: Rendering | undefined
  /** Renderings of other recent values (members of one payload may pick a few different ones). */
  #renderings = new WeakMap<object, Rendering>()

  constructor(
    readonly key: string,
    readonly selection: Selection<P, S, V>,
    readonly render: Renderer<V>,
    private readonly onEmpty: (group: Group<P, S, V>) => void,
  ) {}

  get size(): number {
    return this.#members
  }

  join(): void {
    this.#members++
  }

  leave(): void {
    if (--this.#members === 0) {
      this.#payload = this.#seenFor = this.#valueFor = NOTHING
      this.#seen = this.#value = this.#rendering = undefined
      this.onEmpty(this)
    }
  }

  /** What the group's viewer sees of `payload`: `selection.see`, once per payload. */
  see(payload: P): S | undefined {
    if (this.#payload !== payload) {
      this.#seen = this.selection.see(payload)
      this.#payload = payload
    }
    return this.#seen
  }

  /** The rendered result for what was seen, or undefined when the filters skip it: `pick` and the execution, once each. */
  rendering(seen: S): Rendering | undefined {
    if (this.#seenFor !== seen) {
      this.#value = this.selection.pick ? this.selection.pick(seen) : (seen as unknown as V)
      this.#seenFor = seen
    }
    const value = this.#value
    if (value === undefined) return undefined
    if (this.#valueFor === value) return this.#rendering
    let rendering = typeof value === 'object' && value !== null ? this.#renderings.get(value) : undefined
    if (!rendering) {
      rendering = this.render(value)
      if (typeof value === 'object' && value !== null) this.#renderings.set(value, rendering)
    }
    this.#valueFor = value
    this.#rendering = rendering
    return rendering
  }
}
