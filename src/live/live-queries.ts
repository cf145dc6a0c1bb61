/**
 * Live queries (docs/live-queries.md): `query @live` answered with its result, then with the
 * complete new result whenever a committed write changes it, until the client completes it.
 *
 *   bus (model events, any source) ─▶ touched models ─▶ groups reading them ─▶ invalidate
 *   group (throttled) ─▶ execute once ─▶ equal to the last? drop : every member's next
 *
 * Identical live queries share a group (document, variables, the viewer's role and policies for
 * the models the selection reads: the fast path's key, docs/architecture.md), so one execution
 * serves every client holding it. Each execution runs with a context built from that key alone
 * (as subscription groups do), under the policies as they stand, through the same resolvers as
 * the plain query: rows the viewer may no longer read leave the result.
 *
 * Invalidation is coarse on purpose: any event of a model the selection reads re-executes it,
 * and the comparison with the last result sent drops what did not change it. Events are not
 * matched against `where` or the result's ids, which would miss a record entering a filtered
 * list through a relation; the throttle bounds the cost instead.
 */
import { execute, type DocumentNode, type GraphQLSchema } from 'graphql'
import type { Bus } from '../bus/bus.ts'
import { modelTopic, type ModelEvent } from '../events.ts'
import type { Logger } from '../logger.ts'
import { noopMetrics, type Metrics } from '../metrics.ts'
import type { DataModel } from '../models/data-model.ts'
import { keyOf, policyViewer } from '../delivery/grouping.ts'
import type { MaskError } from '../transport/frames.ts'
import type { LiveRequest } from './directive.ts'
import { LiveGroup, type LiveMember } from './group.ts'
import { modelsRead } from './reads.ts'

/** The default least interval between two executions of one group, ms (`MIZZEN_LIVE_THROTTLE_MS`). */
export const DEFAULT_LIVE_THROTTLE_MS = 100

export interface LiveQueriesOptions {
  readonly bus: Bus
  readonly schema: GraphQLSchema
  readonly dataModel: DataModel
  /**
   * Least interval between two executions (and so two results) of one group, in ms; a client's
   * `@live(throttle:)` may ask for a longer one, never a shorter one. @default 100
   */
  readonly throttleMs?: number
  readonly logger?: Logger
  /** Counts live queries (`mizzen_subscriptions{kind="live"}`) and their results. @default noopMetrics */
  readonly metrics?: Metrics
}

/** A live query ready to run: what graphql-js `execute` takes, and what its `@live` asks for. */
export interface LiveOperation {
  readonly document: DocumentNode
  readonly operationName: string | null | undefined
  readonly variableValues: Record<string, unknown> | null | undefined
  readonly contextValue: Record<string, unknown>
  readonly request: LiveRequest
}

/** Whether a model event can change what a query reads. */
function changesData(event: ModelEvent): boolean {
  // A message (`publishM`) changes no record; an update that changed no field changes nothing.
  if (event.verb === 'MESSAGE') return false
  if (event.verb === 'UPDATED' && event.updatedFields && event.updatedFields.length === 0) return false
  return true
}

export class LiveQueries {
  readonly #schema: GraphQLSchema
  readonly #dataModel: DataModel
  readonly #throttleMs: number
  readonly #viewerPart: ReturnType<typeof policyViewer>
  readonly #groups = new Map<string, LiveGroup>()
  /** Groups by the models they read: who an event invalidates. */
  readonly #byModel = new Map<string, Set<LiveGroup>>()
  readonly #stops: (() => void)[]
  readonly #metrics: Metrics
  readonly #owner = {
    dissolved: (group: LiveGroup) => this.#forget(group),
    executed: () => void this.#executions++,
    delivered: (count: number) => this.#metrics.delivered('live', count),
  }
  #executions = 0
  #closed = false

  constructor(options: LiveQueriesOptions) {
    this.#schema = options.schema
    this.#dataModel = options.dataModel
    this.#throttleMs = options.throttleMs ?? DEFAULT_LIVE_THROTTLE_MS
    this.#metrics = options.metrics ?? noopMetrics
    this.#viewerPart = policyViewer(options.schema, options.dataModel)
    // Every event of every source reaches this process's listeners: this gateway's writes, a
    // backend's extension and other gateways through Redis alike. A gap (events this process
    // missed) is healed by executing again: a live query needs the state, not the events.
    this.#stops = options.dataModel.models.map((model) =>
      options.bus.subscribe(
        modelTopic(model.name),
        (event) => {
          if (changesData(event)) this.#invalidate(model.name)
        },
        {
          onGap: (gap) => {
            options.logger?.warn({ topic: gap.topic, reason: gap.reason }, 'live queries re-executed after a gap')
            this.#invalidate(model.name)
          },
        },
      ),
    )
  }

  /**
   * Adds `member` to the group of `operation` (made, and executed, when it is the first): it
   * receives the current result, then every different one. Returns the function that takes it
   * out (the client completed the operation, or went away).
   */
  join(operation: LiveOperation, mask: MaskError, member: LiveMember): () => void {
    if (this.#closed) {
      member.complete()
      return () => {}
    }
    const intervalMs = Math.max(this.#throttleMs, operation.request.throttleMs ?? 0)
    const { document, operationName, variableValues, contextValue } = operation
    const viewer = this.#viewerPart(contextValue, document, operationName)
    const key = this.#key(operation, viewer.key, intervalMs)
    let group = this.#groups.get(key)
    if (!group) {
      const schema = this.#schema
      const models = modelsRead(schema, this.#dataModel, document, operationName)
      // The group's executions get a context built from its key alone (the viewer's role and
      // policies for what the query reads), never a member's: isolation by construction.
      const groupContext = viewer.context()
      group = new LiveGroup(
        key,
        models,
        intervalMs,
        () => execute({ schema, document, operationName, variableValues, contextValue: groupContext }),
        mask,
        this.#owner,
      )
      this.#groups.set(key, group)
      for (const model of models) {
        let groups = this.#byModel.get(model)
        if (!groups) this.#byModel.set(model, (groups = new Set()))
        groups.add(group)
      }
    }
    // Counted from here until it leaves, whichever way: the client, the group (refused, failed) or shutdown.
    const metrics = this.#metrics
    let counted = true
    metrics.subscriptionStarted('live')
    const uncount = () => {
      if (!counted) return
      counted = false
      metrics.subscriptionEnded('live')
    }
    const counting: LiveMember = {
      deliver: (result) => member.deliver(result),
      complete: () => (uncount(), member.complete()),
      fail: (errorsJson, error) => (uncount(), member.fail(errorsJson, error)),
    }
    const joined = group
    joined.join(counting)
    return () => {
      uncount()
      joined.leave(counting)
    }
  }

  /** Groups with at least one member. */
  get groupCount(): number {
    return this.#groups.size
  }

  /** Live queries held, over all groups. */
  get memberCount(): number {
    let count = 0
    for (const group of this.#groups.values()) count += group.size
    return count
  }

  /** Executions since the gateway started (first results and re-executions), over all groups. */
  get executions(): number {
    return this.#executions
  }

  /** Completes every live query and stops listening (on shutdown). */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const stop of this.#stops) stop()
    for (const group of [...this.#groups.values()]) group.endAll()
  }

  /**
   * Everything a group's results depend on: the operation and its variables, the viewer's
   * policies for what the selection reads, the throttle, and the document's text (the parsed
   * object changes once it leaves Yoga's cache).
   */
  #key(operation: LiveOperation, viewer: string, intervalMs: number): string {
    const { document, operationName, variableValues } = operation
    const text = document.loc?.source.body ?? keyOf(document)
    return `${operationName ?? ''}\n${keyOf(variableValues ?? {})}\n${viewer}\n${intervalMs}\n${text}`
  }

  #invalidate(model: string): void {
    const groups = this.#byModel.get(model)
    if (groups) for (const group of groups) group.invalidate()
  }

  #forget(group: LiveGroup): void {
    if (this.#groups.get(group.key) === group) this.#groups.delete(group.key)
    for (const model of group.models) {
      const groups = this.#byModel.get(model)
      if (!groups?.delete(group)) continue
      if (groups.size === 0) this.#byModel.delete(model)
    }
  }
}
