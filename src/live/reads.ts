/**
 * What a live query reads, from its selection set and the schema's types: the models whose
 * events can change its result (docs/live-queries.md, Invalidation). Every object type the
 * selection reaches that is a model's type counts, whether it is a root list (`users`), a record
 * (`post(id:)`) or a relation of a record (`user { posts }`): an event of any of those models
 * re-executes the query.
 */
import {
  GraphQLError,
  getNamedType,
  Kind,
  type ASTVisitor,
  type DocumentNode,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql'
import type { DataModel } from '../models/data-model.ts'
import { typesReached } from '../delivery/grouping.ts'

/** The models (by name) whose records `document`'s operation reads. Cached per parsed document (see typesReached). */
export function modelsRead(
  schema: GraphQLSchema,
  dataModel: DataModel,
  document: DocumentNode,
  operationName: string | null | undefined,
): readonly string[] {
  const models = new Set(dataModel.models.map((model) => model.name))
  return typesReached(schema, document, operationName).filter((type) => models.has(type))
}

/** Whether an operation carries `@live` that is not switched off by a literal `if: false`. */
function mayBeLive(directives: readonly { name: { value: string }; arguments?: readonly any[] }[] | undefined) {
  const live = directives?.find((directive) => directive.name.value === 'live')
  if (!live) return false
  const condition = live.arguments?.find((argument) => argument.name.value === 'if')
  return !(condition?.value.kind === Kind.BOOLEAN && condition.value.value === false)
}

/**
 * A validation rule: every root field of a `@live` query returns a model's records (or is
 * `__typename`). Model events are what invalidates a live query: a field that reads no model
 * (`connection`, `rooms`, `roomMembers`, `presence`, `mizzenVersion`) would never be
 * re-executed, and `connection` is the caller's own, which a group shared by several
 * connections cannot answer. Refused at validation, over HTTP and WebSocket alike.
 */
export function liveRootFieldsRule(dataModel: DataModel): ValidationRule {
  const models = new Set(dataModel.models.map((model) => model.name))
  return (context: ValidationContext): ASTVisitor => {
    const queryType = context.getSchema().getQueryType()
    const check = (selectionSet: SelectionSetNode, seen: Set<string>) => {
      for (const selection of selectionSet.selections) {
        if (selection.kind === Kind.FIELD) {
          const name = selection.name.value
          if (name === '__typename') continue
          const field = queryType?.getFields()[name]
          if (!field) continue // unknown fields are another rule's to report
          if (models.has(getNamedType(field.type).name)) continue
          context.reportError(
            new GraphQLError(
              `@live keeps the results of model queries up to date, and "${name}" reads no model: ask for it without @live, or subscribe to its changes`,
              { nodes: selection },
            ),
          )
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          check(selection.selectionSet, seen)
        } else {
          const name = selection.name.value
          const fragment = context.getFragment(name)
          if (fragment && !seen.has(name)) check(fragment.selectionSet, new Set([...seen, name]))
        }
      }
    }
    return {
      OperationDefinition(node) {
        if (node.operation === 'query' && mayBeLive(node.directives)) check(node.selectionSet, new Set())
        return false
      },
    }
  }
}
