/**
 * The gateway's security settings resolved from its options: the authenticator, the policies,
 * the limits, and the Yoga plugins that enforce the query limits and the introspection switch
 * on every transport.
 */
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases'
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth'
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens'
import { GraphQLError, NoSchemaIntrospectionCustomRule, type ValidationContext } from 'graphql'
import type { Plugin } from 'graphql-yoga'
import { AuthError, type Authenticator } from './auth/authenticator.ts'
import type { Viewer } from './auth/viewer.ts'
import { ConfigError, unauthenticated } from './errors.ts'
import { defaultLimits, type Limits } from './transport/limits.ts'

export function resolveLimits(overrides: Partial<Limits> = {}): Limits {
  const limits = { ...defaultLimits, ...overrides }
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0)
      throw new ConfigError(`limits.${name}`, `must be a positive integer, got ${value}`)
  }
  return limits
}

/**
 * graphql-armor's depth and alias rules throw their error, prefixed "Syntax Error", which is
 * neither a syntax error nor reported like other validation errors. Reported through the
 * validation context instead, it answers like any invalid query (HTTP 400, an `error` message on
 * WebSocket) with Yoga's GRAPHQL_VALIDATION_FAILED code.
 */
const reportAsValidationError = {
  propagateOnRejection: false,
  onReject: [
    (context: ValidationContext | null, error: GraphQLError) =>
      context?.reportError(new GraphQLError(error.message.replace(/^Syntax Error: /, ''), { nodes: error.nodes })),
  ],
}

/** The Yoga plugins that apply the query limits and the introspection switch (HTTP, SSE and WebSocket alike). */
export function queryLimitPlugins(limits: Limits, introspection: boolean): Plugin[] {
  const plugins: Plugin[] = [
    maxDepthPlugin({ n: limits.maxDepth, flattenFragments: true, ...reportAsValidationError }) as Plugin,
    // Every alias counts: graphql-armor lets `__typename` aliases through by default, and 1,500
    // of them cost the server as much as any other 1,500 fields.
    maxAliasesPlugin({ n: limits.maxAliases, allowList: [], ...reportAsValidationError }) as Plugin,
    maxTokensPlugin({ n: limits.maxTokens }) as Plugin,
  ]
  if (!introspection) plugins.push(disableIntrospection)
  return plugins
}

/**
 * Refuses `__schema` and `__type` in every validation. Not Yoga's useDisableIntrospection: that one
 * marks the requests it saw parsed over HTTP, so WebSocket operations (validated through
 * `getEnveloped`, with no such request) would still be answered.
 */
const disableIntrospection: Plugin = {
  onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule),
}

/** Authenticates an HTTP request's `Authorization` header; refused credentials answer 401. */
export async function authenticateRequest(authenticator: Authenticator, request: Request | undefined): Promise<Viewer> {
  try {
    return await authenticator.authenticate(request?.headers.get('authorization'))
  } catch (error) {
    if (!(error instanceof AuthError)) throw error
    throw unauthenticated(error.message)
  }
}
