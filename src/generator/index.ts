#!/usr/bin/env node
/**
 * The `mizzen` Prisma generator (`mizzen-generator`): `prisma generate` runs it for a schema that
 * declares
 *
 *     generator mizzen {
 *       provider = "mizzen-generator"
 *       output   = "../generated/mizzen"
 *     }
 *
 * and it writes the data model (and where the Prisma Client is) as a small ES module in `output`.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import generatorHelper from '@prisma/generator-helper'
import { findClient, outputDirOf, renderOutput, toDataModelMeta } from './data-model.ts'

// The package is CommonJS: its named exports are not visible to Node's ESM loader.
const { generatorHandler } = generatorHelper

generatorHandler({
  onManifest: () => ({ prettyName: 'mizzen data model', defaultOutput: '../generated/mizzen' }),
  async onGenerate(options) {
    const outputDir = outputDirOf(options)
    const provider = options.datasources[0]?.activeProvider ?? 'unknown'
    const client = findClient(outputDir, options.otherGenerators, provider)
    const files = renderOutput(toDataModelMeta(options.dmmf), client, options.schemaPath, outputDir)
    await mkdir(outputDir, { recursive: true })
    for (const [name, content] of files) await writeFile(join(outputDir, name), content)
  },
})
