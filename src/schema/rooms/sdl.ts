/** The SDL of rooms: `sails.sockets` as GraphQL (docs/rooms.md; docs/architecture.md §5, §8). */
export const roomTypeDefs = /* GraphQL */ `
  """A message broadcast to rooms or blasted to every connection."""
  type RoomMessage {
    """The message's id, the same for every recipient."""
    id: ID!
    """The room it reached this subscription through; null for a blast."""
    room: String
    """This message's position in \`room\`'s stream (opaque); null for a blast or a direct message, which no room holds."""
    cursor: String
    event: String!
    data: JSON
    """The WebSocket connection that sent it; null when it was sent over HTTP."""
    sender: ID
    sentAt: DateTime!
  }

  """A WebSocket connection to this gateway."""
  type Connection {
    id: ID!
    """The rooms it is in, sorted."""
    rooms: [String!]!
  }

  type Room {
    name: String!
    memberCount: Int!
  }

  """What broadcast or blast did."""
  type BroadcastResult {
    messageId: ID!
    """
    The live connections the message was addressed to, on every gateway instance; only this
    instance's when the others cannot be counted (\`complete\` is then false). Counted only when
    selected: on several gateways the count is a Redis request of its own.
    """
    recipients: Int!
    """
    True when the message was handed to every gateway instance (through Redis) and, when
    \`recipients\` is selected, its recipients counted over all of them. False when Redis is out
    of reach: this instance's subscribers have it, the others get it once Redis returns (the
    bus's outbox) or, past the outbox's bound, never.
    """
    complete: Boolean!
  }

  """What a membership operation did to one room."""
  type MembershipChange {
    room: String!
    """The connections that joined (or left) the room by this operation; those already in (or out of) it are not listed."""
    connectionIds: [ID!]!
    """
    Members of the room after the operation, on every gateway instance; only this instance's when
    Redis is out of reach (the operation itself is done: it concerned this instance's connections).
    """
    memberCount: Int!
  }

  type Query {
    """The connection this operation arrived on; null over HTTP."""
    connection: Connection
    """
    The connections in a room, sorted; [] for a room with no member. For the room's members and
    services (room policy \`members\`).
    """
    roomMembers(room: String!): [ID!]!
    """Every room with at least one member, sorted by name. For services (policy \`listRooms\`)."""
    rooms: [Room!]!
  }

  type Mutation {
    """
    Sends a message to every member of \`rooms\` (once each), except \`omit\`. A connection id used as a
    room name addresses that connection. \`omitSelf\` leaves out the WebSocket connection sending it.
    """
    broadcast(rooms: [String!]!, event: String!, data: JSON, omit: ID, omitSelf: Boolean): BroadcastResult!
    """Sends a message to every connection, except \`omit\` (and the sender with \`omitSelf\`)."""
    blast(event: String!, data: JSON, omit: ID, omitSelf: Boolean): BroadcastResult!
    """Makes a connection join a room; it stays until \`leave\`, \`leaveAll\` or disconnect."""
    join(connectionId: ID!, room: String!): MembershipChange!
    """Takes a connection out of a room, whatever put it there; its \`room\` subscriptions to it complete."""
    leave(connectionId: ID!, room: String!): MembershipChange!
    """Every member of \`room\` leaves every room it is in (Sails \`leaveAll\`); one change per room left."""
    leaveAll(room: String!): [MembershipChange!]!
    """The members of \`sourceRoom\` join each of \`rooms\`; one change per room."""
    addRoomMembersToRooms(sourceRoom: String!, rooms: [String!]!): [MembershipChange!]!
    """The members of \`sourceRoom\` leave each of \`rooms\`; one change per room."""
    removeRoomMembersFromRooms(sourceRoom: String!, rooms: [String!]!): [MembershipChange!]!
  }

  type Subscription {
    """
    Joins \`name\` for the life of the subscription and receives what is broadcast to it (only
    \`events\`, when given). Completing it leaves the room, unless the server also joined the
    connection to it. \`after\`: the cursor of the last message the client has from this room;
    first replays, in order, what the room received since, then goes on live
    (RESYNC_REQUIRED when the history no longer reaches back to it). \`presence\`: what this
    connection shows in the room's presence (its meta; MIZZEN_PRESENCE_META_MAX_BYTES at most).
    WebSocket only.
    """
    room(name: String!, events: [String!], after: String, presence: JSON): RoomMessage!
    """
    Everything that reaches this connection, once per message: broadcasts to any room it is in,
    blasts, and messages addressed to its id (only \`events\`, when given). WebSocket only.
    """
    messages(events: [String!]): RoomMessage!
  }
`
