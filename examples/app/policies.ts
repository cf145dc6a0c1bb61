/**
 * The policies of the example app (`npm start`), documented in the README:
 * - anyone may watch `Tag`;
 * - a user receives `Post` events only for posts that are published or that they wrote;
 * - a user receives `User` events only for their own record;
 * - rooms: `user:<id>` only for that user (who alone, with services, may see who else is in it),
 *   `staff…` for services only, any other room for all (whose members see each other);
 * - a service (API key) sees and may do everything.
 */
import type { Policies } from '../../src/auth/policies.ts'
import type { Viewer } from '../../src/auth/viewer.ts'

/** The example schema's user ids are integers; a JWT whose `sub` is not one owns no records. */
const ownId = (viewer: Viewer) => (viewer.id && /^\d+$/.test(viewer.id) ? viewer.id : undefined)

export const examplePolicies: Policies = {
  models: {
    Tag: { read: 'anonymous' },
    Post: {
      read: 'user',
      filter: (viewer) => {
        const id = ownId(viewer)
        return id ? { OR: [{ published: true }, { authorId: id }] } : { published: true }
      },
    },
    User: {
      read: 'user',
      filter: (viewer) => {
        const id = ownId(viewer)
        return id ? { id } : false
      },
    },
  },
  rooms: [
    {
      match: /^user:/,
      join: (viewer, room) => viewer.role === 'service' || room === `user:${viewer.id}`,
      // A service may join others to a user's room; they need not see one another.
      members: (viewer, room) => viewer.role === 'service' || room === `user:${viewer.id}`,
    },
    { match: /^staff(:|$)/, join: 'service' },
  ],
}
