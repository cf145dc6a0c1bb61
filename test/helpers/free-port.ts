/** Free TCP ports: one the kernel picks, or whether a given one is free (for processes that need a port range of their own). */
import { createServer } from 'node:net'

/** A TCP port nothing listens on right now: the kernel picks one for a server bound to port 0. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** Whether nothing listens on `port` of 127.0.0.1 right now (a server can bind it). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}
