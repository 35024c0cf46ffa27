import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Plugin } from '@corral/types'
import { PluginError } from '@corral/types'
import { createWasmRunner } from '@corral/wasm-runner'
import { type TestPlugin, writeTestPlugin } from '@corral/wasm-runner/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * corral.h, compiled with clang for wasm32-wasi (as a plugin author compiles it, warnings as
 * errors) into `testing/header-probe.c`, run by the real WASM runner against a host API of the
 * test's own.
 */
const header = fileURLToPath(new URL('../c/', import.meta.url))
const probeSource = fileURLToPath(new URL('./testing/header-probe.c', import.meta.url))

interface HostLog {
  method: string
  args: Record<string, unknown>
}

const calls: HostLog[] = []
const cache = new Map<string, string>()

/** Answers every host method as the host would, and refuses the config key `secret`. */
async function host(method: string, raw: unknown): Promise<unknown> {
  const args = raw as Record<string, unknown>
  calls.push({ method, args })
  const key = args.key as string
  switch (method) {
    case 'cache.set':
      cache.set(key, args.value as string)
      return {}
    case 'cache.get':
      return { value: cache.get(key) ?? null }
    case 'cache.delete':
      return { deleted: cache.delete(key) }
    case 'db.exec':
      return { rows_affected: 1 }
    case 'db.query':
      return { rows: [{ id: 1, name: 'one' }] }
    case 'http.request':
      return { status: 201, headers: { 'content-type': 'text/plain' }, body: btoa('got hi') }
    case 'email.send':
      return { message_id: 'm-1' }
    case 'config.get':
      if (key === 'secret') throw new PluginError('permission_denied', 'config key secret is not granted')
      return { value: { name: 'teal' } }
    case 'i18n.translate':
      return { text: `Hallo, ${(args.args as string[])[0]}!` }
    case 'plugin.call':
      return { doubled: ((args.args as { n: number }).n ?? 0) * 2 }
    case 'log':
    case 'events.publish':
      return {}
    default:
      throw new PluginError('unimplemented', `no host method ${method}`)
  }
}

const runner = createWasmRunner()
let probe: TestPlugin
let plugin: Plugin

beforeAll(async () => {
  const build = await mkdtemp(path.join(tmpdir(), 'corral-c-header-'))
  try {
    const wasm = path.join(build, 'probe.wasm')
    await promisify(execFile)('clang', [
      '--target=wasm32-wasi',
      '--sysroot=/usr',
      '-mexec-model=reactor',
      '-std=c11',
      '-O2',
      '-Wall',
      '-Wextra',
      '-Wpedantic',
      '-Werror',
      '-I',
      header,
      '-o',
      wasm,
      probeSource,
    ])
    probe = await writeTestPlugin(new Uint8Array(await readFile(wasm)), {
      name: 'probe',
      limits: { memory_mb: 64, max_output_bytes: 16 << 20 },
      hostApi: host,
    })
  } finally {
    await rm(build, { recursive: true, force: true })
  }
  plugin = await runner.load(probe)
  await plugin.init({ greeting: 'Hi', nested: { list: [1, 2] } })
})

afterAll(async () => {
  await runner.close()
  await probe?.remove()
})

describe('corral.h: reading arguments', () => {
  it('tells a missing field (absent or null) from one of the wrong type', async () => {
    expect(
      await plugin.call('fields', { s: 'text', i: 42, n: 1.5, b: true, o: { x: [1] }, a: [1, [2, 3], {}] }),
    ).toEqual({
      s: ['ok', 'text', 4],
      i: ['ok', '42'],
      n: ['ok', 1.5],
      b: ['ok', true],
      o: ['ok', { x: [1] }],
      a: ['ok', 3],
    })
    expect(await plugin.call('fields', { s: null, b: null })).toEqual({
      s: ['missing'],
      i: ['missing'],
      n: ['missing'],
      b: ['missing'],
      o: ['missing'],
      a: ['missing'],
    })
    expect(await plugin.call('fields', { s: 1, i: '42', n: 'x', b: 0, o: [], a: {} })).toEqual({
      s: ['wrong_type'],
      i: ['wrong_type'],
      n: ['wrong_type'],
      b: ['wrong_type'],
      o: ['wrong_type'],
      a: ['wrong_type'],
    })
  })

  it('reads only whole numbers within int64 as ints', async () => {
    const read = async (i: unknown) => ((await plugin.call('fields', { i })) as { i: unknown[] }).i
    expect(await read(-9007199254740991)).toEqual(['ok', '-9007199254740991'])
    expect(await read(1.5)).toEqual(['wrong_type'])
    expect(await read(1e21)).toEqual(['wrong_type'])
    // Past int64 (JSON text the host passes as it is): wrong type, not a wrapped number.
    const bytes = new TextEncoder().encode('{"i": 9223372036854775808}')
    const past = await plugin.callBytes('fields', bytes)
    expect(JSON.parse(new TextDecoder().decode(past)).i).toEqual(['wrong_type'])
    const edge = new TextEncoder().encode('{"i": -9223372036854775808}')
    expect(JSON.parse(new TextDecoder().decode(await plugin.callBytes('fields', edge))).i).toEqual([
      'ok',
      '-9223372036854775808',
    ])
  })

  it('finds keys written with escapes, and takes the first of repeated keys', async () => {
    const bytes = new TextEncoder().encode('{"\\u0073": "escaped key", "s": "second"}')
    const read = JSON.parse(new TextDecoder().decode(await plugin.callBytes('fields', bytes)))
    expect(read.s).toEqual(['ok', 'escaped key', 11])
  })

  it('fails with invalid_argument naming the field, missing or of the wrong type, through corral_fail_field', async () => {
    await expect(plugin.call('require_name', {})).rejects.toMatchObject({
      code: 'invalid_argument',
      rawMessage: 'field "name" is missing',
      fields: [{ field: 'name', message: 'is missing' }],
    })
    await expect(plugin.call('require_name', { name: ['Ada'] })).rejects.toMatchObject({
      code: 'invalid_argument',
      rawMessage: 'field "name" must be a string',
      fields: [{ field: 'name', message: 'must be a string' }],
    })
    expect(await plugin.call('require_name', { name: 'Ada' })).toBe('Ada')
  })

  it('refuses input that is not JSON with invalid_input', async () => {
    for (const text of ['{"a": 1', '{"a": 01}', '"\\x"', '[1,]', '{"a" 1}', 'nul', '"tab\tinside"', '1 2']) {
      await expect(plugin.callBytes('fields', new TextEncoder().encode(text)), text).rejects.toMatchObject({
        code: 'probe:invalid_input',
      })
    }
    const deep = `${'['.repeat(600)}${']'.repeat(600)}`
    await expect(plugin.callBytes('strings', new TextEncoder().encode(deep))).rejects.toMatchObject({
      code: 'probe:invalid_input',
    })
  })
})

describe('corral.h: writing results', () => {
  it('decodes and re-escapes quotes, backslashes, control characters and all of Unicode', async () => {
    const strings = [
      'plain',
      'say "hi" \\ back/slash',
      'tab\there\nnew line\r\u0000nul\u0001\u001f\b\f',
      'Ünïcödé «ok» — 日本語',
      'emoji 😀 and 𝄞 clef',
      '\u2028\u2029',
      '',
    ]
    expect(await plugin.call('strings', strings)).toEqual(strings)
  })

  it('turns lone surrogates in the input into U+FFFD', async () => {
    const bytes = new TextEncoder().encode('["a\\ud800b", "\\udc00", "\\ud83d\\ude00"]')
    expect(await plugin.callBytes('strings', bytes)).toEqual(
      new TextEncoder().encode('["a\u{fffd}b","\u{fffd}","😀"]'),
    )
  })

  it('writes bytes that are not UTF-8 as U+FFFD, keeping the valid ones', async () => {
    expect(await plugin.call('invalid_utf8')).toBe('a\u{fffd}b\u{fffd}c\u{fffd}\u{fffd}d€')
  })

  it('writes big outputs whole, call after call', async () => {
    for (const count of [255, 256, 257, 100_000, 5_000_000]) {
      const text = (await plugin.call('big', { count })) as string
      expect(text).toBe('0123456789'.repeat(Math.ceil(count / 10)).slice(0, count))
    }
  })

  it('traps when memory runs out: resource_exhausted naming the cap, and a fresh instance serves on', async () => {
    const error = await plugin.call('big', { count: 40_000_000 }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'resource_exhausted' })
    expect((error as PluginError).rawMessage).toMatch(/cap of 64 MiB \(memory_mb\)$/)
    expect(await plugin.call('big', { count: 3 })).toBe('012')
    expect(await plugin.call('config')).toEqual({ greeting: 'Hi', nested: { list: [1, 2] } })
  })

  it('writes int64 and doubles exactly, and what JSON cannot hold as null', async () => {
    expect(new TextDecoder().decode(await plugin.callBytes('numbers', new Uint8Array()))).toBe(
      '[-9223372036854775808,9223372036854775807,0.1,null,null,-2.5e-08]',
    )
  })

  it('fails a call whose writer was misused, or that failed without saying why', async () => {
    await expect(plugin.call('misuse')).rejects.toMatchObject({ code: 'probe:invalid_output' })
    await expect(plugin.call('silent_failure')).rejects.toMatchObject({ code: 'probe:failed' })
  })

  it('keeps the config corral_init received, across calls', async () => {
    await plugin.call('big', { count: 10 })
    expect(await plugin.call('config')).toEqual({ greeting: 'Hi', nested: { list: [1, 2] } })
  })
})

describe('corral.h: the host API', () => {
  it('stores bytes in the cache as base64 and reads them back', async () => {
    calls.length = 0
    for (const value of ['', 'a', 'ab', 'abc', 'Grüße, 世界 😀']) {
      expect(await plugin.call('cache_round_trip', { key: 'k', value })).toEqual({
        stored: value,
        deleted: true,
        gone: true,
      })
    }
    expect(calls).toContainEqual({
      method: 'cache.set',
      args: { key: 'k', value: Buffer.from('Grüße, 世界 😀').toString('base64'), ttl_seconds: 60 },
    })
  })

  it('calls every method with the arguments the host API defines', async () => {
    calls.length = 0
    expect(await plugin.call('host_tour')).toEqual({
      affected: 1,
      rows: [{ id: 1, name: 'one' }],
      status: 201,
      headers: { 'content-type': 'text/plain' },
      body: 'got hi',
      colour: { name: 'teal' },
      text: 'Hallo, Ada!',
      result: { doubled: 42 },
    })
    expect(calls).toEqual([
      { method: 'db.exec', args: { sql: 'insert into t values (?, ?)', args: [1, 'one'] } },
      { method: 'db.query', args: { sql: 'select * from t where id = ?', args: [1] } },
      {
        method: 'http.request',
        args: {
          method: 'POST',
          url: 'https://example.com/x',
          headers: { accept: 'text/plain' },
          body: btoa('hi'),
        },
      },
      {
        method: 'email.send',
        args: { to: ['ada@example.com', 'grace@example.com'], subject: 'Hello', body: 'Hi there' },
      },
      { method: 'log', args: { level: 'warn', message: 'touring', fields: { step: 5 } } },
      { method: 'config.get', args: { key: 'colour' } },
      { method: 'i18n.translate', args: { key: 'hello', args: ['Ada'] } },
      { method: 'plugin.call', args: { plugin: 'other', fn: 'double', args: { n: 21 } } },
      { method: 'events.publish', args: { type: 'toured', data: { ok: true } } },
      { method: 'log', args: { level: 'info', message: 'toured the host' } },
    ])
  })

  it("hands the host's refusal to the plugin with its code and message", async () => {
    await expect(plugin.call('refused_config', { key: 'secret' })).rejects.toMatchObject({
      code: 'probe:host_permission_denied',
      rawMessage: 'config key secret is not granted',
    })
    expect(await plugin.call('refused_config', { key: 'colour' })).toEqual({ name: 'teal' })
  })
})
