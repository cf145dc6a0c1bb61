/**
 * The layers of docs/architecture.md §2, enforced: every import in src/ goes to a module of its
 * own layer or of a layer below, except the type-only imports that page lists. The layer table
 * and the exceptions are read from the page itself, so the page and the code cannot drift. And
 * the code's citations of the page name sections it has, and nothing outside the repository.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))
const src = join(root, 'src')
const page = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8')

/** The rows of the table whose header starts with `| <first> |`, as cells. */
function table(markdown: string, first: string): string[][] {
  const lines = markdown.split('\n')
  const header = lines.findIndex((line) => new RegExp(`^\\|\\s*${first}\\s*\\|`).test(line))
  if (header < 0) throw new Error(`docs/architecture.md has no table whose first column is "${first}"`)
  const rows: string[][] = []
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    )
  }
  return rows
}

/** Paths in backticks in a cell, relative to src/ (`src/bus/` → `bus/`). */
const pathsIn = (cell: string) => [...cell.matchAll(/`src\/([^`]+)`/g)].map((match) => match[1]!)

/** Layer of each module path (a file, or a folder ending in `/`), from the bottom (0) up. */
const layerOf = new Map<string, number>()
table(page, 'layer').forEach((row, index) => {
  for (const path of pathsIn(row[1] ?? '')) layerOf.set(path, index)
})
const layerNames = table(page, 'layer').map((row) => row[0]!)

/** `importer → imported` pairs allowed upwards (type only), from the exceptions table. */
const allowed = new Set(table(page, 'importer').map((row) => `${pathsIn(row[0]!)[0]} → ${pathsIn(row[1]!)[0]}`))

/** The layer of a file under src/: its own entry, else its nearest folder's. */
function layer(file: string): number | undefined {
  if (layerOf.has(file)) return layerOf.get(file)
  for (let dir = dirname(file); dir !== '.'; dir = dirname(dir)) {
    const found = layerOf.get(`${dir}/`)
    if (found !== undefined) return found
  }
  return undefined
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

interface Import {
  readonly from: string
  readonly to: string
  readonly typeOnly: boolean
}

/** Relative imports and re-exports of a file, static and dynamic, with whether they are type only. */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8')
  const found: Import[] = []
  const from = relative(src, file)
  const statement = /^(import|export)\s+(type\s+)?[^'";]*?from\s+'(\.[^']+)'/gms
  for (const match of text.matchAll(statement)) {
    found.push({ from, to: relative(src, resolve(dirname(file), match[3]!)), typeOnly: Boolean(match[2]) })
  }
  for (const match of text.matchAll(/import\('(\.[^']+)'\)/g)) {
    found.push({ from, to: relative(src, resolve(dirname(file), match[1]!)), typeOnly: false })
  }
  return found
}

const files = sources(src).filter((file) => !file.includes(`${join('src', 'generated')}`))
const imports = files.flatMap(importsOf)

/** Every .ts file under `dir` of the repository (no node_modules, no generated code). */
const sourcesUnder = (dir: string) =>
  sources(join(root, dir)).filter(
    (file) => !file.includes('node_modules') && !file.includes(`${join('src', 'generated')}`),
  )

describe('citations of docs/architecture.md', () => {
  const sections = new Set([...page.matchAll(/^## §(\d+) /gm)].map((match) => match[1]!))
  const cited = ['src', 'test', 'bench'].flatMap(sourcesUnder).map((file) => ({
    file: relative(root, file),
    text: readFileSync(file, 'utf8'),
  }))

  it('should cite only sections the page has', () => {
    const missing = cited.flatMap(({ file, text }) =>
      [...text.matchAll(/architecture\.md §(\d+)((?:, §\d+)*)/g)]
        .flatMap((match) => [match[1]!, ...[...match[2]!.matchAll(/§(\d+)/g)].map((more) => more[1]!)])
        .filter((section) => !sections.has(section))
        .map((section) => `${file}: §${section}`),
    )
    expect(sections.size).toBeGreaterThan(5)
    expect(missing).toEqual([])
  })

  it('should cite no design section, contract number or issue the repository does not hold', () => {
    // This file names what it looks for; every other one is read.
    const others = cited.filter(({ file }) => file !== relative(root, fileURLToPath(import.meta.url)))
    const outside = others.flatMap(({ file, text }) =>
      [...text.matchAll(/design §\d+|design section|contract \d+|\(issue \d+\)/gi)].map(
        (match) => `${file}: ${match[0]}`,
      ),
    )
    expect(outside).toEqual([])
  })
})

describe('layers (docs/architecture.md §2)', () => {
  it('should place every module of src/ in a layer', () => {
    const unplaced = files.map((file) => relative(src, file)).filter((file) => layer(file) === undefined)
    expect(unplaced, 'add these to the layer table of docs/architecture.md §2').toEqual([])
  })

  it('should import only from its own layer or below, but for the listed type-only exceptions', () => {
    const upwards = imports
      .filter((each) => layer(each.to) !== undefined && layer(each.from)! < layer(each.to)!)
      .filter((each) => !(each.typeOnly && allowed.has(`${each.from} → ${each.to}`)))
      .map(
        (each) =>
          `${each.from} (${layerNames[layer(each.from)!]}) → ${each.to} (${layerNames[layer(each.to)!]})${each.typeOnly ? ', type only' : ''}`,
      )
    expect(upwards).toEqual([])
  })

  it('should list only exceptions that exist', () => {
    const present = new Set(imports.filter((each) => each.typeOnly).map((each) => `${each.from} → ${each.to}`))
    expect([...allowed].filter((pair) => !present.has(pair))).toEqual([])
  })

  it('should see the imports it checks (the parser finds them)', () => {
    expect(imports.length).toBeGreaterThan(300)
    expect(imports).toContainEqual({ from: 'gateway.ts', to: 'delivery/hub.ts', typeOnly: false })
    expect(imports).toContainEqual({ from: 'context.ts', to: 'rooms/rooms.ts', typeOnly: true })
  })
})

describe('optional peers', () => {
  /** Static, non-type imports of a file: relative ones resolved, and package names. */
  const staticImports = (file: string) => {
    const text = readFileSync(file, 'utf8')
    const statements = [
      ...text.matchAll(/^(import|export)\s+(?!type\s)[^'";]*?from\s+'([^']+)'|^import\s+'([^']+)'/gms),
    ]
    const specifiers = statements.map((match) => match[2] ?? match[3]!)
    return {
      files: specifiers.filter((each) => each.startsWith('.')).map((each) => resolve(dirname(file), each)),
      packages: specifiers.filter((each) => !each.startsWith('.') && !each.startsWith('node:')),
    }
  }

  it('should load pg and the Prisma adapters only where they are used: a project on SQLite has no pg', () => {
    const optional = ['pg', '@prisma/adapter-pg', '@prisma/adapter-better-sqlite3', 'better-sqlite3']
    const seen = new Set<string>()
    const reached: string[] = []
    const walk = (file: string) => {
      if (seen.has(file)) return
      seen.add(file)
      const { files: next, packages } = staticImports(file)
      for (const name of packages) if (optional.includes(name)) reached.push(`${relative(src, file)} → ${name}`)
      for (const each of next) walk(each)
    }
    walk(join(src, 'index.ts'))
    walk(join(src, 'cli', 'main.ts'))
    expect(seen.size).toBeGreaterThan(100)
    expect(reached).toEqual([])
  })
})
