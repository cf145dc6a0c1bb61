/**
 * The browser demo (`/demo`): its files over HTTP, and the page itself end to end in headless
 * Chromium (Debian's `chromium` package, driven by playwright-core): two pages chatting in one
 * room, and a post list kept right by `postEvents` while a script writes posts.
 *
 * Chromium is looked for at CHROMIUM_PATH (default /usr/bin/chromium). When it is missing the
 * browser tests are skipped with a message, as a missing service is (test/helpers/preflight.ts);
 * with CI=true they fail instead (`.ci/run` installs it).
 */
import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { demoConfig } from '../src/demo/index.ts'
import { linkDataModel } from '../src/models/data-model.ts'
import type { FieldMeta } from '../src/models/meta.ts'
import { useFixture } from './helpers/fixture.ts'
import { settled } from './helpers/gateway.ts'

const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const chromiumMissing = !existsSync(executablePath)
const inCi = !!process.env.CI && !['false', '0'].includes(process.env.CI)
const howToInstall = `install Debian's chromium (\`apt-get install -y --no-install-recommends chromium\`) or set CHROMIUM_PATH to a Chromium or Chrome binary`
if (chromiumMissing && !inCi)
  console.warn(
    `\n[mizzen tests] Chromium is missing at ${executablePath}: the browser demo tests are skipped. To run them, ${howToInstall}.\n`,
  )

describe('demo files', () => {
  const env = useFixture()
  const demoUrl = (path = '') => new URL(`/demo${path}`, env.gateway.url).href

  it('should serve the page with its configuration inlined', async () => {
    const response = await fetch(demoUrl())
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8')
    const html = await response.text()
    expect(html).toContain('<script type="module" src="/demo/app.js"></script>')
    expect(html).toContain('{"graphqlPath":"/graphql","posts":true}')
    // Nothing from another origin: no CDN.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//)
  })

  it.each([
    ['/app.js', 'text/javascript; charset=utf-8'],
    ['/client.js', 'text/javascript; charset=utf-8'],
    ['/demo.css', 'text/css; charset=utf-8'],
  ])('should serve %s as %s', async (path, type) => {
    const response = await fetch(demoUrl(path))
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe(type)
    expect(response.headers.get('cache-control')).toBe('no-cache')
    expect((await response.text()).length).toBeGreaterThan(100)
  })

  it('should answer 404 for any other file and 405 for other methods', async () => {
    expect((await fetch(demoUrl('/index.ts'))).status).toBe(404)
    expect((await fetch(demoUrl('/%2e%2e/index.ts'))).status).toBe(404)
    expect((await fetch(demoUrl('/assets/app.js'))).status).toBe(404)
    expect((await fetch(demoUrl(), { method: 'POST' })).status).toBe(405)
  })

  it('should show the chat only for a data model without the example’s Post', () => {
    const field = (name: string, type: string, extra: Partial<FieldMeta> = {}): FieldMeta => ({
      name,
      kind: 'scalar',
      type,
      isList: false,
      isRequired: true,
      isId: false,
      isUnique: false,
      hasDefault: false,
      isUpdatedAt: false,
      ...extra,
    })
    const model = (name: string, fields: FieldMeta[]) => ({
      name,
      idField: 'id',
      fields: [field('id', 'Int', { isId: true }), ...fields],
    })
    const config = (models: ReturnType<typeof model>[]) =>
      demoConfig(linkDataModel({ models, enums: [] }), '/graphql').posts
    expect(config([model('Message', [field('text', 'String')])])).toBe(false)
    expect(config([model('Post', [field('title', 'String')])])).toBe(false)
    expect(config([model('Post', [field('title', 'String'), field('published', 'Boolean')])])).toBe(true)
  })
})

describe.skipIf(chromiumMissing && !inCi)('browser demo (headless Chromium)', { timeout: 60_000 }, () => {
  // A short leave grace, so that a page closed leaves the others' member lists soon.
  const env = useFixture({ backend: true, gateway: { rooms: { presence: { leaveGraceMs: 300 } } } })
  let browser: Browser
  /** Uncaught errors and console errors of every page. */
  const pageErrors: string[] = []

  beforeAll(async () => {
    if (chromiumMissing)
      throw new Error(
        `[mizzen tests] Chromium is missing at ${executablePath}; CI=true runs every suite: ${howToInstall}.`,
      )
    // As root (CI, containers) Chromium runs only without its sandbox.
    const args = process.getuid?.() === 0 ? ['--no-sandbox', '--disable-dev-shm-usage'] : ['--disable-dev-shm-usage']
    browser = await chromium.launch({ executablePath, headless: true, args })
  })
  beforeEach(() => {
    pageErrors.length = 0
  })
  afterAll(async () => {
    await browser?.close()
  })

  /** A fresh browser context (its own storage) on /demo, connected; closed after the test. */
  async function open(query: string): Promise<Page> {
    const context = await browser.newContext()
    env.defer(() => context.close().catch(() => {}))
    const page = await context.newPage()
    page.on('pageerror', (error) => pageErrors.push(`${query}: ${error.message}`))
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(`${query}: ${message.text()}`)
    })
    await page.goto(new URL(`/demo?${query}`, env.gateway.url).href)
    await page.locator('#status[data-state="open"]').waitFor()
    return page
  }
  const connectionIdOf = async (page: Page) => (await page.locator('#connection-id').textContent())!
  const membersOf = (page: Page) =>
    page.locator('#members li').evaluateAll((items) => items.map((item) => item.getAttribute('data-id')).sort())

  it('should deliver a message sent on one page to another page in the same room, which lists both as members', async () => {
    const ann = await open('room=harbour&name=Ann')
    const bob = await open('room=harbour&name=Bob')
    const ids = [await connectionIdOf(ann), await connectionIdOf(bob)].sort()
    expect(ids[0]).toMatch(/^[0-9a-f-]{36}$/)
    await expect.poll(() => membersOf(bob), { timeout: 10_000 }).toEqual(ids)
    await expect.poll(() => membersOf(ann), { timeout: 10_000 }).toEqual(ids)

    await ann.locator('#message').fill('Ahoy from Ann')
    await ann.locator('#send').click()
    const received = bob.locator('#messages li', { hasText: 'Ahoy from Ann' })
    await received.waitFor()
    expect(await received.locator('.from').textContent()).toBe('Ann')
    // The sender is in the room too, and names travel with the messages.
    await ann.locator('#messages li', { hasText: 'Ahoy from Ann' }).waitFor()
    await bob.locator('#members li', { hasText: 'Ann' }).waitFor()
    expect(pageErrors).toEqual([])
  })

  it('should show who is in the room from presence: a second page appears, then disappears once closed', async () => {
    const eve = await open('room=quay&name=Eve')
    const requests: string[] = []
    eve.on('request', (request) => requests.push(`${request.method()} ${request.url()}`))
    await eve.locator('#members li', { hasText: 'Eve (you)' }).waitFor()
    const fred = await open('room=quay&name=Fred')
    const fredId = await connectionIdOf(fred)
    await eve.locator(`#members li[data-id="${fredId}"]`, { hasText: 'Fred' }).waitFor()
    await eve.locator('#messages li.system', { hasText: 'Fred joined' }).waitFor()
    expect(await membersOf(eve)).toEqual([await connectionIdOf(eve), fredId].sort())

    await fred.context().close()
    await eve.locator(`#members li[data-id="${fredId}"]`).waitFor({ state: 'detached' })
    await eve.locator('#messages li.system', { hasText: 'Fred left' }).waitFor()
    expect(await membersOf(eve)).toEqual([await connectionIdOf(eve)])
    // No polling: the page asked the gateway nothing over HTTP for its members.
    expect(requests).toEqual([])
    expect(pageErrors).toEqual([])
  })

  it('should show a post created by a script, and take it off the list when an update leaves the filter', async () => {
    const page = await open('room=posts&name=Cy')
    // The room, messages and postEvents subscriptions are in place before the script writes.
    await settled(() => expect(env.gateway.hub.subscriberCount).toBe(3))
    const db = env.backend.prisma
    const author = await db.user.create({ data: { email: 'cy@example.com', name: 'Cy' } })

    const post = await db.post.create({ data: { title: 'Written by a script', published: true, authorId: author.id } })
    await page.locator(`#post-list li[data-id="${post.id}"]`, { hasText: 'Written by a script' }).waitFor()

    // Published only (the default filter): a draft stays out; a post unpublished leaves.
    const draft = await db.post.create({ data: { title: 'A draft', published: false, authorId: author.id } })
    await db.post.update({ where: { id: post.id }, data: { published: false } })
    await page.locator(`#post-list li[data-id="${post.id}"]`).waitFor({ state: 'detached' })
    expect(await page.locator(`#post-list li[data-id="${draft.id}"]`).count()).toBe(0)

    // A draft published enters; a change of title shows; a delete removes it.
    await db.post.update({ where: { id: draft.id }, data: { published: true } })
    await page.locator(`#post-list li[data-id="${draft.id}"]`, { hasText: 'A draft' }).waitFor()
    await db.post.update({ where: { id: draft.id }, data: { title: 'No longer a draft' } })
    await page.locator(`#post-list li[data-id="${draft.id}"]`, { hasText: 'No longer a draft' }).waitFor()

    // A page opened now loads the list with its query.
    const later = await open('room=posts&name=Di')
    await later.locator(`#post-list li[data-id="${draft.id}"]`, { hasText: 'No longer a draft' }).waitFor()
    expect(await later.locator('#post-list li').count()).toBe(1)

    await db.post.delete({ where: { id: draft.id } })
    await page.locator(`#post-list li[data-id="${draft.id}"]`).waitFor({ state: 'detached' })
    await later.locator(`#post-list li[data-id="${draft.id}"]`).waitFor({ state: 'detached' })
    expect(pageErrors).toEqual([])
  })
})
