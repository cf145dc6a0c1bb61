/**
 * The user's Prisma schema, as the `mizzen` command needs it: its files (for the schema engine),
 * its datasource provider, and where the `mizzen` generator writes the data model. Only the
 * `generator` and `datasource` blocks are read, with Prisma's rules: strings in double quotes,
 * `env("NAME")` values, `//` comments, paths relative to the file that declares them.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import type { SchemaFile } from '../db/migrations.ts'
import { CliError } from './errors.ts'

export interface PrismaSchema {
  /** The file or folder given, absolute. */
  readonly path: string
  readonly files: readonly SchemaFile[]
  /** The datasource provider (`sqlite`, `postgresql`, …). */
  readonly provider: string
  /** The folder of the file that declares the datasource: Prisma's migrations live beside it. */
  readonly datasourceDir: string
  /** The folder the `mizzen` generator writes to. */
  readonly mizzenOutput: string
}

/** Where Prisma looks for a schema when none is named, in order. */
export const defaultSchemaPaths = ['prisma/schema.prisma', 'schema.prisma']

interface Block {
  readonly kind: 'generator' | 'datasource'
  readonly name: string
  readonly file: string
  readonly properties: ReadonlyMap<string, string | undefined>
}

// Strings first, so that `//` inside a string (a URL, a path) is not taken for a comment.
const stringsAndComments = /"(?:[^"\\\n]|\\.)*"|\/\/.*$/gm
const blockPattern = /\b(generator|datasource)\s+(\w+)\s*\{([^}]*)\}/g
const propertyPattern = /^\s*(\w+)\s*=\s*(.+?)\s*$/gm

function value(raw: string): string | undefined {
  const env = /^env\(\s*"([^"]+)"\s*\)$/.exec(raw)
  if (env) return process.env[env[1]!]
  const string = /^"((?:[^"\\]|\\.)*)"$/.exec(raw)
  return string ? string[1]!.replace(/\\(.)/g, '$1') : raw
}

function blocksOf(file: SchemaFile): Block[] {
  const text = file.content.replace(stringsAndComments, (match) => (match.startsWith('"') ? match : ''))
  return [...text.matchAll(blockPattern)].map(([, kind, name, body]) => ({
    kind: kind as Block['kind'],
    name: name!,
    file: file.path,
    properties: new Map([...body!.matchAll(propertyPattern)].map(([, key, raw]) => [key!, value(raw!)])),
  }))
}

async function prismaFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.prisma'))
    .map((entry) => join(entry.parentPath, entry.name))
    .filter((path) => !relative(dir, path).split(/[\\/]/).includes('migrations'))
    .sort()
}

/** Reads the schema at `path` (a file, or a folder of `.prisma` files), or throws a CliError saying what is missing. */
export async function readPrismaSchema(path: string): Promise<PrismaSchema> {
  const absolute = resolve(path)
  const info = await stat(absolute).catch(() => undefined)
  if (!info)
    throw new CliError(`no Prisma schema at ${path} (give its path with --schema, or \`schema\` in mizzen.config)`)
  const paths = info.isDirectory() ? await prismaFiles(absolute) : [absolute]
  if (paths.length === 0) throw new CliError(`no .prisma files in ${path}`)
  const files = await Promise.all(paths.map(async (file) => ({ path: file, content: await readFile(file, 'utf8') })))
  const blocks = files.flatMap(blocksOf)

  const datasource = blocks.find((block) => block.kind === 'datasource')
  const provider = datasource?.properties.get('provider')
  if (!datasource || !provider) throw new CliError(`${path} has no datasource with a provider`)

  const generators = blocks.filter((block) => block.kind === 'generator')
  const mizzen =
    generators.find((block) => /mizzen/.test(block.properties.get('provider') ?? '')) ??
    generators.find((block) => block.name === 'mizzen')
  if (!mizzen) {
    throw new CliError(
      `${path} has no mizzen generator: add\n\n  generator mizzen {\n    provider = "mizzen-generator"\n    output   = "../generated/mizzen"\n  }\n\nthen run \`npx prisma generate\``,
    )
  }
  const output = mizzen.properties.get('output')
  const base = dirname(mizzen.file)
  return {
    path: absolute,
    files,
    provider,
    datasourceDir: dirname(datasource.file),
    mizzenOutput: output ? resolve(base, output) : resolve(base, '..', 'generated', 'mizzen'),
  }
}
