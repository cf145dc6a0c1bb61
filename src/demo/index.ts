/**
 * The browser demo at `/demo` (development only, like GraphiQL): a chat with rooms and, when the
 * data model has the example's `Post` (a `title` string and a `published` boolean), a post list
 * kept right by `postEvents`. Plain HTML and small hand-written ES modules (`assets/`, shipped in
 * the package as files: `npm run build` copies them to `dist/demo/assets/`), no CDN and no build
 * step: the page speaks graphql-transport-ws itself (`assets/client.js`) and POSTs queries and
 * mutations to the GraphQL endpoint.
 *
 * The files are read at each request (a development tool: an edit shows on reload) and sent with
 * `Cache-Control: no-cache`.
 */
import { readFile } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { requestPath, type RequestHandler } from '../http/handler.ts'
import type { DataModel } from '../models/data-model.ts'

export const DEMO_PATH = '/demo'

/** The files under `/demo/`, by name, with their type. */
const assets: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'client.js': 'text/javascript; charset=utf-8',
  'demo.css': 'text/css; charset=utf-8',
}

const assetsFolder = new URL('./assets/', import.meta.url)

/** What the page needs to know of the gateway, inlined into it as JSON. */
export interface DemoConfig {
  /** The GraphQL endpoint (HTTP POST, and WebSocket on the same path). */
  readonly graphqlPath: string
  /** Whether the post list is shown: the data model has a `Post` with `title` (String) and `published` (Boolean). */
  readonly posts: boolean
}

export function demoConfig(dataModel: DataModel, graphqlPath: string): DemoConfig {
  const post = dataModel.models.find((model) => model.name === 'Post')
  const scalar = (name: string, type: string) => {
    const field = post?.field(name)
    return field?.kind === 'scalar' && field.type === type && !field.isList
  }
  return { graphqlPath, posts: !!post && scalar('title', 'String') && scalar('published', 'Boolean') }
}

/** JSON that is safe inside a `<script>` element. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c')

export function createDemoPage(config: DemoConfig): RequestHandler {
  const send = (response: ServerResponse, status: number, type: string, body: string | Buffer) => {
    response
      .writeHead(status, {
        'content-type': type,
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
      })
      .end(body)
  }
  return async (request, response) => {
    const pathname = requestPath(request)
    if (pathname !== DEMO_PATH && !pathname.startsWith(`${DEMO_PATH}/`)) return false
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end()
      return true
    }
    const name = pathname.slice(DEMO_PATH.length + 1)
    const type =
      name === '' || name === 'index.html'
        ? 'text/html; charset=utf-8'
        : Object.hasOwn(assets, name)
          ? assets[name]
          : undefined
    if (!type) {
      send(response, 404, 'text/plain; charset=utf-8', 'Not Found\n')
      return true
    }
    let body: string | Buffer
    try {
      body = type.startsWith('text/html')
        ? (await readFile(new URL('index.html', assetsFolder), 'utf8')).replace('{{config}}', scriptJson(config))
        : await readFile(new URL(name, assetsFolder))
    } catch (error) {
      // A package whose build did not copy assets/ (see package.json's build script).
      send(response, 500, 'text/plain; charset=utf-8', `the demo's files are missing: ${(error as Error).message}\n`)
      return true
    }
    send(response, 200, type, body)
    return true
  }
}
