/**
 * `selectsField`: whether an operation asks for a field of what a resolver returns, as the
 * resolver sees it (its field's nodes and the document's fragments).
 */
import { Kind, parse, type FieldNode, type FragmentDefinitionNode, type OperationDefinitionNode } from 'graphql'
import { describe, expect, it } from 'vitest'
import { selectsField } from '../src/schema/selects-field.ts'

/** What a resolver of the operation's first root field gets in `info`. */
function infoOf(document: string) {
  const parsed = parse(document)
  const operation = parsed.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!
  const fragments: Record<string, FragmentDefinitionNode> = {}
  for (const definition of parsed.definitions)
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition
  return { fieldNodes: [operation.selectionSet.selections[0] as FieldNode], fragments }
}

describe('selectsField', () => {
  it.each([
    ['directly', 'mutation { broadcast { messageId recipients } }'],
    ['under an alias', 'mutation { broadcast { n: recipients } }'],
    ['in an inline fragment', 'mutation { broadcast { ... on BroadcastResult { recipients } } }'],
    [
      'in a named fragment inside another',
      'mutation { broadcast { ...Outer } } fragment Outer on BroadcastResult { ...Inner } fragment Inner on BroadcastResult { recipients }',
    ],
    ['under @skip (it may be asked for)', 'mutation($s: Boolean!) { broadcast { recipients @skip(if: $s) } }'],
  ])('should find a field selected %s', (_how, document) => {
    expect(selectsField(infoOf(document), 'recipients')).toBe(true)
  })

  it.each([
    ['not selected', 'mutation { broadcast { messageId complete } }'],
    ['only as an alias name', 'mutation { broadcast { recipients: messageId } }'],
    ['on a nested field only', 'mutation { broadcast { nested { recipients } } }'],
    [
      'nowhere in fragments that spread each other',
      'mutation { broadcast { ...A } } fragment A on BroadcastResult { messageId ...B } fragment B on BroadcastResult { complete ...A }',
    ],
  ])('should not find a field %s', (_how, document) => {
    expect(selectsField(infoOf(document), 'recipients')).toBe(false)
  })
})
