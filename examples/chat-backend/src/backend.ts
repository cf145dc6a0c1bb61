/**
 * A backend service posting a chat message: an ordinary Prisma write, with mizzen's realtime
 * extension installed, so every gateway on the same Redis delivers it to `messageEvents`
 * subscribers (and `channelEvents` subscribers get ADDED_TO on the channel's `messages`).
 *
 *     REDIS_URL=redis://127.0.0.1:6379 npm run backend -- general ada "Hello!"
 */
import { createRedisBus, realtime } from 'mizzen'
import { dataModel, openPrisma } from './database.js'

const [channelName = 'general', author = 'backend', text = 'Hello from the backend'] = process.argv.slice(2)
const redisUrl = process.env.REDIS_URL
if (!redisUrl) {
  console.error('backend: set REDIS_URL to the Redis the gateway uses (events travel on it)')
  process.exit(2)
}

// The gateway's prefix too (MIZZEN_REDIS_PREFIX, as `mizzen serve` reads it), when it has one.
const bus = await createRedisBus({ url: redisUrl, prefix: process.env.MIZZEN_REDIS_PREFIX ?? 'mizzen:' })
// Install the extension last (outermost): every write through `prisma` publishes once it commits.
const prisma = openPrisma().$extends(realtime({ bus, dataModel }))
try {
  const channel = await prisma.channel.upsert({
    where: { name: channelName },
    create: { name: channelName },
    update: {},
  })
  const message = await prisma.message.create({ data: { text, author, channelId: channel.id } })
  console.log(JSON.stringify({ channel: channel.name, message }))
} finally {
  await prisma.$disconnect()
  await bus.close()
}
