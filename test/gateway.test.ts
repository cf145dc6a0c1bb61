import { beforeAll, describe, expect, it } from 'vitest'
import { connectWs, executeWs, postGraphQL } from './helpers/clients.ts'
import { eachDatabase, useFixture } from './helpers/fixture.ts'
import type { TestGateway } from './helpers/gateway.ts'

eachDatabase('gateway on $provider', (database) => {
  const env = useFixture({ database })
  let gateway: TestGateway
  beforeAll(() => {
    gateway = env.gateway
  })

  describe('probes', () => {
    it('should answer /health with 200', async () => {
      const response = await fetch(new URL('/health', gateway.url))
      expect(response.status).toBe(200)
      expect(await response.json()).toEqual({ status: 'ok' })
    })

    it('should answer /ready with 200 when the database answers', async () => {
      const response = await fetch(new URL('/ready', gateway.url))
      expect(response.status).toBe(200)
      expect(await response.json()).toMatchObject({ status: 'ready', checks: { database: 'ok', bus: 'ok' } })
    })
  })

  describe('HTTP', () => {
    it('should create and migrate the database, so { users { id } } returns []', async () => {
      expect(await postGraphQL(gateway.url, '{ users { id } }')).toEqual({ data: { users: [] } })
    })

    it('should serve GraphiQL to a browser in development', async () => {
      const response = await fetch(gateway.url, { headers: { accept: 'text/html' } })
      expect(response.status).toBe(200)
      expect(await response.text()).toContain('GraphiQL')
    })

    it('should answer a syntax error with a GraphQL error', async () => {
      const result = await postGraphQL(gateway.url, '{ users { id ')
      expect(result.errors?.[0]?.message).toMatch(/Syntax Error/)
    })
  })

  describe('WebSocket', () => {
    it('should carry a connectionId in connection_ack and answer queries', async () => {
      const { client, ack } = connectWs(gateway.wsUrl)
      const payload = await ack
      expect(payload?.connectionId).toMatch(/^[0-9a-f-]{36}$/)
      expect(await executeWs(client, '{ users { id } }')).toEqual({ data: { users: [] } })
      await client.dispose()
    })

    it('should give each connection its own id', async () => {
      const a = connectWs(gateway.wsUrl)
      const b = connectWs(gateway.wsUrl)
      expect((await a.ack)?.connectionId).not.toEqual((await b.ack)?.connectionId)
      await Promise.all([a.client.dispose(), b.client.dispose()])
    })

    it('should answer a syntax error with an error message and keep the connection usable', async () => {
      const { client, ack, closed } = connectWs(gateway.wsUrl)
      await ack
      await expect(executeWs(client, '{ users { id ')).rejects.toSatisfy(
        (errors: unknown) => Array.isArray(errors) && /Syntax Error/.test(errors[0].message),
      )
      await expect(executeWs(client, '{ nope }')).rejects.toSatisfy(
        (errors: unknown) => Array.isArray(errors) && /Cannot query field "nope"/.test(errors[0].message),
      )
      expect(await executeWs(client, '{ users { id } }')).toEqual({ data: { users: [] } })
      let open = true
      void closed.then(() => (open = false))
      expect(open).toBe(true)
      await client.dispose()
    })
  })
})

describe('gateway shutdown', () => {
  const env = useFixture({ gateways: 0 })
  it('should close WebSocket clients with 1001 and stop answering HTTP', async () => {
    const gateway = await env.startGateway()
    const { ack, closed, client } = connectWs(gateway.wsUrl)
    await ack
    await gateway.close()
    expect(await closed).toBe(1001)
    await expect(fetch(new URL('/health', gateway.url))).rejects.toThrow()
    await client.dispose()
  })
})
