/**
 * Whether an operation asks for a field of the value a resolver returns, so that the resolver
 * can skip work nobody asked for (a broadcast's recipient count: docs/architecture.md §5).
 */
import { Kind, type FragmentDefinitionNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql'

/**
 * Whether `name` is selected on the result of the field being resolved, under any alias, in
 * inline fragments and in named fragments. A field under `@skip` or `@include` counts as
 * selected: the answer errs only toward doing the work.
 */
export function selectsField(info: Pick<GraphQLResolveInfo, 'fieldNodes' | 'fragments'>, name: string): boolean {
  const fragments: Record<string, FragmentDefinitionNode> = info.fragments
  const seen = new Set<string>()
  const within = (selectionSet: SelectionSetNode | undefined): boolean =>
    selectionSet?.selections.some((selection) => {
      if (selection.kind === Kind.FIELD) return selection.name.value === name
      if (selection.kind === Kind.INLINE_FRAGMENT) return within(selection.selectionSet)
      const fragment = selection.name.value
      if (seen.has(fragment)) return false
      seen.add(fragment)
      return within(fragments[fragment]?.selectionSet)
    }) ?? false
  return info.fieldNodes.some((node) => within(node.selectionSet))
}
