/** The SDL of presence: who is in a room, who came and went (docs/architecture.md §13). */
export const presenceTypeDefs = /* GraphQL */ `
  enum PresenceKind {
    """The first event of a subscription: every member."""
    SYNC
    """Members that arrived."""
    JOIN
    """Members whose last connection left, and stayed away for the leave grace (connections 0)."""
    LEAVE
    """Members whose connections or meta changed."""
    UPDATE
  }

  """
  A member of a room: a user (every connection of one JWT subject, key = the user id), or a
  single anonymous or service connection (key = the connection id).
  """
  type PresenceMember {
    key: ID!
    """The user id of a user; null for an anonymous or service connection."""
    userId: ID
    """anonymous, user or service."""
    role: String!
    """Its connections in the room (on every gateway); 0 in a LEAVE."""
    connections: Int!
    """What it shows in the room: the meta most recently set by one of its connections; null when none."""
    meta: JSON
  }

  type PresenceEvent {
    kind: PresenceKind!
    room: String!
    """Every member (SYNC), or the members that changed."""
    members: [PresenceMember!]!
    """Members of the room after this event."""
    count: Int!
    at: DateTime!
  }

  type Query {
    """
    The members of a room now, sorted by key (those in their leave grace are not listed). For the
    room's members and services (room policy \`members\`).
    """
    presence(room: String!): [PresenceMember!]!
  }

  type Mutation {
    """
    Sets what this connection shows in \`room\` (it must be in it) and sends UPDATE to the room's
    watchers. WebSocket only. Bounded in size (MIZZEN_PRESENCE_META_MAX_BYTES).
    """
    updatePresence(room: String!, meta: JSON!): Boolean!
  }

  type Subscription {
    """
    Who is in \`room\`: first a SYNC event with every member, then JOIN, LEAVE and UPDATE events with
    the members that changed, batched (MIZZEN_PRESENCE_BATCH_MS). A member leaves only after the
    leave grace (MIZZEN_PRESENCE_LEAVE_GRACE_MS). For the room's members and services (room policy
    \`members\`): send the \`room\` subscription first.
    """
    presence(room: String!): PresenceEvent!
  }
`
