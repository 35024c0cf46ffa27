import { PluginError } from '@corral/types'
import type { Redis } from 'ioredis'
import { createMemoryRateLimiter, type RateLimiter } from '../rate-limit/rate-limiter.js'
import { createRedisRateLimiter } from '../rate-limit/redis-rate-limiter.js'
import type { CacheStore } from './cache-store.js'
import { createLocalEventBus, type EventBus } from './event-bus.js'
import { createMemoryCache } from './memory-cache.js'
import { createPostgresDatabase } from './postgres-database.js'
import { createRedisCache } from './redis-cache.js'
import { createRedisEventBus } from './redis-event-bus.js'
import type { SqlDatabase } from './sql-database.js'
import { createSqliteDatabase } from './sqlite-database.js'

/** Everything the host API and the manager keep state in. */
export interface Backends {
  /** Which set this is: `embedded` (SQLite, memory, in-process) or `distributed` (PostgreSQL and/or Redis). */
  readonly kind: 'embedded' | 'distributed'
  /** Plugin data, policies, audit log and outbox. */
  readonly database: SqlDatabase
  readonly cache: CacheStore
  readonly rateLimiter: RateLimiter
  readonly events: EventBus
  /** Closes every connection this set opened. */
  close(): Promise<void>
}

/**
 * Options of {@link createBackends}. Nothing is read from the environment: a host that keeps its URLs
 * in `DATABASE_URL`/`REDIS_URL` passes them (a library that read them on its own would switch backends
 * behind the back of a host that sets them for something else).
 */
export interface BackendsOptions {
  /** `postgres://…`: PostgreSQL for data and policies. Unset or empty: SQLite. */
  databaseUrl?: string
  /** `redis://…`: Redis for the cache, shared rate limits and event fan-out. Unset or empty: in process. */
  redisUrl?: string
  /** The SQLite file when no `databaseUrl` is set. Default `:memory:`. */
  sqlitePath?: string
  /** Epoch milliseconds, for TTLs and rate-limit windows. Default `Date.now`. */
  now?: () => number
}

async function connectRedis(url: string): Promise<{ client: Redis; subscriber: Redis }> {
  let RedisClient: typeof import('ioredis').Redis
  try {
    RedisClient = (await import('ioredis')).Redis
  } catch (error) {
    throw new PluginError('unavailable', 'a Redis URL is given but the "ioredis" package is not installed', {
      cause: error,
    })
  }
  const open = async () => {
    const redis = new RedisClient(url, { lazyConnect: true, maxRetriesPerRequest: 2 })
    // Connection errors surface on the commands that fail; an unhandled 'error' event must not crash the host.
    redis.on('error', () => {})
    try {
      await redis.connect()
    } catch (error) {
      redis.disconnect()
      throw new PluginError('unavailable', `cannot reach Redis: ${(error as Error).message}`, {
        cause: error,
      })
    }
    return redis
  }
  const client = await open()
  try {
    return { client, subscriber: await open() }
  } catch (error) {
    client.disconnect()
    throw error
  }
}

/**
 * Chooses and opens the backends from configuration: embedded by default (SQLite, an in-memory
 * cache and rate limiter, an in-process event bus — nothing to install), PostgreSQL when
 * `databaseUrl` is given, Redis when `redisUrl` is given. `pg` and `ioredis` are loaded only then.
 *
 * @example
 * const backends = await createBackends()                                  // embedded
 * const shared = await createBackends({                                     // distributed
 *   databaseUrl: process.env.DATABASE_URL,
 *   redisUrl: process.env.REDIS_URL,
 * })
 */
export async function createBackends(options: BackendsOptions = {}): Promise<Backends> {
  const now = options.now ?? Date.now
  const { databaseUrl, redisUrl } = options
  const database =
    databaseUrl === undefined || databaseUrl === ''
      ? createSqliteDatabase({ path: options.sqlitePath ?? ':memory:' })
      : await createPostgresDatabase({ url: databaseUrl })
  if (redisUrl === undefined || redisUrl === '') {
    const cache = createMemoryCache({ now })
    const rateLimiter = createMemoryRateLimiter({ now })
    const events = createLocalEventBus()
    return {
      kind: database.dialect === 'sqlite' ? 'embedded' : 'distributed',
      database,
      cache,
      rateLimiter,
      events,
      async close() {
        await Promise.all([cache.close(), rateLimiter.close(), events.close()])
        await database.close()
      },
    }
  }
  let redis: { client: Redis; subscriber: Redis }
  try {
    redis = await connectRedis(redisUrl)
  } catch (error) {
    await database.close()
    throw error
  }
  const events = await createRedisEventBus(redis.client, redis.subscriber)
  return {
    kind: 'distributed',
    database,
    cache: createRedisCache(redis.client),
    rateLimiter: createRedisRateLimiter(redis.client, now),
    events,
    async close() {
      await events.close()
      redis.subscriber.disconnect()
      await redis.client.quit()
      await database.close()
    },
  }
}
