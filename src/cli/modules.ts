/**
 * Loading the user's modules (their mizzen config, the generated data model, their Prisma
 * Client) from the `mizzen` command, which runs on plain `node`. Prisma's `prisma-client`
 * generator writes TypeScript: when a `.ts` module cannot be loaded, the project's own `tsx`
 * (if it has one) is registered as the loader, and otherwise the error says how to run it.
 */
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CliError } from './errors.ts'

const typeScript = /\.[cm]?tsx?$/

let tsxRegistered = false

/** Registers the project's `tsx` (resolved from `projectDir`) as a loader; false when it has none. */
async function registerProjectTsx(projectDir: string): Promise<boolean> {
  if (tsxRegistered) return true
  let loader: string
  try {
    loader = createRequire(join(projectDir, 'package.json')).resolve('tsx')
  } catch {
    return false
  }
  await import(pathToFileURL(loader).href)
  tsxRegistered = true
  return true
}

/**
 * Imports the module at `path` (absolute), or the package `specifier` resolved from
 * `projectDir`. A TypeScript module is loaded with the project's `tsx` when plain node cannot.
 */
export async function importUserModule<T>(path: string, projectDir: string, what: string): Promise<T> {
  const url = pathToFileURL(path).href
  try {
    return (await import(url)) as T
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ERR_MODULE_NOT_FOUND' && (error as Error).message.includes(path))
      throw new CliError(`${what} not found at ${path}`)
    if (code !== 'ERR_UNKNOWN_FILE_EXTENSION' || !typeScript.test(path)) throw error
  }
  if (!(await registerProjectTsx(projectDir))) {
    throw new CliError(
      `${what} at ${path} is TypeScript, which plain node cannot load: install tsx in your project (npm install -D tsx) ` +
        'and mizzen uses it, or run mizzen with a TypeScript loader (node --import tsx node_modules/mizzen/dist/cli/main.js …)',
    )
  }
  // A fresh URL: Node keeps the failed attempt cached under the plain one.
  return (await import(`${url}?ts`)) as T
}

/** Imports a bare package `specifier` as the project at `projectDir` would resolve it. */
export async function importProjectPackage<T>(specifier: string, projectDir: string, what: string): Promise<T> {
  let resolved: string
  try {
    resolved = createRequire(join(projectDir, 'package.json')).resolve(specifier)
  } catch {
    throw new CliError(`${what} (${specifier}) is not installed in ${projectDir}`)
  }
  return importUserModule<T>(resolved, projectDir, what)
}
