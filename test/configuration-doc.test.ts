/**
 * docs/configuration.md lists every environment variable src/config.ts reads, one row each, and
 * none it does not read: the page is the one place an operator looks a setting up.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { knownVariables } from '../src/config.ts'

const page = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8')

/** The variable of each row of the settings table (the one whose header starts `| variable |`). */
function documentedVariables(markdown: string): string[] {
  const lines = markdown.split('\n')
  const header = lines.findIndex((line) => /^\|\s*variable\s*\|/.test(line))
  if (header < 0) throw new Error('docs/configuration.md has no table whose first column is "variable"')
  const rows: string[] = []
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break
    const first = line.split('|')[1]!.trim()
    const name = /^`([A-Z][A-Z0-9_]*)`$/.exec(first)?.[1]
    if (!name) throw new Error(`a settings row must name one variable in backticks, got: ${first}`)
    rows.push(name)
  }
  return rows
}

describe('docs/configuration.md', () => {
  const documented = documentedVariables(page)

  it('should have one row per variable src/config.ts reads, and no other', () => {
    const known = new Set(knownVariables)
    const listed = new Set(documented)
    expect(
      knownVariables.filter((name) => !listed.has(name)),
      'read by src/config.ts, missing from the table',
    ).toEqual([])
    expect(
      documented.filter((name) => !known.has(name)),
      'in the table, not read by src/config.ts',
    ).toEqual([])
  })

  it('should list each variable once', () => {
    expect(documented.filter((name, index) => documented.indexOf(name) !== index)).toEqual([])
  })

  it('should fill every column of every row', () => {
    const lines = page.split('\n')
    const header = lines.findIndex((line) => /^\|\s*variable\s*\|/.test(line))
    const columns = lines[header]!.split('|').length
    for (const line of lines.slice(header + 2)) {
      if (!line.startsWith('|')) break
      // `|` inside backticks would split a cell: none is allowed in the table.
      const cells = line.split('|')
      expect(cells.length, line).toBe(columns)
      expect(
        cells.slice(1, -1).every((cell) => cell.trim().length > 0),
        line,
      ).toBe(true)
    }
  })
})
