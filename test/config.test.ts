import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.ts'
import { ConfigError } from '../src/errors.ts'

describe('configuration', () => {
  it('should default to port 4000, an SQLite file and the in-memory bus', () => {
    expect(loadConfig({})).toEqual({
      port: 4000,
      host: '0.0.0.0',
      databaseUrl: 'file:./data/mizzen.db',
      redisUrl: undefined,
      logLevel: 'info',
      nodeEnv: 'development',
    })
  })

  it('should take PostgreSQL and Redis URLs', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://u@db:5432/app', REDIS_URL: 'redis://cache:6379', PORT: '8080' })
    expect(config).toMatchObject({ databaseUrl: 'postgres://u@db:5432/app', redisUrl: 'redis://cache:6379', port: 8080 })
  })

  it('should treat empty variables as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' }).port).toBe(4000)
  })

  it.each([
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL', /unsupported database "mysql"/],
    [{ PORT: 'eighty' }, 'PORT', /eighty/],
    [{ PORT: '70000' }, 'PORT', /70000/],
    [{ REDIS_URL: 'http://cache' }, 'REDIS_URL', /redis:\/\//],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /loud/],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV', /staging/],
  ])('should refuse %o naming the setting', (env, setting, message) => {
    let error: unknown
    try {
      loadConfig(env)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).setting).toBe(setting)
    expect((error as ConfigError).message).toMatch(new RegExp(`^${setting}: `))
    expect((error as ConfigError).message).toMatch(message)
  })
})
