/**
 * `node --import tsx bench/write-strategies.ts`: what writing one WebSocket frame to each of N
 * loopback sockets costs in heap allocation (repeatable on a busy machine) and CPU time (not),
 * for the ways a fan-out can hand its bytes to Node's sockets. The peer is another process that
 * discards what it reads. Why the gateway copies each frame into one buffer (src/transport/frame-writer.ts).
 */
import { fork } from 'node:child_process'
import { createConnection, createServer, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { GCProfiler, getHeapStatistics } from 'node:v8'

if (process.argv[2] === 'sink') {
  const server = createServer((socket) => socket.resume())
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as { port: number }).port))
} else {
  const sockets = Number(process.env.SOCKETS ?? 500)
  const rounds = Number(process.env.ROUNDS ?? 400)
  const sink = fork(fileURLToPath(import.meta.url), ['sink'], { execArgv: ['--import', 'tsx'] })
  const port = await new Promise<number>((resolve) => sink.once('message', (p) => resolve(p as number)))
  const all = await Promise.all(
    Array.from(
      { length: sockets },
      () =>
        new Promise<Socket>(
          (resolve) =>
            void createConnection(port, '127.0.0.1').once('connect', function (this: Socket) {
              resolve(this)
            }),
        ),
    ),
  )
  const payload = Buffer.from(
    JSON.stringify({
      data: { room: { event: 'm', data: { seq: 12345, t: 1234567890123 }, sentAt: new Date().toISOString() } },
    }),
  )
  const prefix = Buffer.from('{"id":"1","type":"next","payload":')
  const brace = Buffer.from('}')
  const length = prefix.length + payload.length + 1
  const header = Buffer.from([0x81, length])
  const corked: Socket[] = []
  const uncorkAll = () => {
    for (const socket of corked) socket.uncork()
    corked.length = 0
  }
  const copied = () => {
    const frame = Buffer.allocUnsafe(2 + length)
    header.copy(frame, 0)
    prefix.copy(frame, 2)
    payload.copy(frame, 2 + prefix.length)
    frame[frame.length - 1] = 0x7d
    return frame
  }
  const strategies: Record<string, () => void> = {
    'four slices, corked for the turn': () => {
      for (const socket of all) {
        socket.cork()
        corked.push(socket)
        socket.write(header)
        socket.write(prefix)
        socket.write(payload)
        socket.write(brace)
      }
      queueMicrotask(uncorkAll)
    },
    'one copied buffer, corked for the turn': () => {
      for (const socket of all) {
        socket.cork()
        corked.push(socket)
        socket.write(copied())
      }
      queueMicrotask(uncorkAll)
    },
    'one copied buffer, one write (mizzen)': () => {
      for (const socket of all) socket.write(copied())
    },
  }
  const profiler = new GCProfiler()
  for (let repetition = 0; repetition < 3; repetition++)
    for (const [name, write] of Object.entries(strategies)) {
      profiler.start()
      const heapBefore = getHeapStatistics().used_heap_size
      const cpuBefore = process.cpuUsage()
      for (let i = 0; i < rounds; i++) {
        write()
        await new Promise((resolve) => setImmediate(resolve))
      }
      const cpu = process.cpuUsage(cpuBefore)
      let freed = 0
      for (const gc of profiler.stop()?.statistics ?? [])
        freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize
      const frames = sockets * rounds
      const allocated = getHeapStatistics().used_heap_size - heapBefore + freed
      console.log(
        `${name.padEnd(40)} ${(allocated / frames).toFixed(0).padStart(5)} B of heap/frame  ${((cpu.user + cpu.system) / frames).toFixed(2)} µs CPU/frame`,
      )
    }
  sink.kill()
  process.exit(0)
}
