/**
 * What GraphiQL opens with: a subscription to the first model's events, and how to make it fire,
 * for whatever schema the gateway serves.
 */
import type { DataModel } from '../models/data-model.ts'
import { modelNames } from '../models/naming.ts'

const credentials = '# Credentials, if the gateway has any, go in Headers:\n#   { "authorization": "Bearer <token>" }'

export function graphiqlDefaultQuery(dataModel: DataModel): string {
  const model = dataModel.models[0]
  if (!model)
    return `# mizzen: this schema has no models yet; rooms work already.\n${credentials}\n{\n  mizzenVersion\n}\n`
  const names = modelNames(model.name)
  // A few plain fields to show: the id, then scalars that print well.
  const shown = model.scalars
    .filter((field) => !field.isList && !['Bytes', 'Json'].includes(field.type))
    .slice(0, 3)
    .map((field) => field.name)
  const rest = shown.filter((name) => name !== model.idField)
  return [
    '# mizzen: the records of every model, live.',
    `# Run this subscription, then create, update or delete a ${model.name} in a second tab`,
    `# (mutation { ${names.create}(data: { … }) { ${model.idField} } }) or from a backend with the realtime extension.`,
    credentials,
    'subscription {',
    `  ${names.events} {`,
    '    verb',
    '    recordId',
    `    node { ${shown.join(' ')} }`,
    ...(rest.length ? [`    previous { ${rest.join(' ')} }`] : []),
    '    updatedFields',
    '  }',
    '}',
    '',
  ].join('\n')
}
