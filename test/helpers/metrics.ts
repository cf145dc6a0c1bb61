/**
 * Reads a gateway's /metrics as Prometheus text, checking the format as a scraper would: every
 * sample line is `name{label="value",…} number`, and every metric has its `# HELP` and `# TYPE`.
 */
import { expect } from 'vitest'

const sampleLine =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?(?:[0-9.]+(?:e[+-]?[0-9]+)?|[Nn]a[Nn]|\+Inf|-Inf))$/

/** The samples of a Prometheus text exposition, by `name{labels}` as written; throws on a line that does not parse. */
export function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>()
  const typed = new Set<string>()
  const described = new Set<string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line)
    if (comment) {
      ;(comment[1] === 'HELP' ? described : typed).add(comment[2]!)
      continue
    }
    const sample = sampleLine.exec(line)
    if (!sample) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`)
    const family = sample[1]!.replace(/_(bucket|sum|count|total)$/, '')
    if (!typed.has(sample[1]!) && !typed.has(family)) throw new Error(`sample before its # TYPE: ${line}`)
    samples.set(`${sample[1]}${sample[2] ?? ''}`, Number(sample[3]))
  }
  for (const name of typed) if (!described.has(name)) throw new Error(`# TYPE ${name} without # HELP`)
  return samples
}

/** GET /metrics of the gateway whose GraphQL URL is `url`, parsed. */
export async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(new URL('/metrics', url))
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parsePrometheus(await response.text())
}

/** One sample's value (0 when absent: a counter not yet incremented may be missing). */
export async function metric(url: string, sample: string): Promise<number> {
  return (await scrape(url)).get(sample) ?? 0
}
