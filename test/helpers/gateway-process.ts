/**
 * A gateway in a process of its own (`node --import tsx src/cli/main.ts serve --migrate`, as
 * `npm start`, configured by environment variables, as an operator runs it), to stop or kill and
 * to watch what it writes: every line on stdout and stderr is kept, and `unstructured()` lists
 * those that are not JSON log lines.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface GatewayProcess {
  readonly name: string
  /** `http://127.0.0.1:<port>/graphql` */
  readonly url: string
  readonly wsUrl: string
  /** Every line written to stdout / stderr so far. */
  readonly stdout: string[]
  readonly stderr: string[]
  /** Log lines (parsed) whose `msg` matches. */
  logs(msg: RegExp): Record<string, unknown>[]
  /** Lines on either stream that are not a JSON log line. */
  unstructured(): string[]
  /** Sends the signal and resolves, once the process exited, with its exit code (null when the signal ended it). */
  kill(signal?: NodeJS.Signals): Promise<number | null>
  readonly exited: boolean
}

function lines(stream: NodeJS.ReadableStream, into: string[]): void {
  let rest = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n')
    rest = parts.pop()!
    into.push(...parts.filter((line) => line.length))
  })
  stream.on('end', () => rest && into.push(rest))
}

const parse = (line: string): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(line)
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

export interface GatewayProcessOptions {
  /** Apply the migrations at start (`serve --migrate`). @default true */
  migrate?: boolean
  /** How long it gets to listen, in ms. @default 60000 */
  timeoutMs?: number
}

/** Starts a gateway with `env` (on 127.0.0.1, a free port) and resolves once it listens. */
export async function startGatewayProcess(
  name: string,
  env: Record<string, string>,
  options: GatewayProcessOptions = {},
): Promise<GatewayProcess> {
  const timeoutMs = options.timeoutMs ?? 60_000
  const serve = ['src/cli/main.ts', 'serve', ...(options.migrate === false ? [] : ['--migrate'])]
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', ...serve], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const stdout: string[] = []
  const stderr: string[] = []
  lines(child.stdout!, stdout)
  lines(child.stderr!, stderr)
  let exited = false
  let exitCode: number | null = null
  const exit = once(child, 'exit').then(([code]) => {
    exited = true
    exitCode = code as number | null
  })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `gateway ${name} did not start within ${timeoutMs} ms:\n${[...stdout, ...stderr].slice(-20).join('\n')}`,
          ),
        ),
      timeoutMs,
    )
    const poll = setInterval(() => {
      const listening = stdout.map(parse).find((log) => log?.msg === 'mizzen gateway listening')
      if (listening || exited) {
        clearInterval(poll)
        clearTimeout(timer)
        if (listening) resolve(String(listening.url))
        else
          reject(new Error(`gateway ${name} exited while starting:\n${[...stdout, ...stderr].slice(-20).join('\n')}`))
      }
    }, 20)
  })
  return {
    name,
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    stdout,
    stderr,
    logs: (msg) =>
      stdout.flatMap((line) => {
        const log = parse(line)
        return log && msg.test(String(log.msg)) ? [log] : []
      }),
    unstructured: () => [...stdout, ...stderr].filter((line) => parse(line) === undefined),
    async kill(signal = 'SIGKILL') {
      if (!exited) {
        child.kill(signal)
        await exit
      }
      return exitCode
    },
    get exited() {
      return exited
    },
  }
}
