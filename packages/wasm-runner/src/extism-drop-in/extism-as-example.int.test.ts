import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import type { CurrentPlugin } from '../abi/extism/current-plugin.js'
import { failure } from '../testing/plugin-failure.js'
import type { ExtismPlugin, ExtismPluginOptions } from './create-plugin.js'
import { createPlugin } from './create-plugin.js'

/**
 * examples/plugins/extism-as, written with Extism's own AssemblyScript PDK and built from source
 * by the workspace build, through the drop-in `createPlugin` as an Extism JS user would load it.
 */
const build = fileURLToPath(new URL('../../../../examples/plugins/extism-as/build/', import.meta.url))
const pluginWasm = `${build}plugin.wasm`
const hostFunctionWasm = `${build}host-function.wasm`
const encoder = new TextEncoder()
const quiet = { debug() {}, info() {}, warn() {}, error() {} }
const open: ExtismPlugin[] = []
afterAll(() => Promise.all(open.map((plugin) => plugin.close())))

async function load(path: string, options: ExtismPluginOptions = {}): Promise<ExtismPlugin> {
  const plugin = await createPlugin(path, { logger: quiet, ...options })
  open.push(plugin)
  return plugin
}

/** The running total `count_vowels` answers with. */
async function totalAfter(plugin: ExtismPlugin, text: string): Promise<unknown> {
  const output = await plugin.call('count_vowels', text)
  return (output?.json() as { total?: number } | undefined)?.total
}

describe('examples/plugins/extism-as under the drop-in createPlugin', () => {
  it('counts vowels from text or bytes, with the default vowels or the configured ones', async () => {
    const plugin = await load(pluginWasm)
    const output = await plugin.call('count_vowels', 'Hello, World! AEIOU')
    expect(output?.json()).toEqual({ count: 8, total: 8, vowels: 'aeiouAEIOU' })
    // Bytes in, the JSON text's bytes out, exactly.
    expect((await plugin.call('count_vowels', encoder.encode('ou')))?.bytes()).toEqual(
      encoder.encode('{"count":2,"total":10,"vowels":"aeiouAEIOU"}'),
    )

    const configured = await load(pluginWasm, { config: { vowels: 'y"' } })
    expect((await configured.call('count_vowels', 'yay "quoted"'))?.text()).toBe(
      '{"count":4,"total":4,"vowels":"y\\""}',
    )
  })

  it('keeps its running total in a var across calls, per plugin, within memory.maxVarBytes', async () => {
    const plugin = await load(pluginWasm)
    const total = (text: string) => totalAfter(plugin, text)
    expect(await total('a')).toBe(1)
    expect(await total('ee')).toBe(3)
    expect(await total('xyz')).toBe(3)
    expect(await total('io')).toBe(5)
    // Another plugin has vars of its own.
    expect(await totalAfter(await load(pluginWasm), 'a')).toBe(1)

    // "total" and "1": six bytes of var, one more than allowed.
    const bounded = await load(pluginWasm, { memory: { maxVarBytes: 5 } })
    expect((await failure(bounded.call('count_vowels', 'a'))).code).toBe('resource_exhausted')
  })

  it('greets through the host function corral_host_call, which logs, in UTF-8 both ways', async () => {
    const logged: string[] = []
    const plugin = await load(pluginWasm, {
      logger: { ...quiet, info: (message: string) => logged.push(message) },
    })
    expect((await plugin.call('greet', 'Ada'))?.text()).toBe('Hello, Ada!')
    expect((await plugin.call('greet', encoder.encode('Zoë 🐑')))?.bytes()).toEqual(
      encoder.encode('Hello, Zoë 🐑!'),
    )
    expect(logged).toEqual(['greeted Ada', 'greeted Zoë 🐑'])
  })

  it("fails with the plugin's own error, and keeps serving", async () => {
    const plugin = await load(pluginWasm)
    const error = await failure(plugin.call('fail', 'unicorn'))
    expect(error.code).toBe('plugin_error')
    expect(error.message).toContain('no such thing: unicorn')
    const noName = await failure(plugin.call('greet'))
    expect(noName.code).toBe('plugin_error')
    expect(noName.message).toContain('say who to greet')
    expect((await plugin.call('greet', 'Ada'))?.text()).toBe('Hello, Ada!')
  })

  it('calls a host function of the host’s own, and refuses to load without it', async () => {
    const seen: string[] = []
    const plugin = await load(hostFunctionWasm, {
      functions: {
        'extism:host/user': {
          hello(current: CurrentPlugin, handle: bigint) {
            const name = current.read(handle)?.text() ?? '?'
            seen.push(name)
            return current.store(`Hello from the host, ${name}!`)
          },
        },
      },
    })
    expect((await plugin.call('say_hello', 'Ada'))?.text()).toBe('Hello from the host, Ada!')
    expect(seen).toEqual(['Ada'])

    const error = await failure(load(hostFunctionWasm))
    expect(error.code).toBe('load_failed')
    expect(error.message).toContain('extism:host/user.hello')
  })
})
