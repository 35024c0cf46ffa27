import { randomUUID } from 'node:crypto'
import type { HostCallContext, LogLevel } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Backends } from '../backends/create-backends.js'
import type { HostEvent } from '../backends/event-bus.js'
import { createOutboxMailer } from '../backends/outbox-mailer.js'
import {
  type BackendSetConfig,
  backendSetKinds,
  createTestClock,
  openBackendSet,
  prepareBackendSet,
} from '../testing/backend-sets.js'
import { createTestHost, expectRefused, type TestHost, type TestPlugin } from '../testing/host-fixture.js'
import type { PluginCaller } from './sandbox-dependencies.js'

const b64 = (text: string) => Buffer.from(text).toString('base64')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Plugins as the test's tiny "manager" runs them: each function gets its arguments and its own
 * sandboxed host API, bound to the context the host gave the call (chain, deadline, token).
 */
type TestFunction = (
  args: unknown,
  host: (method: string, args: unknown) => Promise<unknown>,
  context: HostCallContext,
) => Promise<unknown>

const plugins: TestPlugin[] = [
  {
    name: 'stats',
    permissions: [
      { type: 'cache', access: ['read', 'write'], scope: ['*'] },
      { type: 'email', access: [], scope: ['example.com'] },
      { type: 'config', access: [], scope: ['smtp*', 'feature.*'] },
      { type: 'events', access: [], scope: ['stats.*'] },
      { type: 'plugin_call', access: [], scope: ['helper'] },
    ],
    secretConfigKeys: ['smtp.password', 'smtps.*.password', 'smtps.1.*'],
  },
  { name: 'reader', permissions: [{ type: 'cache', access: ['read'], scope: ['public.*'] }] },
  { name: 'peer', permissions: [{ type: 'cache', access: ['read', 'write'], scope: ['*'] }] },
  { name: 'helper', permissions: [{ type: 'plugin_call', access: [], scope: ['stats', 'chain-*'] }] },
  { name: 'chain-a', permissions: [{ type: 'plugin_call', access: [], scope: ['chain-*'] }] },
  { name: 'chain-b', permissions: [{ type: 'plugin_call', access: [], scope: ['chain-*'] }] },
  { name: 'chain-c', permissions: [{ type: 'plugin_call', access: [], scope: ['chain-*'] }] },
  { name: 'chain-d', permissions: [{ type: 'plugin_call', access: [], scope: ['chain-*'] }] },
  { name: 'nothing', permissions: [] },
  { name: 'busy', permissions: [], rateLimits: { calls_per_second: 5 } },
  {
    name: 'dbuser',
    permissions: [{ type: 'db', access: ['read'], scope: ['dbuser_*'] }],
    rateLimits: { db_queries_per_minute: 3 },
  },
  { name: 'shared', permissions: [], rateLimits: { calls_per_second: 4 } },
  { name: 'flip', permissions: [{ type: 'cache', access: ['read', 'write'], scope: ['*'] }] },
]

describe.each(backendSetKinds)('the sandboxed host API on the %s backends', (kind) => {
  const clock = createTestClock()
  let config: BackendSetConfig
  let backends: Backends
  let host: TestHost
  const logLines: { level: LogLevel; message: string; fields: Record<string, unknown> }[] = []
  const calls: { target: string; fn: string; chain: string[]; deadline: number; token?: string }[] = []
  const functions: Record<string, TestFunction> = {
    'helper.ping': async () => 'pong',
    'helper.back': async (_args, call) => call('plugin.call', { plugin: 'stats', fn: 'echo' }),
    'helper.slow': async () => {
      await sleep(2_000)
      return 'late'
    },
    'stats.echo': async (args) => ({ echoed: args }),
    'stats.callHelper': async (args, call) => call('plugin.call', { plugin: 'helper', fn: String(args) }),
    'chain-a.next': async (args, call) => call('plugin.call', { plugin: 'chain-b', fn: 'next', args }),
    'chain-b.next': async (args, call) => call('plugin.call', { plugin: 'chain-c', fn: 'next', args }),
    'chain-c.next': async (args, call) => call('plugin.call', { plugin: 'chain-d', fn: 'next', args }),
    'chain-d.next': async () => 'bottom',
    'chain-b.loop': async (_args, call) => call('plugin.call', { plugin: 'chain-a', fn: 'next' }),
  }

  beforeAll(async () => {
    config = await prepareBackendSet(kind, 'host')
    backends = await openBackendSet(config, clock.now)
    // plugin.call goes back through the sandbox: the target's host calls carry the chain.
    const callPlugin: PluginCaller = async (target, fn, args, options) => {
      calls.push({
        target,
        fn,
        chain: options.chain,
        deadline: options.deadline,
        ...(options.token ? { token: options.token } : {}),
      })
      const body = functions[`${target}.${fn}`]
      if (body === undefined) throw new Error(`no ${target}.${fn}`)
      const context: HostCallContext = {
        plugin: target,
        chain: options.chain,
        deadline: options.deadline,
        token: randomUUID(),
      }
      return body(args, (method, a) => host.hostApi.forPlugin(target)(method, a, context), context)
    }
    host = await createTestHost(backends, plugins, {
      now: clock.now,
      callPlugin,
      limits: { maxCallDepth: 3, logLinesPerSecond: 3 },
      config: (plugin) =>
        plugin === 'stats'
          ? {
              smtp: { host: 'mail.example.com', password: 'hunter2' },
              smtps: [{ host: 'a.example.com', password: 'hunter3' }, [{ password: 'hunter4' }]],
              feature: { beta: true },
              other: 1,
            }
          : undefined,
      translate: ({ key, args, language }) =>
        key === 'greeting' ? `${language === 'de' ? 'Hallo' : 'Hello'}, ${String(args[0])}` : undefined,
      logger: { log: (level, message, fields) => logLines.push({ level, message, fields: fields ?? {} }) },
    })
  })
  afterAll(async () => {
    await backends?.close()
  })

  describe('cache', () => {
    it('stores, reads and deletes base64 values', async () => {
      await host.call('stats', 'cache.set', { key: 'today', value: b64('42') })
      expect(await host.call('stats', 'cache.get', { key: 'today' })).toEqual({ value: b64('42') })
      expect(await host.call('stats', 'cache.delete', { key: 'today' })).toEqual({ deleted: true })
      expect(await host.call('stats', 'cache.get', { key: 'today' })).toEqual({ value: null })
    })

    it('expires a value after its TTL', async () => {
      await host.call('stats', 'cache.set', { key: 'short', value: b64('x'), ttl_seconds: 0.2 })
      expect(await host.call('stats', 'cache.get', { key: 'short' })).toEqual({ value: b64('x') })
      await sleep(400)
      expect(await host.call('stats', 'cache.get', { key: 'short' })).toEqual({ value: null })
    })

    it('keeps each plugin in its own namespace, whatever the key spells', async () => {
      await host.call('stats', 'cache.set', { key: 'public.news', value: b64('from stats') })
      expect(await host.call('reader', 'cache.get', { key: 'public.news' })).toEqual({ value: null })
      // `peer` may use any key of its own namespace: none of these spells one of `stats`.
      for (const key of [
        'public.news',
        'stats:public.news',
        ':stats:public.news',
        '../stats/public.news',
        'public.news\u0000stats',
      ]) {
        expect(await host.call('peer', 'cache.get', { key })).toEqual({ value: null })
        expect(await host.call('peer', 'cache.delete', { key })).toEqual({ deleted: false })
      }
      expect(await host.call('stats', 'cache.get', { key: 'public.news' })).toEqual({
        value: b64('from stats'),
      })
    })

    it.each([
      ['a read of a key outside the scope', 'reader', 'cache.get', { key: 'private.x' }, 'permission_denied'],
      [
        'a write with a read-only grant',
        'reader',
        'cache.set',
        { key: 'public.x', value: b64('x') },
        'permission_denied',
      ],
      ['a delete with a read-only grant', 'reader', 'cache.delete', { key: 'public.x' }, 'permission_denied'],
      ['a plugin without a cache grant', 'nothing', 'cache.get', { key: 'x' }, 'permission_denied'],
      [
        'a value that is not base64',
        'stats',
        'cache.set',
        { key: 'x', value: 'not base64!' },
        'invalid_argument',
      ],
      [
        'a negative TTL',
        'stats',
        'cache.set',
        { key: 'x', value: b64('x'), ttl_seconds: -1 },
        'invalid_argument',
      ],
      ['an empty key', 'stats', 'cache.get', { key: '' }, 'invalid_argument'],
    ])('refuses %s', async (_name, plugin, method, args, code) => {
      await expectRefused(host.call(plugin, method, args), code)
    })
  })

  describe('email.send', () => {
    it('delivers to a granted domain through the outbox, from the host-chosen sender', async () => {
      const result = (await host.call('stats', 'email.send', {
        to: ['Ops@Example.com'],
        subject: 'Daily stats',
        body: '42 hits',
        html: '<b>42</b> hits',
      })) as { message_id: string }
      const [sent] = await createOutboxMailer(backends.database).list({ plugin: 'stats', limit: 1 })
      expect(sent).toMatchObject({
        messageId: result.message_id,
        from: 'stats@corral.localhost',
        to: ['Ops@Example.com'],
        subject: 'Daily stats',
        text: '42 hits',
        html: '<b>42</b> hits',
      })
    })

    it.each([
      ['a domain outside the grant', ['a@evil.com'], 'permission_denied'],
      ['a granted domain as a prefix', ['a@example.com.evil.com'], 'permission_denied'],
      ['a subdomain of a granted domain', ['a@mail.example.com'], 'permission_denied'],
      ['one bad recipient among good ones', ['a@example.com', 'b@evil.com'], 'permission_denied'],
      ['a display name hiding another address', ['"a@example.com" <b@evil.com>'], 'invalid_argument'],
      ['two addresses in one entry', ['a@example.com, b@evil.com'], 'invalid_argument'],
      ['a group', ['friends: b@evil.com;'], 'invalid_argument'],
      ['no recipient', [], 'invalid_argument'],
    ])('refuses %s', async (_name, to, code) => {
      await expectRefused(host.call('stats', 'email.send', { to, subject: 'x', body: 'x' }), code)
    })

    it('refuses a subject that would inject headers', async () => {
      await expectRefused(
        host.call('stats', 'email.send', {
          to: ['a@example.com'],
          subject: 'x\r\nBcc: b@evil.com',
          body: 'x',
        }),
        'invalid_argument',
      )
    })
  })

  describe('config.get', () => {
    it('returns a granted key', async () => {
      expect(await host.call('stats', 'config.get', { key: 'smtp.host' })).toEqual({
        value: 'mail.example.com',
      })
      expect(await host.call('stats', 'config.get', { key: 'feature.beta' })).toEqual({ value: true })
    })

    it('never returns a secret, also not inside its parent', async () => {
      await expectRefused(host.call('stats', 'config.get', { key: 'smtp.password' }), 'permission_denied')
      expect(await host.call('stats', 'config.get', { key: 'smtp' })).toEqual({
        value: { host: 'mail.example.com' },
      })
      // In a list, an item is named by its index; a secret item is left as null.
      expect(await host.call('stats', 'config.get', { key: 'smtps' })).toEqual({
        value: [{ host: 'a.example.com' }, [null]],
      })
    })

    it.each([
      ['a key outside the grant', 'other', 'permission_denied'],
      ['a prototype key', '__proto__', 'permission_denied'],
      ['a glob as a key', 'smtp.*', 'invalid_argument'],
    ])('refuses %s', async (_name, key, code) => {
      await expectRefused(host.call('stats', 'config.get', { key }), code)
    })

    it('reads null for a granted key that is not set', async () => {
      expect(await host.call('stats', 'config.get', { key: 'feature.missing' })).toEqual({ value: null })
      expect(await host.call('stats', 'config.get', { key: 'smtp.constructor' })).toEqual({ value: null })
    })
  })

  describe('i18n.translate and log', () => {
    it('translates through the host, and returns the key when there is no translation', async () => {
      expect(
        await host.call('nothing', 'i18n.translate', { key: 'greeting', args: ['Ada'], language: 'de' }),
      ).toEqual({
        text: 'Hallo, Ada',
      })
      expect(await host.call('nothing', 'i18n.translate', { key: 'unknown.key' })).toEqual({
        text: 'unknown.key',
      })
    })

    it('logs attributed to the plugin and the causing call, which the plugin cannot override', async () => {
      await host.call(
        'nothing',
        'log',
        { level: 'warn', message: 'disk low', fields: { free: 3, plugin: 'someone-else', token: 'forged' } },
        { token: 'call-7' },
      )
      expect(logLines.at(-1)).toEqual({
        level: 'warn',
        message: 'disk low',
        fields: { free: 3, plugin: 'nothing', token: 'call-7', dropped_fields: 2 },
      })
    })

    it('drops the fields a plugin may not set even without a causing call, and caps the rest', async () => {
      await host.call(
        'nothing',
        'log',
        {
          level: 'info',
          message: 'forged',
          fields: {
            token: 'forged',
            level: 'error',
            message: 'x',
            plugin: 'admin',
            huge: 'x'.repeat(1 << 20),
            ok: 1,
          },
        },
        { token: undefined },
      )
      expect(logLines.at(-1)).toEqual({
        level: 'info',
        message: 'forged',
        fields: { ok: 1, plugin: 'nothing', dropped_fields: 5 },
      })
    })

    it('caps log lines per second', async () => {
      clock.freeze()
      try {
        const results = await Promise.allSettled(
          Array.from({ length: 5 }, () => host.call('stats', 'log', { level: 'info', message: 'flood' })),
        )
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3)
        expect(
          results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code),
        ).toEqual(['rate_limited', 'rate_limited'])
        // A flood is audited once per second and method, not once per refused call.
        expect(
          await host.hostApi.audit.list({ plugin: 'stats', method: 'log', code: 'rate_limited' }),
        ).toHaveLength(1)
      } finally {
        clock.unfreeze()
      }
    })
  })

  describe('plugin.call', () => {
    it('calls a granted plugin with the caller in the chain and the outer deadline', async () => {
      const deadline = Date.now() + 10_000
      expect(
        await host.call(
          'stats',
          'plugin.call',
          { plugin: 'helper', fn: 'ping' },
          { deadline, token: 'outer' },
        ),
      ).toBe('pong')
      expect(calls.at(-1)).toEqual({
        target: 'helper',
        fn: 'ping',
        chain: ['stats'],
        deadline,
        token: 'outer',
      })
    })

    it('refuses a plugin outside the grant', async () => {
      await expectRefused(
        host.call('stats', 'plugin.call', { plugin: 'chain-a', fn: 'next' }),
        'permission_denied',
      )
    })

    it('refuses a cycle through a real chain (stats -> helper -> stats)', async () => {
      // helper.back calls stats, which is already in the chain.
      await expect(host.call('stats', 'plugin.call', { plugin: 'helper', fn: 'back' })).rejects.toMatchObject(
        {
          code: 'permission_denied',
          message: expect.stringContaining('stats -> helper -> stats'),
        },
      )
    })

    it('refuses a plugin calling itself', async () => {
      await expectRefused(
        host.call('chain-a', 'plugin.call', { plugin: 'chain-a', fn: 'next' }),
        'permission_denied',
      )
    })

    it('refuses a longer cycle (chain-a -> chain-b -> chain-a)', async () => {
      await expectRefused(
        host.call('chain-a', 'plugin.call', { plugin: 'chain-b', fn: 'loop' }),
        'permission_denied',
      )
    })

    it('bounds the depth of a chain', async () => {
      // chain-a -> chain-b -> chain-c -> chain-d would be 4 deep; the limit is 3.
      await expect(
        host.call('chain-a', 'plugin.call', { plugin: 'chain-b', fn: 'next' }),
      ).rejects.toMatchObject({
        code: 'resource_exhausted',
        message: expect.stringContaining('chain-a -> chain-b -> chain-c -> chain-d'),
      })
      expect(await host.call('chain-b', 'plugin.call', { plugin: 'chain-c', fn: 'next' })).toBe('bottom')
    })

    it('does not outlive the outer call', async () => {
      await expectRefused(
        host.call('stats', 'plugin.call', { plugin: 'helper', fn: 'slow' }, { deadline: Date.now() + 200 }),
        'deadline_exceeded',
      )
    })

    it('audits a refused call with the chain that led to it', async () => {
      await expectRefused(
        host.call('stats', 'plugin.call', { plugin: 'helper', fn: 'back' }),
        'permission_denied',
      )
      const [entry] = await host.hostApi.audit.list({ plugin: 'helper', method: 'plugin.call', limit: 1 })
      expect(entry).toMatchObject({ code: 'permission_denied', chain: ['stats'], detail: 'stats.echo' })
    })
  })

  describe('events.publish', () => {
    it('fans a granted event out with its publisher and token', async () => {
      const received: HostEvent[] = []
      const stop = backends.events.subscribe((event) => {
        if (event.plugin === 'stats') received.push(event)
      })
      try {
        await host.call(
          'stats',
          'events.publish',
          { type: 'stats.updated', data: { hits: 5 } },
          { token: 'call-9' },
        )
        await vi_waitFor(() => received.length > 0)
        expect(received[0]).toMatchObject({
          type: 'stats.updated',
          data: { hits: 5 },
          plugin: 'stats',
          token: 'call-9',
        })
      } finally {
        stop()
      }
    })

    it.each([
      ['a type outside the grant', { type: 'ticket.created' }, 'permission_denied'],
      ['a malformed type', { type: 'stats updated!' }, 'invalid_argument'],
      ['oversized data', { type: 'stats.big', data: 'x'.repeat(70_000) }, 'resource_exhausted'],
    ])('refuses %s', async (_name, args, code) => {
      await expectRefused(host.call('stats', 'events.publish', args), code)
    })
  })

  describe('rate limits, deadlines, identity, audit and metrics', () => {
    it('refuses calls past calls_per_second with a retry-after inside the window', async () => {
      clock.freeze(Math.floor(Date.now() / 1000) * 1000 + 250)
      try {
        for (let i = 0; i < 5; i++) await host.call('busy', 'i18n.translate', { key: 'k' })
        const refusal = await host.call('busy', 'i18n.translate', { key: 'k' }).catch((e: unknown) => e)
        expect(refusal).toMatchObject({ code: 'rate_limited', retryAfterMs: 750 })
      } finally {
        clock.unfreeze()
      }
    })

    it('refuses DB queries past db_queries_per_minute', async () => {
      clock.freeze()
      try {
        await backends.database.exec('CREATE TABLE dbuser_items (id INTEGER)', [])
        for (let i = 0; i < 3; i++)
          await host.call('dbuser', 'db.query', { sql: 'SELECT id FROM dbuser_items' })
        await expectRefused(
          host.call('dbuser', 'db.query', { sql: 'SELECT id FROM dbuser_items' }),
          'rate_limited',
        )
      } finally {
        clock.unfreeze()
      }
    })

    it('shares rate limits between two host replicas on the same backends', async () => {
      // Embedded: two host APIs in one process share its backends. Distributed: a second
      // replica with its own connections to the same PostgreSQL and Redis.
      const second = kind === 'embedded' ? backends : await openBackendSet(config, clock.now)
      try {
        const replica = await createTestHost(second, plugins, { now: clock.now })
        clock.freeze(Math.floor(Date.now() / 1000) * 1000 + 100)
        await host.call('shared', 'i18n.translate', { key: 'k' })
        await host.call('shared', 'i18n.translate', { key: 'k' })
        await replica.call('shared', 'i18n.translate', { key: 'k' })
        await replica.call('shared', 'i18n.translate', { key: 'k' })
        await expectRefused(replica.call('shared', 'i18n.translate', { key: 'k' }), 'rate_limited')
        await expectRefused(host.call('shared', 'i18n.translate', { key: 'k' }), 'rate_limited')
        // The other replica's cache and event bus are the same too.
        await host.call('stats', 'cache.set', { key: 'replicated', value: b64('yes') })
        expect(await replica.call('stats', 'cache.get', { key: 'replicated' })).toEqual({ value: b64('yes') })
        const seen: HostEvent[] = []
        const stop = second.events.subscribe((e) => {
          if (e.type === 'stats.replicated') seen.push(e)
        })
        await host.call('stats', 'events.publish', { type: 'stats.replicated' })
        await vi_waitFor(() => seen.length > 0)
        stop()
        expect(seen).toHaveLength(1)
      } finally {
        clock.unfreeze()
        if (second !== backends) await second.close()
      }
    })

    it('refuses a call whose causing call is already past its deadline', async () => {
      await expectRefused(
        host.call('nothing', 'i18n.translate', { key: 'k' }, { deadline: Date.now() - 1 }),
        'deadline_exceeded',
      )
    })

    it('binds the plugin identity: a context naming another plugin does not lend its grant', async () => {
      await expectRefused(
        host.hostApi.forPlugin('nothing')('cache.get', { key: 'x' }, { plugin: 'stats' }),
        'permission_denied',
      )
      // A name is a namespace and a rate-limit key: only real plugin names get a handler.
      expect(() => host.hostApi.forPlugin('stats:evil')).toThrow(
        expect.objectContaining({ code: 'invalid_argument' }),
      )
    })

    it('applies a policy change to the next call, and refuses everything once blocked', async () => {
      await host.call('flip', 'cache.set', { key: 'k', value: b64('v') })
      await host.policies.put({
        plugin: 'flip',
        status: 'restricted',
        grants: [{ type: 'cache', access: ['read'], scope: ['*'] }],
      })
      expect(await host.call('flip', 'cache.get', { key: 'k' })).toEqual({ value: b64('v') })
      await expectRefused(host.call('flip', 'cache.set', { key: 'k', value: b64('w') }), 'permission_denied')
      await host.policies.put({ plugin: 'flip', status: 'blocked', grants: [] })
      await expectRefused(host.call('flip', 'i18n.translate', { key: 'k' }), 'permission_denied')
      await host.policies.put({ plugin: 'flip', status: 'pending_review', grants: [] })
      await expectRefused(host.call('flip', 'cache.get', { key: 'k' }), 'permission_denied')
      expect(await host.call('flip', 'i18n.translate', { key: 'still.allowed' })).toEqual({
        text: 'still.allowed',
      })
    })

    it('refuses an unknown method and arguments of the wrong shape', async () => {
      await expectRefused(host.call('stats', 'fs.read', { path: '/etc/passwd' }), 'unimplemented')
      await expectRefused(host.call('stats', 'cache.get', { key: 'x', extra: true }), 'invalid_argument')
      await expectRefused(host.call('stats', 'cache.get', 'x'), 'invalid_argument')
    })

    it('counts calls and failures per plugin and method', async () => {
      await host.call('reader', 'cache.get', { key: 'public.count' })
      await expectRefused(host.call('reader', 'cache.get', { key: 'secret' }), 'permission_denied')
      const metrics = host.hostApi.metrics('reader').reader?.['cache.get']
      expect(metrics?.calls).toBeGreaterThanOrEqual(2)
      expect(metrics?.failures.permission_denied).toBeGreaterThanOrEqual(1)
      expect(Object.keys(host.hostApi.metrics('reader'))).toEqual(['reader'])
    })

    it('keeps refusals in the audit log, queryable by plugin and code', async () => {
      await expectRefused(
        host.call('nothing', 'cache.get', { key: 'audited' }, { token: 'tok-audit' }),
        'permission_denied',
      )
      const entries = await host.hostApi.audit.list({ plugin: 'nothing', code: 'permission_denied' })
      expect(entries[0]).toMatchObject({
        plugin: 'nothing',
        method: 'cache.get',
        token: 'tok-audit',
        detail: 'audited',
      })
      expect(entries[0]?.at).toBeGreaterThan(0)
    })
  })
})

/** Waits for a condition that another connection (Redis pub/sub) makes true. */
async function vi_waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await sleep(10)
  }
}
