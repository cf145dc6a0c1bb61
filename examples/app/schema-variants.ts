/**
 * `prisma/schema.prisma` is written for SQLite; the PostgreSQL variant is derived from it.
 * A generated Prisma client is bound to one provider, so each database gets its own client and
 * its own migrations, generated from the one source schema.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { DatabaseProvider } from '../../src/db/provider.ts'

export const projectRoot = fileURLToPath(new URL('../../', import.meta.url))
export const sourceSchemaPath = fileURLToPath(new URL('../../prisma/schema.prisma', import.meta.url))

const datasourceProvider = /(datasource\s+\w+\s*\{[^}]*?provider\s*=\s*)"sqlite"/

/** Generator blocks, which the engine ignores and the variant must not run. */
const generatorBlock = /^generator\s+\w+\s*\{[^}]*\}\s*$/gm

/**
 * The schema text for `provider`, with no generator blocks (callers add the ones they need).
 * @throws when the source's datasource is not the SQLite one this project expects.
 */
export function schemaVariant(source: string, provider: DatabaseProvider): string {
  if (!datasourceProvider.test(source)) {
    throw new Error(
      'prisma/schema.prisma: the datasource must declare provider = "sqlite" (the PostgreSQL variant is derived from it)',
    )
  }
  const withoutGenerators = source.replace(generatorBlock, '')
  return provider === 'sqlite' ? withoutGenerators : withoutGenerators.replace(datasourceProvider, '$1"postgresql"')
}

export async function readSourceSchema(): Promise<string> {
  return readFile(sourceSchemaPath, 'utf8')
}
