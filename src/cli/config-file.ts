/**
 * `mizzen.config.{js,mjs,ts,mts}`: what the `mizzen` command cannot take from the environment
 * (code, such as policies) and where the project keeps its schema and migrations.
 */
import { existsSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { Policies } from '../auth/policies.ts'
import { CliError } from './errors.ts'
import { importUserModule } from './modules.ts'

export interface MizzenConfig {
  /** The Prisma schema: a file, or a folder of `.prisma` files; relative to the config file. @default "prisma/schema.prisma" (or "schema.prisma") */
  readonly schema?: string
  /** The migrations folder `mizzen migrate` applies; relative to the config file. @default "migrations" beside the file that declares the datasource */
  readonly migrations?: string
  /** Who may read, write, join and broadcast. @default models, writes and room management for services only; joining rooms open */
  readonly policies?: Policies
}

/** Types a config module's default export: `export default defineConfig({ … })`. */
export const defineConfig = (config: MizzenConfig): MizzenConfig => config

export const configFileNames = ['mizzen.config.js', 'mizzen.config.mjs', 'mizzen.config.ts', 'mizzen.config.mts']

export interface LoadedConfig extends MizzenConfig {
  /** The config file, when there is one. */
  readonly file: string | undefined
  /** The folder relative paths start from: the config file's, or the working directory. */
  readonly baseDir: string
}

const keys = new Set(['schema', 'migrations', 'policies'])

/**
 * In a `"type": "commonjs"` project (what npm 11's `npm init` writes), Node imports a config that
 * tsc or esbuild compiled from `export default …`, and the project's tsx a `mizzen.config.ts`, as
 * `{ default: module.exports }`: the config is `module.exports.default`, flagged `__esModule`.
 */
function unwrapCommonJs(exported: unknown): unknown {
  const commonJs =
    typeof exported === 'object' && exported !== null && (exported as { __esModule?: unknown }).__esModule === true
  return commonJs && 'default' in exported ? (exported as { default: unknown }).default : exported
}

/** Loads the config file at `path`, or the first of `configFileNames` in the working directory; none is fine. */
export async function loadConfigFile(path: string | undefined): Promise<LoadedConfig> {
  const cwd = process.cwd()
  const file = path
    ? resolve(path)
    : configFileNames.map((name) => resolve(cwd, name)).find((candidate) => existsSync(candidate))
  if (!file) return { file: undefined, baseDir: cwd }
  if (!existsSync(file)) throw new CliError(`no config file at ${path}`)
  const module = await importUserModule<{ default?: unknown }>(file, cwd, 'the mizzen config')
  const config = unwrapCommonJs(module.default)
  if (typeof config !== 'object' || config === null)
    throw new CliError(`${file} must export default a config object: export default defineConfig({ … })`)
  const unknown = Object.keys(config).filter((key) => !keys.has(key))
  if (unknown.length)
    throw new CliError(`${file}: unknown setting ${unknown.join(', ')} (known: ${[...keys].join(', ')})`)
  return { ...(config as MizzenConfig), file, baseDir: dirname(file) }
}
