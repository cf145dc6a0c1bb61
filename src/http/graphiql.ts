/**
 * GraphiQL, compressed. `@graphql-yoga/render-graphiql` inlines everything (GraphiQL, Monaco and
 * its workers: some 9 MB of HTML, no CDN); Yoga sends it uncompressed on every request. The page
 * is the same on every request (its options are the gateway's), so it is rendered once and
 * compressed once per encoding, at the first request that asks for it (on libuv's thread pool,
 * not the event loop), and the bytes are kept for the life of the gateway.
 *
 * Served on GET `path` (or `path/`) to a browser (`Accept: text/html`), as Yoga decides it;
 * brotli or gzip as `Accept-Encoding` allows (q-values honoured), `Vary: Accept-Encoding`, and an
 * `ETag` with `Cache-Control: no-cache`, so a reload revalidates and is answered 304 with no body.
 */
import { createHash } from 'node:crypto'
import { promisify } from 'node:util'
import { brotliCompress, constants, gzip } from 'node:zlib'
import { requestPath, type RequestHandler } from './handler.ts'

export type ContentEncoding = 'br' | 'gzip' | 'identity'

/** Brotli at quality 5: this page's 9.05 MB in 1.95 MB and 0.25 s here; quality 11 takes 15 s for 1.71 MB. */
const BROTLI_QUALITY = 5

const compressors: Record<Exclude<ContentEncoding, 'identity'>, (html: Buffer) => Promise<Buffer>> = {
  br: (html) =>
    promisify(brotliCompress)(html, {
      params: {
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
        [constants.BROTLI_PARAM_SIZE_HINT]: html.length,
      },
    }),
  gzip: (html) => promisify(gzip)(html, { level: 9 }),
}

/**
 * The encoding to answer `Accept-Encoding` with: the acceptable one of br and gzip with the
 * higher q-value (br on a tie), else identity. A coding the header does not name takes the
 * q-value of `*`, or is not acceptable.
 */
export function chooseEncoding(header: string | string[] | undefined): ContentEncoding {
  if (!header) return 'identity'
  const weights = new Map<string, number>()
  for (const item of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const [name, ...params] = item.trim().toLowerCase().split(';')
    if (!name) continue
    const q = params.map((param) => param.trim()).find((param) => param.startsWith('q='))
    const weight = q === undefined ? 1 : Number(q.slice(2))
    weights.set(name, Number.isFinite(weight) ? weight : 0)
  }
  const weight = (coding: string) => weights.get(coding) ?? weights.get('*') ?? 0
  const br = weight('br')
  const gz = weight('gzip')
  if (br <= 0 && gz <= 0) return 'identity'
  return br >= gz ? 'br' : 'gzip'
}

/** GraphiQL at `path`, rendered by `render` (called once, at the first request). */
export function createGraphiQLPage(path: string, render: () => string): RequestHandler {
  let html: Buffer | undefined
  let tag = ''
  const encoded = new Map<ContentEncoding, Promise<Buffer>>()
  const page = () => {
    if (!html) {
      html = Buffer.from(render())
      tag = createHash('sha256').update(html).digest('base64url').slice(0, 27)
    }
    return html
  }
  const bytes = (encoding: ContentEncoding): Promise<Buffer> => {
    if (encoding === 'identity') return Promise.resolve(page())
    let pending = encoded.get(encoding)
    if (!pending) {
      // A compression that fails is not kept: the next request tries again.
      pending = compressors[encoding](page()).catch((error: unknown) => {
        encoded.delete(encoding)
        throw error
      })
      encoded.set(encoding, pending)
    }
    return pending
  }
  const etag = (encoding: ContentEncoding) => (encoding === 'identity' ? `"${tag}"` : `"${tag}-${encoding}"`)

  return async (request, response) => {
    if (request.method !== 'GET' || !request.headers.accept?.includes('text/html')) return false
    const pathname = requestPath(request)
    if (pathname !== path && pathname !== `${path}/`) return false
    let encoding = chooseEncoding(request.headers['accept-encoding'])
    let body: Buffer
    try {
      body = await bytes(encoding)
    } catch {
      encoding = 'identity'
      body = page()
    }
    const headers: Record<string, string | number> = {
      vary: 'Accept-Encoding',
      etag: etag(encoding),
      'cache-control': 'no-cache',
    }
    const match = request.headers['if-none-match']
    if (match && match.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === headers.etag)) {
      response.writeHead(304, headers).end()
      return true
    }
    headers['content-type'] = 'text/html; charset=utf-8'
    headers['content-length'] = body.length
    if (encoding !== 'identity') headers['content-encoding'] = encoding
    response.writeHead(200, headers).end(body)
    return true
  }
}
