/**
 * Prisma's schema engine compiled to WebAssembly, driven through a driver adapter.
 *
 * The Prisma CLI's migrate commands need a native binary that is downloaded at first use, which
 * this project cannot rely on. The wasm build ships on npm and runs the same engine code as
 * `prisma migrate deploy` (it keeps `_prisma_migrations`), so `mizzen migrate` and the migration
 * script use it directly. Its ESM entry imports a `.wasm` file, which Node 20 refuses, so the
 * module is instantiated by hand from the generated glue.
 */
import { readFile } from 'node:fs/promises'
import type { SqlDriverAdapter, SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils'
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils'
import * as glue from '@prisma/schema-engine-wasm/schema_engine_bg'
import type { SchemaEngine } from '@prisma/schema-engine-wasm'
import type { SchemaFile } from './migrations.ts'

export type { SchemaEngine }

/** The filter every engine call takes: mizzen manages every table of its database. */
export const noSchemaFilter = { externalTables: [], externalEnums: [] }

// @types/node 20 does not declare WebAssembly (lib.dom does); these are the two constructors used.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: Record<string, object>) => { exports: Record<string, unknown> }
}

let instantiated: Promise<void> | undefined

function instantiate(): Promise<void> {
  instantiated ??= (async () => {
    const wasmUrl = new URL('schema_engine_bg.wasm', import.meta.resolve('@prisma/schema-engine-wasm/schema_engine_bg'))
    const module = new WebAssembly.Module(await readFile(wasmUrl))
    const instance = new WebAssembly.Instance(module, { './schema_engine_bg.js': glue })
    glue.__wbg_set_wasm(instance.exports)
    ;(instance.exports as { __wbindgen_start: () => void }).__wbindgen_start()
  })()
  return instantiated
}

/**
 * Runs `work` with a schema engine on `schema` (a Prisma schema's files) connected through
 * `adapterFactory`, then frees the engine and closes every connection it opened: `free()` alone
 * leaves them open, and an open SQLite connection keeps the file locked.
 */
export async function withSchemaEngine<T>(
  schema: readonly SchemaFile[],
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
  work: (engine: SchemaEngine) => Promise<T>,
): Promise<T> {
  await instantiate()
  const opened: SqlDriverAdapter[] = []
  const track = async (connecting: Promise<SqlDriverAdapter>) => {
    const adapter = await connecting
    opened.push(adapter)
    return adapter
  }
  const tracking: SqlMigrationAwareDriverAdapterFactory = {
    provider: adapterFactory.provider,
    adapterName: adapterFactory.adapterName,
    connect: () => track(adapterFactory.connect()),
    connectToShadowDb: () => track(adapterFactory.connectToShadowDb()),
  }
  const engine = (await glue.SchemaEngine.new(
    { datamodels: schema.map((file) => [file.path, file.content]) },
    () => {},
    bindMigrationAwareSqlAdapterFactory(tracking),
  )) as unknown as SchemaEngine
  try {
    return await work(engine)
  } finally {
    engine.free()
    await Promise.allSettled(opened.map((adapter) => adapter.dispose()))
  }
}
