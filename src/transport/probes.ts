/**
 * `GET /health` (the process is up) and `GET /ready` (what it depends on answers), for load
 * balancers and orchestrators. Both answer JSON. `/ready` runs every check at once, each bounded,
 * so it answers within `timeoutMs` whatever hangs, and names every failing check with its reason.
 */
import type { ServerResponse } from 'node:http'
import { requestPath, type RequestHandler } from '../http/handler.ts'
import { withTimeout } from '../timeouts.ts'
import { classifyInfrastructureError } from '../errors.ts'

export type ReadinessCheck = () => Promise<void>

export interface ProbeOptions {
  /** How long each readiness check may take, in ms; past it the check fails ("did not answer"). @default 1500 */
  timeoutMs?: number
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
  res.end(JSON.stringify(body))
}

/** A failed check's reason: never empty, never a stack, and for driver errors the short reason, not Prisma's invocation text. */
export function failureReason(error: unknown): string {
  const infrastructure = classifyInfrastructureError(error)
  if (infrastructure) return infrastructure.reason
  const message = error instanceof Error ? error.message : String(error)
  const firstLine = message
    .split('\n')
    .map((line) => line.trim())
    .find(Boolean)
  if (firstLine) return firstLine
  const code = (error as { code?: unknown } | null)?.code
  return [error instanceof Error ? error.name : typeof error, code].filter(Boolean).join(' ') || 'failed'
}

/** Answers the probe paths and returns true, or returns false for any other request. */
export function createProbeHandler(checks: Record<string, ReadinessCheck>, options: ProbeOptions = {}): RequestHandler {
  const timeoutMs = options.timeoutMs ?? 1500
  return async (req, res) => {
    const path = requestPath(req)
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    if (path === '/health') {
      reply(res, 200, { status: 'ok' })
      return true
    }
    if (path !== '/ready') return false
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          // Called inside the bound: a check that throws at once fails like one that rejects.
          await withTimeout(Promise.resolve().then(check), timeoutMs, name)
          return [name, 'ok'] as const
        } catch (error) {
          return [name, `unavailable: ${failureReason(error)}`] as const
        }
      }),
    )
    const ready = results.every(([, state]) => state === 'ok')
    reply(res, ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable', checks: Object.fromEntries(results) })
    return true
  }
}
