/**
 * The `@live` directive (docs/live-queries.md): the ecosystem's definition,
 * `@n1ru4l/graphql-live-query`'s `GraphQLLiveDirective` (`@live(if: Boolean = true, throttle: Int)`
 * on queries), so that clients written for it (its Relay and Apollo helpers, `@envelop/live-query`
 * users) send what this gateway reads.
 */
import { getLiveDirectiveArgumentValues, getLiveDirectiveNode, GraphQLLiveDirective } from '@n1ru4l/graphql-live-query'
import { GraphQLSchema, printSchema, type OperationDefinitionNode } from 'graphql'

export { GraphQLLiveDirective }

/** The directive's definition as SDL, printed from the ecosystem's object (for the schema's type definitions). */
export const liveDirectiveTypeDefs = printSchema(new GraphQLSchema({ directives: [GraphQLLiveDirective] }))

/** The request extension a client asks for patches with: `extensions: { livePatch: "json-patch" }`. */
export const LIVE_PATCH_EXTENSION = 'livePatch'
/** The patch formats a client may ask for (`@n1ru4l/graphql-live-query-patch-json-patch`'s). */
export const livePatchFormats = ['json-patch'] as const
export type LivePatchFormat = (typeof livePatchFormats)[number]

/** What the directive of a live operation, and the request's extensions, ask for. */
export interface LiveRequest {
  /** `@live(throttle:)`: the least interval between two results the client wants, in ms, if it named one. */
  readonly throttleMs: number | undefined
  /** Results as `revision`s and JSON patches (see patches.ts), when the request's extensions ask for them. */
  readonly patches: LivePatchFormat | undefined
  /** Why the request cannot be served (an unknown patch format), as the message of a BAD_USER_INPUT error. */
  readonly invalid?: string
}

/**
 * The `@live` request of `operation` with `variables` (`@live(if: $live)` may depend on them), or
 * undefined when it is not a live query. A directive argument the variables leave undecidable
 * (a wrong type) reads as "not live": execution then reports the variable's error as for any query.
 */
export function liveRequest(
  operation: OperationDefinitionNode,
  variables: Record<string, unknown> | null | undefined,
  extensions?: Record<string, unknown> | null,
): LiveRequest | undefined {
  const node = getLiveDirectiveNode(operation)
  if (!node) return undefined
  let values: ReturnType<typeof getLiveDirectiveArgumentValues>
  try {
    values = getLiveDirectiveArgumentValues(node, variables ?? undefined)
  } catch {
    return undefined
  }
  if (!values.isLive) return undefined
  const throttle = values.throttleValue
  const throttleMs = typeof throttle === 'number' && throttle > 0 ? throttle : undefined
  const patch = extensions?.[LIVE_PATCH_EXTENSION]
  if (patch === undefined || patch === null) return { throttleMs, patches: undefined }
  if (livePatchFormats.includes(patch as LivePatchFormat)) return { throttleMs, patches: patch as LivePatchFormat }
  return {
    throttleMs,
    patches: undefined,
    invalid: `extensions.${LIVE_PATCH_EXTENSION} must be one of ${livePatchFormats.map((format) => `"${format}"`).join(', ')}, got ${JSON.stringify(patch)}`,
  }
}
