// The browser demo: a chat with rooms and a live post list, on mizzen's GraphQL API.
// - joining a room is subscribing to `room(name, presence: { name })`; leaving is completing that
//   subscription;
// - a message is a `broadcast` mutation (HTTP POST), which every member receives on `room`;
// - members come from `presence(room)`: a SYNC with everyone, then JOIN, UPDATE and LEAVE as they
//   come and go (names are in each member's presence meta); no polling;
// - posts: `posts(where)` once, then `postEvents(where)` keeps the list right.
import { GraphQLWsClient, request } from './client.js'

const config = JSON.parse(document.getElementById('config').textContent)
const $ = (id) => document.getElementById(id)
const params = new URLSearchParams(location.search)
const httpUrl = new URL(config.graphqlPath, location.href).href
const wsUrl = httpUrl.replace(/^http/, 'ws')

const ROOM = `subscription DemoRoom($name: String!, $presence: JSON) { room(name: $name, presence: $presence) { id event data sender sentAt } }`
const PRESENCE = `subscription DemoPresence($room: String!) { presence(room: $room) { kind count members { key userId role connections meta } } }`
const BROADCAST = `mutation DemoSend($rooms: [String!]!, $event: String!, $data: JSON) { broadcast(rooms: $rooms, event: $event, data: $data) { recipients } }`
const POSTS = `query DemoPosts($where: PostWhereInput) { posts(where: $where, orderBy: [{ id: desc }], take: 100) { id title published } }`
const POST_EVENTS = `subscription DemoPostEvents($where: PostWhereInput) { postEvents(where: $where) { verb recordId node { id title published } } }`

const state = {
  // Never from the URL: a token there ends up in history and proxy logs.
  token: sessionStorage.getItem('mizzen-demo-token') ?? '',
  room: undefined,
  stopRoom: undefined,
  stopPresence: undefined,
  /** The room's members by presence key, as `presence` last said. */
  members: new Map(),
  /** Posts by id, as the filter of `postsRun` sees them. */
  posts: new Map(),
  postsRun: 0,
  stopPosts: undefined,
}

$('name').value =
  params.get('name') ?? sessionStorage.getItem('mizzen-demo-name') ?? `guest-${Math.random().toString(36).slice(2, 6)}`
$('room').value = params.get('room') ?? 'lobby'
$('token').value = state.token
$('posts').hidden = !config.posts

const client = new GraphQLWsClient(wsUrl, { token: () => state.token, onConnected: connected, onClosed: closed })
const send = (query, variables) => request(httpUrl, query, variables, state.token)

function showError(error) {
  const text = Array.isArray(error) ? error.map((item) => item.message).join('; ') : String(error?.message ?? error)
  $('error').textContent = text
  $('error').hidden = false
}

function setStatus(stateName, text) {
  $('status').dataset.state = stateName
  $('status').textContent = text
}

function connected(connectionId) {
  setStatus('open', 'connected')
  $('connection-id').textContent = connectionId
  $('error').hidden = true
  joinRoom($('room').value.trim())
  if (config.posts) startPosts()
}

function closed(code, reason) {
  setStatus('closed', `disconnected (${code}${reason ? `: ${reason}` : ''})${code === 4403 ? '' : ', reconnecting…'}`)
  $('connection-id').textContent = '–'
  state.stopRoom = undefined
  state.stopPresence = undefined
  state.stopPosts = undefined
  enableSending(false)
  if (code === 4403) showError('The gateway refused the token (4403 Forbidden): set a valid one above.')
}

// ---- chat -----------------------------------------------------------------------------------

function enableSending(enabled) {
  $('message').disabled = !enabled
  $('send').disabled = !enabled
}

const me = () => ({ name: $('name').value.trim() || 'guest', connectionId: client.connectionId })

/** Joins with this page's name as presence meta, then watches who is there (members may watch). */
function joinRoom(room) {
  if (!room || !client.connectionId) return
  state.stopRoom?.()
  state.stopPresence?.()
  state.room = room
  $('joined').textContent = `in ${room}`
  $('messages').replaceChildren()
  state.members = new Map()
  renderMembers()
  state.stopRoom = client.subscribe(
    ROOM,
    { name: room, presence: me() },
    {
      next: (result) => (result.errors ? showError(result.errors) : received(result.data.room)),
      error: showError,
      complete: () => {
        if (state.room === room) enableSending(false)
      },
    },
  )
  // Sent after the room subscription: the gateway waits for that join before checking membership.
  state.stopPresence = client.subscribe(
    PRESENCE,
    { room },
    {
      next: (result) => {
        if (state.room !== room) return
        if (result.errors) return showError(result.errors)
        applyPresence(result.data.presence)
      },
      error: showError,
    },
  )
  enableSending(true)
}

/** SYNC replaces the list; JOIN and UPDATE set members; LEAVE removes them. */
function applyPresence(event) {
  if (event.kind === 'SYNC') state.members = new Map()
  for (const member of event.members) {
    if (event.kind === 'LEAVE') state.members.delete(member.key)
    else state.members.set(member.key, member)
    if (event.kind === 'JOIN' || event.kind === 'LEAVE')
      systemLine(`${nameOf(member)} ${event.kind === 'JOIN' ? 'joined' : 'left'}`)
  }
  renderMembers()
}

const nameOf = (member) => (typeof member.meta?.name === 'string' ? member.meta.name : 'someone')
const isMe = (member) => member.key === client.connectionId || member.meta?.connectionId === client.connectionId

function received(message) {
  const data = message.data ?? {}
  if (message.event !== 'chat') return
  const item = document.createElement('li')
  item.dataset.sender = data.connectionId ?? ''
  const from = document.createElement('span')
  from.className = 'from'
  from.textContent = data.name ?? '?'
  const text = document.createElement('span')
  text.className = 'text'
  text.textContent = data.text ?? ''
  item.append(from, text)
  appendMessage(item)
}

function systemLine(text) {
  const item = document.createElement('li')
  item.className = 'system'
  item.textContent = text
  appendMessage(item)
}

function appendMessage(item) {
  const list = $('messages')
  list.append(item)
  list.scrollTop = list.scrollHeight
}

function renderMembers() {
  const items = [...state.members.values()]
    .sort((a, b) => nameOf(a).localeCompare(nameOf(b)))
    .map((member) => {
      const item = document.createElement('li')
      item.dataset.id = member.key
      const name = isMe(member) ? `${nameOf(member)} (you)` : nameOf(member)
      const connections = member.connections > 1 ? ` ×${member.connections}` : ''
      item.textContent = `${name}${connections} · ${member.key.slice(0, 8)}`
      return item
    })
  $('members').replaceChildren(...items)
}

$('join-form').addEventListener('submit', (event) => {
  event.preventDefault()
  sessionStorage.setItem('mizzen-demo-name', $('name').value.trim())
  joinRoom($('room').value.trim())
})

$('send-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const text = $('message').value.trim()
  if (!text || !state.room) return
  try {
    await send(BROADCAST, { rooms: [state.room], event: 'chat', data: { ...me(), text } })
    $('message').value = ''
  } catch (error) {
    showError(error)
  }
})

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault()
  state.token = $('token').value.trim()
  sessionStorage.setItem('mizzen-demo-token', state.token)
  setStatus('connecting', 'connecting…')
  client.reconnect()
})

// ---- posts ----------------------------------------------------------------------------------

function currentFilter() {
  return { published: $('filter-published').checked, title: $('filter-title').value }
}

function whereOf(filter) {
  const all = []
  if (filter.published) all.push({ published: { equals: true } })
  if (filter.title) all.push({ title: { contains: filter.title } })
  return all.length ? { AND: all } : undefined
}

/** The filter, as the gateway evaluates it on events (string operators are case-sensitive there). */
const matches = (post, filter) =>
  (!filter.published || post.published) && (!filter.title || post.title.includes(filter.title))

/** Subscribes first, then loads; events that arrive while it loads are applied after it. */
async function startPosts() {
  state.stopPosts?.()
  const run = ++state.postsRun
  const filter = currentFilter()
  const where = whereOf(filter)
  let early = []
  state.stopPosts = client.subscribe(
    POST_EVENTS,
    { where },
    {
      next: (result) => {
        if (run !== state.postsRun) return
        if (result.errors) return showError(result.errors)
        if (early) early.push(result.data.postEvents)
        else applyPostEvent(result.data.postEvents, filter)
      },
      error: showError,
    },
  )
  try {
    const { posts } = await send(POSTS, { where })
    if (run !== state.postsRun) return
    state.posts = new Map(posts.map((post) => [post.id, post]))
    const pending = early
    early = undefined
    for (const event of pending) applyPostEvent(event, filter, false)
    renderPosts()
  } catch (error) {
    showError(error)
  }
}

/** CREATED adds; UPDATED changes, or adds (it entered the filter) or removes (it left); DELETED removes. */
function applyPostEvent(event, filter, render = true) {
  if ((event.verb === 'CREATED' || event.verb === 'UPDATED') && event.node) {
    if (matches(event.node, filter)) state.posts.set(event.node.id, event.node)
    else state.posts.delete(event.recordId)
  } else if (event.verb === 'DELETED') {
    state.posts.delete(event.recordId)
  }
  if (render) renderPosts()
}

const byIdDescending = (a, b) =>
  /^\d+$/.test(a.id) && /^\d+$/.test(b.id) ? Number(b.id) - Number(a.id) : b.id.localeCompare(a.id)

function renderPosts() {
  const items = [...state.posts.values()].sort(byIdDescending).map((post) => {
    const item = document.createElement('li')
    item.dataset.id = post.id
    item.dataset.published = String(post.published)
    item.textContent = `#${post.id} ${post.title}${post.published ? '' : ' (draft)'}`
    return item
  })
  $('post-list').replaceChildren(...items)
}

$('filter-form').addEventListener('submit', (event) => {
  event.preventDefault()
  if (client.connectionId) void startPosts()
})

client.connect()
