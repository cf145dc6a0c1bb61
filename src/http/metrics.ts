/** `GET /metrics`: the gateway's metrics in Prometheus text (see ../metrics.ts). */
import type { Metrics } from '../metrics.ts'
import { requestPath, type RequestHandler } from './handler.ts'

export const METRICS_PATH = '/metrics'

/** Answers GET/HEAD /metrics and returns true; anything else returns false (not served when metrics are off). */
export function createMetricsHandler(metrics: Metrics): RequestHandler {
  return async (req, res) => {
    if (!metrics.enabled || requestPath(req) !== METRICS_PATH) return false
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('use GET\n')
      return true
    }
    const text = await metrics.render()
    res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' })
    res.end(req.method === 'HEAD' ? undefined : text)
    return true
  }
}
