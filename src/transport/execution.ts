/**
 * Runs the operations of WebSocket connections through Yoga's envelop pipeline
 * (`yoga.getEnveloped`): parse, validate (with the query limits), context and error masking are
 * Yoga's, as over HTTP.
 *
 * - Queries and mutations: `enveloped.execute`, every plugin hook included.
 * - Subscriptions: the subscribe resolver runs once per subscription (graphql-js
 *   `createSourceEventStream`: policies, arguments, room joins). When it returns a hub
 *   subscription (every `room`, `messages` and `mEvents` subscription), the subscription joins
 *   its group in the delivery hub, and each event is executed once per group (graphql-js
 *   `execute` on the event as root value, as graphql-js does for each event of a subscription),
 *   with a context built from the group key's viewer part alone (`delivery/isolation.ts`), its
 *   errors masked by Yoga's masking, and serialised once. Other async iterables are read
 *   and executed one event at a time. Envelop's `onSubscribe`/`onExecute` hooks of other
 *   plugins do not run for subscription events: the fast path has no per-subscriber pipeline.
 * - Live queries (`query @live`): the operation joins its group of live queries
 *   (src/live/websocket.ts), which executes once per change for all its members; it counts as
 *   a subscription for the connection's limit.
 */
import {
  createSourceEventStream,
  execute,
  getOperationAST,
  GraphQLError,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type OperationDefinitionNode,
} from 'graphql'
import type { SubscribePayload } from 'graphql-ws'
import type { YogaServerInstance } from 'graphql-yoga'
import type { DeliveryHub } from '../delivery/hub.ts'
import { keyOf, type ViewerPart } from '../delivery/grouping.ts'
import { Rendering, type SubscriptionSink } from '../delivery/rendering.ts'
import { HubSubscription } from '../delivery/subscription.ts'
import { liveRequest, type LiveRequest } from '../live/directive.ts'
import type { LiveQueries } from '../live/live-queries.ts'
import { runLiveOverWebSocket } from '../live/websocket.ts'
import { errorsJson, resultJson, type MaskError } from './frames.ts'

export type Yoga = YogaServerInstance<Record<string, unknown>, Record<string, unknown>>
type Enveloped = ReturnType<Yoga['getEnveloped']>

/**
 * The part of the viewer that executing `document` depends on (its policies for the models the
 * selection set reaches): subscriptions share a group only when theirs are equal, and the
 * group's executions get the context it builds, which holds nothing else.
 */
export type ViewerPartOf = (
  context: Record<string, unknown>,
  document: DocumentNode,
  operationName: string | null | undefined,
) => ViewerPart

/** An operation parsed and validated, ready to run. */
export interface PreparedOperation {
  readonly enveloped: Enveloped
  readonly document: DocumentNode
  readonly operation: OperationDefinitionNode
  readonly payload: SubscribePayload
  /** A live query's `@live` request (see src/live/); undefined for every other operation. */
  readonly live: LiveRequest | undefined
}

/** What an operation runs, for stopping it: a hub subscription, or an iterator read one value at a time. */
export interface Stoppable {
  /** Stops it; resolves once it wound down. */
  cancel(): Promise<void>
}

/** Where an operation's results go: the connection's operation (see connection.ts). */
export interface OperationSink extends SubscriptionSink {
  /** The client completed it, or the socket closed: stop, send nothing. */
  readonly cancelled: boolean
  /** What stops the subscription it runs. */
  stopWith(running: Stoppable): void
  /** An `error` message (the operation ends). */
  error(errorsJson: string): void
}

/**
 * Yoga's masking function (the one its pipeline applies over HTTP, which also logs what it
 * masks), or none when masking is off. Yoga 5 keeps it in `maskedErrorsOpts`.
 */
export function yogaMaskError(yoga: Yoga): MaskError {
  const options = (
    yoga as unknown as {
      maskedErrorsOpts?: { maskError: (error: unknown, message: string) => GraphQLError; errorMessage: string } | null
    }
  ).maskedErrorsOpts
  if (!options)
    return (error) =>
      error instanceof GraphQLError ? error : new GraphQLError(error instanceof Error ? error.message : String(error))
  return (error) => options.maskError(error, options.errorMessage)
}

const isPromise = <T>(value: T | Promise<T>): value is Promise<T> =>
  typeof (value as { then?: unknown })?.then === 'function'
const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Record<symbol, unknown>)[Symbol.asyncIterator] === 'function'

export class OperationRunner {
  constructor(
    private readonly yoga: Yoga,
    private readonly hub: DeliveryHub,
    private readonly mask: MaskError,
    private readonly viewerPart: ViewerPartOf,
    /** Where live queries are grouped; without it `@live` is answered once, as a plain query. */
    private readonly live?: LiveQueries,
  ) {}

  /**
   * Parses and validates, synchronously (so that a connection's messages are refused or accepted
   * in the order they came). Returns the errors of an operation that cannot run.
   */
  prepare(
    initialContext: Record<string, unknown>,
    payload: SubscribePayload,
  ): PreparedOperation | readonly GraphQLError[] {
    const enveloped = this.yoga.getEnveloped(initialContext)
    let document: DocumentNode
    try {
      document = enveloped.parse(payload.query)
    } catch (error) {
      // A syntax error is the client's, not a protocol violation: answer it, keep the socket.
      return [error instanceof GraphQLError ? error : new GraphQLError(String(error))]
    }
    let errors: readonly GraphQLError[]
    try {
      errors = enveloped.validate(enveloped.schema, document)
    } catch (error) {
      // graphql-armor's depth and alias rules throw their GraphQLError rather than report it;
      // Yoga answers it over HTTP, and so must this: an error message, the socket kept.
      if (error instanceof GraphQLError) return [error]
      throw error
    }
    if (errors.length) return errors
    const operation = getOperationAST(document, payload.operationName)
    if (!operation) return [new GraphQLError('Unable to identify operation')]
    const live =
      operation.operation === 'query' ? liveRequest(operation, payload.variables, payload.extensions) : undefined
    return { enveloped, document, operation, payload, live }
  }

  /** Runs a prepared operation; resolves once its result is sent, or its subscription started (or failed). */
  async run(prepared: PreparedOperation, sink: OperationSink): Promise<void> {
    const { enveloped, document, payload } = prepared
    const contextValue = await enveloped.contextFactory()
    if (sink.cancelled) return
    const args: ExecutionArgs = {
      schema: enveloped.schema,
      document,
      operationName: payload.operationName ?? null,
      variableValues: payload.variables ?? null,
      contextValue,
    }
    if (prepared.operation.operation === 'subscription') return this.#subscribe(args, sink)
    if (prepared.live && this.live)
      return runLiveOverWebSocket(
        this.live,
        {
          document,
          operationName: args.operationName,
          variableValues: args.variableValues,
          contextValue,
          request: prepared.live,
        },
        this.mask,
        sink,
      )
    const result = (await enveloped.execute(args)) as ExecutionResult | AsyncIterable<ExecutionResult>
    if (isAsyncIterable(result))
      return this.#forEach(result, sink, (value) => Rendering.of(resultJson(value as ExecutionResult, this.mask)))
    if (sink.cancelled) return
    sink.next(Rendering.of(resultJson(result, this.mask)))
    sink.complete()
  }

  async #subscribe(args: ExecutionArgs, sink: OperationSink): Promise<void> {
    const source = await createSourceEventStream(args)
    if (!isAsyncIterable(source)) {
      // The resolver refused (bad input, policies): one result with its errors, then complete.
      if (sink.cancelled) return
      sink.next(Rendering.of(resultJson(source, this.mask)))
      sink.complete()
      return
    }
    if (source instanceof HubSubscription) {
      sink.stopWith(source)
      if (sink.cancelled) return
      const viewer = this.viewerPart(args.contextValue as Record<string, unknown>, args.document, args.operationName)
      // The group's executions (with the first member's renderer) get the viewer part's context, not this one's.
      this.hub.join(source, this.#groupKey(args, source, viewer.key), this.#renderer(args, viewer), sink)
      return
    }
    void this.#forEach(source, sink, this.#renderer(args))
  }

  /**
   * Everything a group's results depend on: the operation, its variables, what the selection
   * takes from the viewer, and the viewer's policies for what the selection set reaches.
   */
  #groupKey(args: ExecutionArgs, subscription: HubSubscription, viewer: string): string {
    const payloadKey = `${args.operationName ?? ''}\n${keyOf(args.variableValues ?? {})}`
    // The document's text, not the parsed object: the same text parses to a new object once it leaves Yoga's cache.
    const text = args.document.loc?.source.body ?? keyOf(args.document)
    return `${payloadKey}\n${subscription.selection.viewerKey ?? ''}\n${viewer}\n${text}`
  }

  /**
   * Executes the subscription's selection set on one event, masks its errors and serialises it;
   * for a group, with the context its viewer part builds (once, at the first event).
   */
  #renderer(args: ExecutionArgs, group?: ViewerPart): (value: unknown) => Rendering {
    const { schema, document, operationName, variableValues } = args
    let contextValue = group ? undefined : args.contextValue
    const mask = this.mask
    return (rootValue) => {
      try {
        if (group && contextValue === undefined) contextValue = group.context()
        const result = execute({ schema, document, operationName, variableValues, contextValue, rootValue })
        if (isPromise(result))
          return Rendering.later(
            result.then((resolved) => resultJson(resolved, mask)),
            (error) => errorsJson([error], mask),
          )
        return Rendering.of(resultJson(result, mask))
      } catch (error) {
        return Rendering.failed(errorsJson([error], mask))
      }
    }
  }

  /** Reads an iterable that is not a hub subscription, one value at a time. */
  async #forEach(
    source: AsyncIterable<unknown>,
    sink: OperationSink,
    render: (value: unknown) => Rendering,
  ): Promise<void> {
    const iterator = source[Symbol.asyncIterator]()
    sink.stopWith({ cancel: async () => void (await iterator.return?.()) })
    try {
      for (;;) {
        const step = await iterator.next()
        if (step.done || sink.cancelled) break
        sink.next(render(step.value))
      }
      if (!sink.cancelled) sink.complete()
    } catch (error) {
      if (!sink.cancelled) sink.error(errorsJson([error], this.mask))
    }
  }
}
