/**
 * `npm run generate`: everything derived from `prisma/schema.prisma`.
 *   1. the SQLite Prisma client and mizzen's data model (`prisma generate`),
 *   2. the PostgreSQL variant of the schema, its client and data model (examples/app/generated/postgres),
 *   3. `schema.graphql`, the printed GraphQL schema, and
 *   4. the TypeScript types graphql-codegen makes from it (codegen.yml).
 * `npm install` runs steps 1-2 (`--prisma`); steps 3-4 are committed and checked by the tests.
 */
import { execFileSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { projectRoot, readSourceSchema, schemaVariant } from '../examples/app/schema-variants.ts'

const prismaCli = createRequire(import.meta.url).resolve('prisma/build/index.js')
const prisma = (...args: string[]) =>
  execFileSync(process.execPath, [prismaCli, ...args], { cwd: projectRoot, stdio: 'inherit' })

async function generatePrismaClients(): Promise<void> {
  prisma('generate')
  const postgresDir = join(projectRoot, 'examples', 'app', 'generated', 'postgres')
  await mkdir(postgresDir, { recursive: true })
  const postgresSchema = join(postgresDir, 'schema.prisma')
  await writeFile(
    postgresSchema,
    [
      '// Derived from prisma/schema.prisma by scripts/generate.ts. Do not edit.',
      'generator client {',
      '  provider     = "prisma-client"',
      '  output       = "./client"',
      '  moduleFormat = "esm"',
      '}',
      'generator mizzen {',
      '  provider = "tsx src/generator/index.ts"',
      '  output   = "./mizzen"',
      '}',
      schemaVariant(await readSourceSchema(), 'postgresql'),
    ].join('\n'),
  )
  prisma('generate', '--schema', postgresSchema)
}

await generatePrismaClients()
if (!process.argv.includes('--prisma')) {
  const { writeSchemaArtifacts } = await import('./schema-artifacts.ts')
  await writeSchemaArtifacts()
}
const migrated = await readFile(join(projectRoot, 'prisma', 'migrations', 'schema.prisma'), 'utf8').catch(
  () => undefined,
)
if (migrated !== (await readSourceSchema())) {
  console.warn(
    'prisma/schema.prisma has changes that no migration covers: run `npm run db:migration -- <name>` (until then, writes to new tables and columns fail)',
  )
}
