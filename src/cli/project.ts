/**
 * The user's project as the `mizzen` command sees it: the Prisma schema, the data model the
 * `mizzen` generator wrote from it, and the Prisma Client generated beside it.
 */
import { existsSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { databaseProvider } from '../db/provider.ts'
import type { DataModelMeta } from '../models/meta.ts'
import type { PrismaClientLike } from '../prisma/client.ts'
import type { LoadedConfig } from './config-file.ts'
import { CliError } from './errors.ts'
import { importProjectPackage, importUserModule } from './modules.ts'
import { defaultSchemaPaths, readPrismaSchema, type PrismaSchema } from './prisma-schema.ts'

/** What the generator writes beside the data model (see src/generator/data-model.ts). */
interface GeneratedModule {
  readonly dataModel?: DataModelMeta
  readonly prismaClient?: { readonly module: string; readonly generator: string; readonly provider: string }
}

export interface ProjectOptions {
  /** `--schema`. */
  readonly schema?: string | undefined
  /** `--migrations`. */
  readonly migrations?: string | undefined
}

export class Project {
  private constructor(
    readonly schema: PrismaSchema,
    readonly migrationsDir: string,
  ) {}

  /** Finds the schema: `--schema`, then the config's `schema`, then Prisma's default places. */
  static async open(options: ProjectOptions, config: LoadedConfig): Promise<Project> {
    const cwd = process.cwd()
    const schemaPath = options.schema
      ? resolve(cwd, options.schema)
      : config.schema
        ? resolve(config.baseDir, config.schema)
        : (defaultSchemaPaths.map((path) => resolve(cwd, path)).find((path) => existsSync(path)) ??
          resolve(cwd, defaultSchemaPaths[0]!))
    const schema = await readPrismaSchema(relative(cwd, schemaPath) || schemaPath)
    const migrationsDir = options.migrations
      ? resolve(cwd, options.migrations)
      : config.migrations
        ? resolve(config.baseDir, config.migrations)
        : join(schema.datasourceDir, 'migrations')
    return new Project(schema, migrationsDir)
  }

  /** A path as the user would write it (relative to the working directory). */
  show(path: string): string {
    return relative(process.cwd(), path) || '.'
  }

  #generated: Promise<GeneratedModule> | undefined

  private generated(): Promise<GeneratedModule> {
    this.#generated ??= (async () => {
      const path = join(this.schema.mizzenOutput, 'index.js')
      if (!existsSync(path)) {
        throw new CliError(
          `no mizzen data model at ${this.show(path)}: run \`npx prisma generate\` (schema ${this.show(this.schema.path)})`,
        )
      }
      return importUserModule<GeneratedModule>(path, process.cwd(), 'the mizzen data model')
    })()
    return this.#generated
  }

  async dataModel(): Promise<DataModelMeta> {
    const { dataModel } = await this.generated()
    if (!dataModel)
      throw new CliError(`${this.show(this.schema.mizzenOutput)} holds no data model: run \`npx prisma generate\``)
    return dataModel
  }

  /** Throws unless `databaseUrl` is for the database the schema declares. */
  checkDatabase(databaseUrl: string): void {
    const provider = databaseProvider(databaseUrl)
    const declared = this.schema.provider === 'postgres' ? 'postgresql' : this.schema.provider
    if (provider !== declared) {
      throw new CliError(
        `DATABASE_URL is a ${provider} URL, but ${this.show(this.schema.path)} declares provider "${this.schema.provider}"`,
      )
    }
  }

  /** The Prisma Client class generated from the schema (by `prisma-client` or `prisma-client-js`). */
  async prismaClientClass(): Promise<new (options: { adapter: unknown }) => PrismaClientLike> {
    const { prismaClient } = await this.generated()
    if (!prismaClient) {
      throw new CliError(
        `${this.show(this.schema.path)} has no Prisma Client generator: add generator client { provider = "prisma-client"  output = "../generated/prisma" } and run \`npx prisma generate\``,
      )
    }
    const what = `the Prisma Client (generator ${prismaClient.generator})`
    const module = prismaClient.module.startsWith('.')
      ? await importUserModule<Record<string, unknown>>(
          resolve(this.schema.mizzenOutput, prismaClient.module),
          process.cwd(),
          what,
        )
      : await importProjectPackage<Record<string, unknown>>(prismaClient.module, process.cwd(), what)
    // A CommonJS client (prisma-client-js) may show its exports on `default` only.
    const PrismaClient = module.PrismaClient ?? (module.default as Record<string, unknown> | undefined)?.PrismaClient
    if (typeof PrismaClient !== 'function')
      throw new CliError(`${what} exports no PrismaClient class: run \`npx prisma generate\``)
    return PrismaClient as new (options: {
      adapter: unknown
    }) => PrismaClientLike
  }
}
