/**
 * Names a data model may not take. The gateway's own types and root fields (`Room`, `Connection`,
 * `Query.rooms`, `Subscription.presence`, …) share one schema with the types and fields generated
 * for each model (src/models/naming.ts); graphql-tools merges two definitions of one name without
 * a word, so a model named `Room` would silently change what `rooms` means. Refused when the
 * schema is built, naming the model and the way out (docs/your-project.md).
 */
import { Kind, parse, type DefinitionNode } from 'graphql'
import type { DataModel } from '../models/data-model.ts'
import { modelNames } from '../models/naming.ts'

const roots = new Set(['Query', 'Mutation', 'Subscription'])

interface Declared {
  /** Type names (object, input, enum, scalar, interface, union), each with how many definitions. */
  readonly types: Map<string, number>
  /** Root fields as `Query.rooms`, each with how many definitions. */
  readonly fields: Map<string, number>
}

const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1)

function declared(typeDefs: readonly string[]): Declared {
  const types = new Map<string, number>()
  const fields = new Map<string, number>()
  for (const text of typeDefs) {
    if (!text.trim()) continue
    for (const definition of parse(text).definitions as readonly DefinitionNode[]) {
      if (definition.kind === Kind.DIRECTIVE_DEFINITION || !('name' in definition) || !definition.name) continue
      const name = definition.name.value
      if (roots.has(name) && 'fields' in definition) {
        for (const field of definition.fields ?? []) count(fields, `${name}.${field.name.value}`)
        continue
      }
      // An extension adds to a type declared elsewhere; only definitions declare one.
      if (!definition.kind.endsWith('Extension')) count(types, name)
    }
  }
  return { types, fields }
}

/** Which model of `dataModel` a generated type or root field comes from, for the message. */
function ownerOf(dataModel: DataModel, name: string): string | undefined {
  for (const model of dataModel.models) {
    const names = modelNames(model.name)
    const generated = [
      names.type,
      names.event,
      names.previous,
      names.where,
      names.orderBy,
      names.createInput,
      names.updateInput,
      `Query.${names.one}`,
      `Query.${names.many}`,
      `Mutation.${names.create}`,
      `Mutation.${names.update}`,
      `Mutation.${names.delete}`,
      `Mutation.${names.publish}`,
      `Subscription.${names.events}`,
    ]
    if (generated.includes(name)) return model.name
  }
  return undefined
}

/**
 * Throws when a type or root field generated for `dataModel` (`modelTypeDefs`) has the name of
 * one of the gateway's own (`gatewayTypeDefs`), or two models generate the same one.
 */
export function assertNoClashes(
  dataModel: DataModel,
  gatewayTypeDefs: readonly string[],
  modelTypeDefs: readonly string[],
): void {
  const gateway = declared(gatewayTypeDefs)
  const models = declared(modelTypeDefs)
  const clashes: string[] = []
  const describe = (name: string) => {
    const owner = ownerOf(dataModel, name)
    return owner ? `model ${owner} generates ${name}` : `the data model declares ${name}`
  }
  for (const [kind, own, generated] of [
    ['type', gateway.types, models.types],
    ['field', gateway.fields, models.fields],
  ] as const) {
    for (const [name, times] of generated) {
      if (own.has(name)) clashes.push(`${describe(name)}, the gateway's own ${kind} (${name})`)
      else if (times > 1)
        clashes.push(
          `${describe(name)}, which the generated schema has already (another model's, or one every model shares)`,
        )
    }
  }
  if (clashes.length)
    throw new Error(
      `mizzen: names the gateway cannot serve: ${clashes.join('; ')}. Rename the model in schema.prisma and keep its table with @@map("<old name>") (docs/your-project.md)`,
    )
}
