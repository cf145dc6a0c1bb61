/** Registry instances in child processes, to kill without cleanup. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const script = fileURLToPath(new URL('./registry-process.ts', import.meta.url))

export interface RegistryProcess {
  /** Kills it with SIGKILL and resolves once it exited: nothing of it runs any more. */
  crash(): Promise<void>
}

/** Starts a process whose registry (on `redisUrl`, or `cluster:<seeds>`; on `keyPrefix`, heartbeat TTL 1 s unless told) holds `connectionId` in `room`; resolves once it does. */
export async function spawnRegistryProcess(
  redisUrl: string,
  keyPrefix: string,
  connectionId: string,
  room: string,
  heartbeatTtlMs = 1000,
): Promise<RegistryProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', script, redisUrl, keyPrefix, connectionId, room, String(heartbeatTtlMs)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const exited = once(child, 'exit')
  await new Promise<void>((resolve, reject) => {
    let output = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('ready')) resolve()
    })
    exited.then(([code]) => reject(new Error(`registry process exited with ${code} before it was ready`)), reject)
  })
  return {
    async crash() {
      child.kill('SIGKILL')
      await exited
    },
  }
}
