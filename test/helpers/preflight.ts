/**
 * vitest globalSetup: checks once, before any test file runs, that the services the tests use
 * answer (PostgreSQL at TEST_POSTGRES_URL, Redis at TEST_REDIS_URL) and hands the outcome to every
 * test file (`services` in ./services.ts), and that the `redis-server` command the fault tests run
 * exists. A missing service skips its suites, with a message that names it, the variable and how
 * to start one; under CI=true it fails the run at once instead.
 * `TEST_POSTGRES_URL=off` / `TEST_REDIS_URL=off` skip a service on purpose (`npm run test:quick`).
 */
import { execFile } from 'node:child_process'
import type { TestProject } from 'vitest/node'
import { checkPostgres, checkRedis, reasonOf } from '../../src/service-checks.ts'
import { serviceInfo, type Service, type ServiceStatus } from './service-status.ts'

/** How long a service gets to answer before it counts as missing, in ms. */
const PROBE_TIMEOUT_MS = 3000

const howToStart: Record<Service, string> = {
  postgresql:
    'start one (its role must be allowed to CREATE DATABASE): `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:17`, or on Debian `apt-get install postgresql` then `pg_ctlcluster <version> main start`',
  redis: 'start one: `redis-server --port 6379 --save "" --appendonly no`, or `docker run -d -p 6379:6379 redis:7`',
  'redis-server': 'install Redis so that `redis-server` is on PATH (Debian: `apt-get install redis-server`)',
}

/** The URL as a message may show it: a password replaced by ***. */
export function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return url.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@')
  }
}

function probeCommand(command: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(command, ['--version'], { timeout: PROBE_TIMEOUT_MS }, (error) =>
      resolve(error ? reasonOf(error) : undefined),
    )
  })
}

// The gateway's own startup checks (src/service-checks.ts), so that tests and `npm start` agree.
const probes: Record<Service, (url: string) => Promise<string | undefined>> = {
  postgresql: (url) => checkPostgres(url, { timeoutMs: PROBE_TIMEOUT_MS, canCreateDatabases: true }),
  redis: (url) => checkRedis(url, PROBE_TIMEOUT_MS),
  'redis-server': probeCommand,
}

async function check(service: Service): Promise<ServiceStatus> {
  const { variable } = serviceInfo[service]
  const url = (variable && process.env[variable]) || serviceInfo[service].default
  if (url === 'off') return { url, available: false, reason: `${variable}=off` }
  const reason = await probes[service](url)
  return reason === undefined ? { url, available: true } : { url, available: false, reason }
}

const inCi = () => !!process.env.CI && !['false', '0'].includes(process.env.CI)

function notice(service: Service, status: ServiceStatus, outcome: string): string {
  const { label, variable } = serviceInfo[service]
  if (status.url === 'off') return `${label} is off (${variable}=off): ${outcome}.`
  if (!variable) return `${label} is missing (${status.reason}): ${outcome}.\n  To run them, ${howToStart[service]}.`
  return [
    `${label} is not reachable at ${withoutPassword(status.url)} (${status.reason}): ${outcome}.`,
    `  Set ${variable} to a ${label} server, or ${howToStart[service]}.`,
  ].join('\n')
}

export default async function preflight(project: TestProject): Promise<() => void> {
  const statuses = Object.fromEntries(
    await Promise.all(
      (Object.keys(serviceInfo) as Service[]).map(async (service) => [service, await check(service)] as const),
    ),
  ) as Record<Service, ServiceStatus>
  const missing = (Object.keys(statuses) as Service[]).filter((service) => !statuses[service].available)
  const deliberate = missing.every((service) => statuses[service].url === 'off')
  if (missing.length && inCi() && !deliberate) {
    const lines = missing.map((service) =>
      notice(service, statuses[service], 'CI=true runs every suite, so the run stops here'),
    )
    const error = new Error(`[mizzen tests] ${lines.join('\n[mizzen tests] ')}`)
    error.stack = error.message // the message is the whole story; no code frame of this file
    throw error
  }
  const lines = missing.map((service) => notice(service, statuses[service], 'its suites are skipped'))
  project.provide('services', statuses)
  const report = () => {
    if (lines.length) console.warn(`\n[mizzen tests] ${lines.join('\n[mizzen tests] ')}\n`)
  }
  report()
  // Said again once the run ends, next to the summary that counts the skipped tests.
  return report
}
