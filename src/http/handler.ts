/**
 * What the gateway's HTTP server asks of each of its endpoints before Yoga (probes, metrics,
 * GraphiQL, the demo): answer a request that is yours and say so, or leave it to the next.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** Answers `request` and resolves true if it is this handler's; resolves false to let the next one have it. */
export type RequestHandler = (request: IncomingMessage, response: ServerResponse) => Promise<boolean>

/** The path of `request`'s URL, without its query string. */
export const requestPath = (request: IncomingMessage): string => (request.url ?? '').split('?')[0]!
