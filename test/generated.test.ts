/**
 * Everything derived from prisma/schema.prisma is current, and the model part of the GraphQL
 * schema follows the Prisma schema with no code change.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { printSchema } from 'graphql'
import { afterAll, describe, expect, it } from 'vitest'
import { expectedSchemaArtifacts } from '../scripts/schema-artifacts.ts'
import { projectRoot, sourceSchemaPath } from '../src/db/schema-variants.ts'
import type { DataModelMeta } from '../src/models/meta.ts'
import { buildSchema } from '../src/schema/index.ts'

describe('generated files', () => {
  it('should have schema.graphql and the codegen output up to date (run `npm run generate`)', async () => {
    for (const [path, expected] of await expectedSchemaArtifacts()) {
      expect(readFileSync(path, 'utf8'), `${path} is stale: run npm run generate`).toBe(expected)
    }
  })

  it('should have migrations for the current Prisma schema (run `npm run db:migration -- <name>`)', () => {
    const migrated = readFileSync(join(projectRoot, 'prisma', 'migrations', 'schema.prisma'), 'utf8')
    expect(readFileSync(sourceSchemaPath, 'utf8'), 'prisma/schema.prisma changed since the last migration').toBe(migrated)
  })
})

describe('a model added to the Prisma schema', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mizzen-newmodel-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('should get its type, queries and relation fields from `prisma generate` alone', async () => {
    const output = join(dir, 'models.ts')
    const schema = readFileSync(sourceSchemaPath, 'utf8')
      .replace(/output\s*=\s*"..\/src\/generated\/models.ts"/, `output = "${output}"`)
      .replace('provider = "tsx prisma/generator.ts"', `provider = "tsx ${join(projectRoot, 'prisma', 'generator.ts')}"`)
      .replace(/(model Post \{[^}]*)\}/, '$1  comments Comment[]\n}')
      .concat('\nmodel Comment {\n  id     Int    @id @default(autoincrement())\n  text   String\n  post   Post   @relation(fields: [postId], references: [id])\n  postId Int\n}\n')
    const schemaPath = join(dir, 'schema.prisma')
    writeFileSync(schemaPath, schema)
    const prismaCli = createRequire(import.meta.url).resolve('prisma/build/index.js')
    execFileSync(process.execPath, [prismaCli, 'generate', '--schema', schemaPath, '--generator', 'mizzen'], { cwd: projectRoot, stdio: 'pipe' })

    const { dataModel } = (await import(output)) as { dataModel: DataModelMeta }
    const printed = printSchema(buildSchema(dataModel))
    expect(printed).toMatch(/type Comment \{\n\s+id: ID!\n\s+text: String!\n\s+post: Post!\n\s+postId: ID!\n\}/)
    expect(printed).toContain('comment(id: ID!): Comment')
    expect(printed).toContain('comments(where: CommentWhereInput, orderBy: [CommentOrderByInput!], take: Int, skip: Int): [Comment!]!')
    expect(printed).toMatch(/type Post \{[^}]*comments\(where: CommentWhereInput/)
    expect(printed).toContain('input CommentWhereInput')
  })
})
