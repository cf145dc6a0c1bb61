/**
 * `GET /health` (the process is up) and `GET /ready` (its database and bus answer), for load
 * balancers and orchestrators. Both answer JSON.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

export type ReadinessCheck = () => Promise<void>

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  res.end(JSON.stringify(body))
}

/** Answers the probe paths and returns true, or returns false for any other request. */
export function createProbeHandler(checks: Record<string, ReadinessCheck>) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const path = (req.url ?? '').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    if (path === '/health') {
      reply(res, 200, { status: 'ok' })
      return true
    }
    if (path !== '/ready') return false
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await check()
          return [name, 'ok'] as const
        } catch (error) {
          return [name, `unavailable: ${(error as Error).message.split('\n')[0]}`] as const
        }
      }),
    )
    const ready = results.every(([, state]) => state === 'ok')
    reply(res, ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable', checks: Object.fromEntries(results) })
    return true
  }
}
