/**
 * Live queries over HTTP, through Yoga (docs/live-queries.md): an envelop plugin that
 *
 * - adds the `@live` validation rule (root fields must read models; see reads.ts), which the
 *   WebSocket transport applies too, since it validates through the same pipeline;
 * - executes a `@live` query as a stream of results, which Yoga sends as server-sent events
 *   (`Accept: text/event-stream`) or as `multipart/mixed` parts;
 * - answers a request that accepts neither (a plain JSON POST or GET) with HTTP 406 and an error
 *   saying how to ask for a live query, where Yoga alone (and `@envelop/live-query`) answer 406
 *   with no body. A live query never silently degrades to a single answer.
 *
 * Over WebSocket, live queries do not reach this plugin's execution: the transport joins them to
 * their group directly (see websocket.ts), as it does subscriptions.
 */
import { GraphQLError, getOperationAST, type ExecutionResult } from 'graphql'
import type { Plugin } from 'graphql-yoga'
import { SubscriptionStream } from '../delivery/stream.ts'
import { badInput, ErrorCode } from '../errors.ts'
import type { DataModel } from '../models/data-model.ts'
import type { MaskError } from '../transport/frames.ts'
import { yogaMaskError, type Yoga } from '../transport/execution.ts'
import { liveRequest } from './directive.ts'
import type { LiveQueries } from './live-queries.ts'
import { PatchingMember } from './patches.ts'
import { liveRootFieldsRule } from './reads.ts'

/** Media types Yoga streams results in. */
const STREAMING = /\b(text\/event-stream|multipart\/mixed)\b/i

export const notStreamableMessage =
  '@live queries stream their results: send this query over graphql-ws, or over HTTP with "Accept: text/event-stream" (SSE) or "multipart/mixed"; without @live it is answered once'

export function useLiveQueries(live: LiveQueries, dataModel: DataModel): Plugin {
  let mask: MaskError | undefined
  const rule = liveRootFieldsRule(dataModel)
  return {
    onYogaInit({ yoga }) {
      mask = yogaMaskError(yoga as unknown as Yoga)
    },
    onValidate({ addValidationRule }) {
      addValidationRule(rule)
    },
    onExecute({ args, setExecuteFn }) {
      const operation = getOperationAST(args.document, args.operationName)
      if (operation?.operation !== 'query') return
      const params = (args.contextValue as { params?: { extensions?: Record<string, unknown> } }).params
      const request = liveRequest(operation, args.variableValues, params?.extensions)
      if (!request) return
      setExecuteFn((): ExecutionResult | AsyncIterable<ExecutionResult> => {
        const contextValue = args.contextValue as unknown as Record<string, unknown>
        const httpRequest = contextValue.request as Request | undefined
        if (httpRequest && !STREAMING.test(httpRequest.headers.get('accept') ?? ''))
          return {
            errors: [
              new GraphQLError(notStreamableMessage, {
                extensions: { code: ErrorCode.BadUserInput, http: { status: 406 } },
              }),
            ],
          }
        if (request.invalid) return { errors: [badInput(request.invalid)] }
        const patching = request.patches ? new PatchingMember() : undefined
        const stream = new SubscriptionStream<ExecutionResult>(() => leave())
        const leave = live.join(
          {
            document: args.document,
            operationName: args.operationName,
            variableValues: args.variableValues,
            contextValue,
            request,
          },
          mask!,
          {
            // The result itself (its errors unmasked): Yoga masks what it serialises.
            deliver: (result) => stream.push(patching ? patching.object(result) : result.result),
            complete: () => stream.end(),
            fail: (_errorsJson, error) => {
              const cause = error instanceof Error ? error : new Error(String(error))
              stream.push({
                errors: [
                  error instanceof GraphQLError ? error : new GraphQLError(cause.message, { originalError: cause }),
                ],
              })
              stream.end()
            },
          },
        )
        return stream
      })
    },
  }
}
