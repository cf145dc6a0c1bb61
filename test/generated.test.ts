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
import { projectRoot, sourceSchemaPath } from '../examples/app/schema-variants.ts'
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
    expect(readFileSync(sourceSchemaPath, 'utf8'), 'prisma/schema.prisma changed since the last migration').toBe(
      migrated,
    )
  })
})

describe('a model added to the Prisma schema', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mizzen-newmodel-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('should get its type, queries, mutations and relation fields from `prisma generate` alone', async () => {
    // Names no user of docs/development.md's example (which adds a Comment model) would pick.
    const output = join(dir, 'mizzen')
    const schema = readFileSync(sourceSchemaPath, 'utf8')
      .replace(/output\s*=\s*"..\/examples\/app\/generated\/mizzen"/, `output = "${output}"`)
      .replace(
        'provider = "tsx src/generator/index.ts"',
        `provider = "tsx ${join(projectRoot, 'src', 'generator', 'index.ts')}"`,
      )
      .replace(/(model Post \{[^}]*)\}/, '$1  probeNotes ProbeNote[]\n}')
      .concat(
        '\nmodel ProbeNote {\n  id     Int    @id @default(autoincrement())\n  text   String\n  post   Post   @relation(fields: [postId], references: [id])\n  postId Int\n}\n',
      )
      // A model with nothing a client can write: created from its defaults, never updated.
      .concat('\nmodel ProbeTick {\n  id Int @id @default(autoincrement())\n}\n')
    const schemaPath = join(dir, 'schema.prisma')
    writeFileSync(schemaPath, schema)
    const prismaCli = createRequire(import.meta.url).resolve('prisma/build/index.js')
    execFileSync(process.execPath, [prismaCli, 'generate', '--schema', schemaPath, '--generator', 'mizzen'], {
      cwd: projectRoot,
      stdio: 'pipe',
    })

    const { dataModel } = (await import(join(output, 'index.js'))) as { dataModel: DataModelMeta }
    const printed = printSchema(buildSchema(dataModel))
    expect(printed).toMatch(/type ProbeNote \{\n\s+id: ID!\n\s+text: String!\n\s+post: Post!\n\s+postId: ID!\n\}/)
    expect(printed).toContain('probeNote(id: ID!): ProbeNote')
    expect(printed).toContain(
      'probeNotes(where: ProbeNoteWhereInput, orderBy: [ProbeNoteOrderByInput!], take: Int, skip: Int): [ProbeNote!]!',
    )
    expect(printed).toMatch(/type Post \{[^}]*probeNotes\(where: ProbeNoteWhereInput/)
    expect(printed).toContain('input ProbeNoteWhereInput')
    expect(printed).toContain('createProbeNote(data: ProbeNoteCreateInput!): ProbeNote!')
    expect(printed).toContain(
      'probeNoteEvents(ids: [ID!], where: ProbeNoteWhereInput, verbs: [ModelVerb!], after: String): ProbeNoteEvent!',
    )
    expect(printed).toContain('createProbeTick: ProbeTick!')
    expect(printed).not.toContain('updateProbeTick')
    expect(printed).not.toContain('input ProbeTickCreateInput')
  })
})
