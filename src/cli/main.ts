#!/usr/bin/env node
/**
 * The `mizzen` command: serve a gateway for your Prisma schema, apply its migrations, print its
 * GraphQL schema. `mizzen --help` lists it all.
 */
import { parseArgs } from 'node:util'
import { ConfigError, toUnavailable } from '../errors.ts'
import { StartupError } from '../startup.ts'
import { version } from '../version.ts'
import { loadConfigFile } from './config-file.ts'
import { CliError } from './errors.ts'
import { Project } from './project.ts'

const help = `mizzen ${version}: a GraphQL subscriptions gateway for your Prisma models

Usage: mizzen <command> [options]

Commands:
  serve          serve the gateway for your schema (settings from the environment:
                 DATABASE_URL, PORT, HOST, REDIS_URL, LOG_LEVEL, NODE_ENV, MIZZEN_*)
  migrate        apply your pending Prisma migrations to DATABASE_URL, offline
                 (what \`prisma migrate deploy\` does)
  print-schema   print the GraphQL schema (SDL) of your models to stdout

Options:
  --schema <path>      your Prisma schema, a file or a folder
                       (default: prisma/schema.prisma, else schema.prisma)
  --migrations <path>  your migrations folder (default: migrations beside the schema)
  --config <path>      mizzen config module, for policies
                       (default: mizzen.config.js, .mjs, .ts or .mts if there is one)
  --migrate            serve: apply pending migrations first
  -h, --help           show this help
  -v, --version        show mizzen's version

Your schema declares the mizzen generator, and \`npx prisma generate\` writes the data model:

  generator mizzen {
    provider = "mizzen-generator"
    output   = "../generated/mizzen"
  }
`

const commands = ['serve', 'migrate', 'print-schema'] as const
type Command = (typeof commands)[number]

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        schema: { type: 'string' },
        migrations: { type: 'string' },
        config: { type: 'string' },
        migrate: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    })
  } catch (error) {
    throw new CliError(`${(error as Error).message}\nSee \`mizzen --help\`.`, 2)
  }
}

async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv)
  if (values.help) return void process.stdout.write(help)
  if (values.version) return void process.stdout.write(`${version}\n`)
  const [command, ...extra] = positionals
  if (!command) throw new CliError(`no command given\n\n${help}`, 2)
  if (!commands.includes(command as Command))
    throw new CliError(
      `unknown command "${command}"; the commands are ${commands.join(', ')}. See \`mizzen --help\`.`,
      2,
    )
  if (extra.length) throw new CliError(`unexpected argument "${extra[0]}" after ${command}. See \`mizzen --help\`.`, 2)
  if (values.migrate && command !== 'serve')
    throw new CliError('--migrate applies to serve only (mizzen migrate applies migrations on its own)', 2)

  const configFile = await loadConfigFile(values.config)
  const project = await Project.open({ schema: values.schema, migrations: values.migrations }, configFile)
  switch (command as Command) {
    // Each command loads what it needs, so that --help and usage errors answer at once.
    case 'print-schema': {
      const [{ printSchema }, { printableSchema }] = await Promise.all([
        import('graphql'),
        import('../schema/index.ts'),
      ])
      process.stdout.write(`${printSchema(printableSchema(await project.dataModel()))}\n`)
      return
    }
    case 'migrate': {
      const [{ loadConfig }, { migrate }] = await Promise.all([import('../config.ts'), import('./migrate.ts')])
      const applied = await migrate(project, loadConfig().databaseUrl)
      console.log(
        applied.length
          ? `applied ${applied.length} migration(s): ${applied.join(', ')}`
          : 'the database is up to date: no migration to apply',
      )
      return
    }
    case 'serve': {
      const { serve } = await import('./serve.ts')
      await serve(project, configFile, { migrate: values.migrate })
      return
    }
  }
}

run(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof CliError) {
    console.error(`mizzen: ${error.message}`)
    process.exit(error.exitCode)
  }
  if (error instanceof ConfigError) {
    console.error(`mizzen: invalid configuration: ${error.message}`)
    process.exit(1)
  }
  if (error instanceof StartupError) {
    console.error(`mizzen: cannot start: ${error.message}`)
    process.exit(1)
  }
  const code = (error as NodeJS.ErrnoException).code
  if (code === 'EADDRINUSE' || code === 'EACCES') {
    console.error(`mizzen: cannot listen: ${(error as Error).message} (set PORT or HOST)`)
  } else {
    // The message says what failed (an unreachable database, say); the stack is for debugging.
    // An unreachable Redis or database says which, not just "Connection is closed.".
    console.error(
      `mizzen: failed: ${toUnavailable(error)?.message ?? (error instanceof Error ? error.message : String(error))}`,
    )
    if (process.env.LOG_LEVEL === 'debug' || process.env.LOG_LEVEL === 'trace') console.error(error)
  }
  process.exit(1)
})
