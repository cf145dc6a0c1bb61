/**
 * The `mizzen` command as a user meets it (run from the sources here; .ci/example runs the
 * packed one), and the line between the library and this repository's example app.
 */
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import ts from 'typescript'
import { afterAll, describe, expect, it } from 'vitest'
import { projectRoot } from '../examples/app/schema-variants.ts'
import { readPrismaSchema } from '../src/cli/prisma-schema.ts'
import { startGatewayProcess } from './helpers/gateway-process.ts'

const execFileAsync = promisify(execFile)
// By URL: `--import tsx` would resolve tsx from the working directory, which some tests move.
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href

interface Result {
  code: number
  stdout: string
  stderr: string
}

async function mizzen(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      ['--import', tsx, join(projectRoot, 'src', 'cli', 'main.ts'), ...args],
      {
        cwd: options.cwd ?? projectRoot,
        env: { ...process.env, ...options.env },
      },
    )
    return { code: 0, stdout, stderr }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string }
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr }
  }
}

describe('the mizzen command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mizzen-cli-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('should list its commands on --help and exit 0, and tell its version', async () => {
    const result = await mizzen(['--help'])
    expect(result.code).toBe(0)
    expect((await mizzen(['--version'])).stdout).toBe(
      `${JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')).version}\n`,
    )
    for (const command of ['serve', 'migrate', 'print-schema']) expect(result.stdout).toContain(command)
    expect(result.stdout).toContain('provider = "mizzen-generator"')
  })

  it('should exit 2 naming a bad command or option', async () => {
    const command = await mizzen(['deploy'])
    expect(command.code).toBe(2)
    expect(command.stderr).toMatch(/unknown command "deploy"; the commands are serve, migrate, print-schema/)
    const option = await mizzen(['serve', '--colour'])
    expect(option.code).toBe(2)
    expect(option.stderr).toMatch(/--colour/)
    expect((await mizzen([])).code).toBe(2)
  })

  it('should exit 1 saying where it looked for a missing schema', async () => {
    const result = await mizzen(['print-schema'], { cwd: dir })
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/no Prisma schema at prisma\/schema.prisma/)
  })

  it('should say how to add the generator to a schema without it, and to run prisma generate when its output is missing', async () => {
    const schema = join(dir, 'plain.prisma')
    writeFileSync(schema, 'datasource db {\n  provider = "sqlite"\n}\nmodel Note {\n  id Int @id\n}\n')
    const noGenerator = await mizzen(['print-schema', '--schema', schema], { cwd: dir })
    expect(noGenerator.code).toBe(1)
    expect(noGenerator.stderr).toMatch(/has no mizzen generator: add/)
    writeFileSync(
      schema,
      `generator mizzen {\n  provider = "mizzen-generator" // the bin\n  output = "./nowhere"\n}\n${readFileSync(schema, 'utf8')}`,
    )
    const notGenerated = await mizzen(['print-schema', '--schema', schema], { cwd: dir })
    expect(notGenerated.code).toBe(1)
    expect(notGenerated.stderr).toMatch(/no mizzen data model at nowhere\/index.js: run `npx prisma generate`/)
  })

  it('should print the schema of the example app as schema.graphql holds it', async () => {
    const result = await mizzen(['print-schema'])
    expect(result.code).toBe(0)
    const committed = readFileSync(join(projectRoot, 'schema.graphql'), 'utf8').replace(/^#.*\n\n/, '')
    expect(result.stdout).toBe(committed)
  })

  it('should apply the migrations once, then find the database up to date', async () => {
    const env = { DATABASE_URL: `file:${join(dir, 'migrate.db')}` }
    const first = await mizzen(['migrate'], { env })
    expect(first).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^applied 2 migration\(s\): \d+_init, \d+_post_author_cascade/),
    })
    expect((await mizzen(['migrate'], { env })).stdout).toMatch(/up to date/)
  })

  it('should exit 1 naming a config file that is not there', async () => {
    const result = await mizzen(['print-schema', '--config', join(dir, 'none.mjs')])
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/no config file at/)
  })

  it('should refuse a DATABASE_URL for another database than the schema declares', async () => {
    // mizzen.config.ts would pick the PostgreSQL variant for this URL; --schema overrides it.
    const mismatch = await mizzen(['migrate', '--schema', 'prisma/schema.prisma'], {
      env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' },
    })
    expect(mismatch.code).toBe(1)
    expect(mismatch.stderr).toMatch(
      /DATABASE_URL is a postgresql URL, but prisma\/schema.prisma declares provider "sqlite"/,
    )
  })
})

describe('mizzen serve without --migrate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mizzen-serve-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('should serve, warn about the migrations the database lacks and a misspelt setting, and exit 0 on SIGTERM', async () => {
    const gateway = await startGatewayProcess(
      'unmigrated',
      { DATABASE_URL: `file:${join(dir, 'fresh.db')}`, MIZZEN_HISTORY_MAX_EVENT: '50' },
      { migrate: false },
    )
    expect(gateway.logs(/not a mizzen setting/)).toEqual([
      expect.objectContaining({
        level: 40,
        variable: 'MIZZEN_HISTORY_MAX_EVENT',
        closest: 'MIZZEN_HISTORY_MAX_EVENTS',
        msg: expect.stringContaining('did you mean MIZZEN_HISTORY_MAX_EVENTS?'),
      }),
    ])
    expect(gateway.logs(/lacks/)).toEqual([
      expect.objectContaining({
        pending: [expect.stringMatching(/_init$/), expect.stringMatching(/_post_author_cascade$/)],
        msg: expect.stringContaining('run `mizzen migrate`'),
      }),
    ])
    expect(await gateway.kill('SIGTERM')).toBe(0)
  })
})

describe('a config file of a "type": "commonjs" project', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mizzen-cjs-config-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  // npm 11's `npm init` writes "type": "commonjs". There, Node imports a mizzen.config.js that tsc
  // or esbuild compiled from `export default defineConfig({ … })`, and the project's tsx a
  // mizzen.config.ts, as { default: module.exports }: the config is one level down, under
  // `__esModule`. Run as the published command runs, on plain node (tsx or vitest would unwrap it).
  it('should find the config under its exports.default, from a .js and from a .ts file', async () => {
    const cli = join(dir, 'cli')
    mkdirSync(cli)
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n')
    for (const name of ['config-file', 'modules', 'errors']) {
      const source = readFileSync(join(projectRoot, 'src', 'cli', `${name}.ts`), 'utf8')
      const options = {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2023,
        rewriteRelativeImportExtensions: true,
      }
      writeFileSync(join(cli, `${name}.js`), ts.transpileModule(source, { compilerOptions: options }).outputText)
    }
    const project = join(dir, 'project')
    mkdirSync(project)
    writeFileSync(join(project, 'package.json'), '{ "type": "commonjs" }\n')
    writeFileSync(
      join(project, 'mizzen.config.js'),
      '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.default = { schema: "db/schema.prisma" };\n',
    )
    writeFileSync(
      join(project, 'mizzen.config.ts'),
      "export default { schema: 'db/schema.prisma', policies: { models: {} } }\n",
    )
    const driver = `import { loadConfigFile } from ${JSON.stringify(pathToFileURL(join(cli, 'config-file.js')).href)}
for (const file of process.argv.slice(1)) console.log(JSON.stringify(await loadConfigFile(file)))`
    // The working directory is where the command finds the project's tsx.
    const { stdout } = await execFileAsync(
      process.execPath,
      ['--input-type=module', '-e', driver, join(project, 'mizzen.config.js'), join(project, 'mizzen.config.ts')],
      { cwd: projectRoot },
    )
    const [fromJs, fromTs] = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(fromJs).toEqual({ schema: 'db/schema.prisma', file: join(project, 'mizzen.config.js'), baseDir: project })
    expect(fromTs).toEqual({
      schema: 'db/schema.prisma',
      policies: { models: {} },
      file: join(project, 'mizzen.config.ts'),
      baseDir: project,
    })
  })
})

describe('a schema folder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mizzen-folder-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('should be read whole: datasource and generators in any file, migrations beside the datasource, strings with // kept', async () => {
    mkdirSync(join(dir, 'schema', 'models'), { recursive: true })
    mkdirSync(join(dir, 'schema', 'migrations', '1_init'), { recursive: true })
    writeFileSync(join(dir, 'schema', 'main.prisma'), 'datasource db {\n  provider = "postgresql" // comment\n}\n')
    writeFileSync(
      join(dir, 'schema', 'models', 'chat.prisma'),
      'generator mizzen {\n  provider = "node ./x//y.js"\n  output   = "../../out/mizzen"\n}\nmodel A {\n  id Int @id\n}\n',
    )
    writeFileSync(join(dir, 'schema', 'migrations', '1_init', 'migration.prisma'), 'not a schema file')
    const schema = await readPrismaSchema(join(dir, 'schema'))
    expect(schema.files.map((file) => relative(dir, file.path))).toEqual([
      'schema/main.prisma',
      'schema/models/chat.prisma',
    ])
    expect(schema).toMatchObject({
      provider: 'postgresql',
      datasourceDir: join(dir, 'schema'),
      mizzenOutput: join(dir, 'out', 'mizzen'),
    })
  })
})

describe('the library', () => {
  /** Every source file reachable by relative imports from `entry`. */
  function reachable(entry: string, seen = new Set<string>()): Set<string> {
    if (seen.has(entry)) return seen
    seen.add(entry)
    const source = readFileSync(entry, 'utf8')
    for (const [, specifier] of source.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
      reachable(resolve(dirname(entry), specifier!), seen)
    }
    return seen
  }

  it('should reach nothing of the example app (its schema, generated clients, migrations or policies)', () => {
    const entries = ['src/index.ts', 'src/cli/main.ts', 'src/generator/index.ts'].map((path) => join(projectRoot, path))
    const files = new Set(entries.flatMap((entry) => [...reachable(entry)]))
    const outside = [...files]
      .map((file) => relative(projectRoot, file))
      .filter((file) => !file.startsWith('src/') || /^src\/(app|generated)\//.test(file))
    expect(outside).toEqual([])
    expect(files.size).toBeGreaterThan(50)
  })

  it('should import only packages it declares (a dependency, or a peer a project of that database has)', () => {
    const manifest = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8'))
    const declared = new Set([...Object.keys(manifest.dependencies), ...Object.keys(manifest.peerDependencies)])
    const entries = ['src/index.ts', 'src/cli/main.ts', 'src/generator/index.ts'].map((path) => join(projectRoot, path))
    const imported = new Set<string>()
    for (const file of new Set(entries.flatMap((entry) => [...reachable(entry)]))) {
      // Value imports only: `import type` is gone from the built JavaScript.
      for (const [, specifier] of readFileSync(file, 'utf8').matchAll(
        /(?:^(?:import|export)(?! type)[^']*?from|\bimport\()\s*'([^.'][^']*)'/gm,
      )) {
        if (!specifier!.startsWith('node:'))
          imported.add(
            specifier!.startsWith('@') ? specifier!.split('/').slice(0, 2).join('/') : specifier!.split('/')[0]!,
          )
      }
    }
    expect([...imported].filter((name) => !declared.has(name))).toEqual([])
    expect(imported.has('graphql-yoga')).toBe(true)
  })
})
