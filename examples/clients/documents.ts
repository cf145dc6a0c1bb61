/**
 * The operations the client recipes send, typed by GraphQL Code Generator's client preset
 * (codegen.yml beside this file writes ./gql/ from them and the gateway's schema.graphql).
 * Each recipe imports them: `data.userEvents.node.name` is a `string`, `at` a `DateTime`.
 */
import { graphql } from './gql/index.js'

/**
 * Every event of the User records the viewer may read (with the example app's policies, a user
 * reads their own record only). `node` is the record now, a `User` that a normalising cache keeps
 * as `User:<id>`; `previous` is a `UserPrevious`, the fields before the write, which never
 * overwrites it; the event itself has no `id`, so successive events of one record stay distinct.
 */
export const UserEvents = graphql(`
  subscription UserEvents($ids: [ID!], $after: String) {
    userEvents(ids: $ids, after: $after) {
      cursor
      verb
      recordId
      node {
        id
        name
        email
      }
      previous {
        name
        email
      }
      updatedFields
      at
    }
  }
`)

/** The User records the viewer may read: the list a subscription keeps current in the cache. */
export const Users = graphql(`
  query Users {
    users(orderBy: [{ id: asc }]) {
      id
      name
      email
    }
  }
`)

/**
 * The same list as a live query: the gateway sends it, then the complete new list after every
 * write that changes it (docs/live-queries.md). The recipes send it over graphql-ws.
 */
export const LiveUsers = graphql(`
  query LiveUsers @live {
    users(orderBy: [{ id: asc }]) {
      id
      name
      email
    }
  }
`)
