import { describe, expect, it } from 'vitest'
import { behaviourPluginWat, compileWat, runtimeStartWat } from '../../testing/extism-plugins.js'
import { readModuleInfo } from '../wasm-binary.js'
import { extismAbiCheck } from './extism-abi.js'

async function info(wat: string) {
  return readModuleInfo(await compileWat(wat))
}

function loadFailure(run: () => unknown): string {
  try {
    run()
  } catch (error) {
    expect((error as { code?: string }).code).toBe('load_failed')
    return (error as Error).message
  }
  throw new Error('expected load_failed')
}

describe('extismAbiCheck', () => {
  it('recognises a module by its extism:host/env imports', async () => {
    expect(extismAbiCheck.recognizes(await info(behaviourPluginWat))).toBe(true)
    expect(
      extismAbiCheck.recognizes(await info('(module (func (export "run") (result i32) (i32.const 0)))')),
    ).toBe(false)
  })

  it('makes every () -> i32 and () -> () export callable, and no start function', async () => {
    const checked = extismAbiCheck.check(
      await info(`(module
        (import "extism:host/env" "input_length" (func (result i64)))
        (memory (export "memory") 1)
        (func (export "run") (result i32) (i32.const 0))
        (func (export "quiet"))
        (func (export "takes_args") (param i32) (result i32) (i32.const 0))
        (func (export "_start"))
        (func (export "__wasm_call_ctors"))
        (func (export "corral_init") (result i32) (i32.const 0)))`),
    )
    expect([...checked.callable].sort()).toEqual(['quiet', 'run'])
    expect([...checked.lifecycle]).toEqual(['corral_init'])
    expect(checked).toMatchObject({ abi: 'extism', usesWasi: false })
    expect(extismAbiCheck.check(await info(runtimeStartWat(['_initialize', 'hs_init']))).callable).toEqual(
      new Set(['order']),
    )
  })

  it('detects WASI, and refuses any other import or a kernel import of the wrong signature', async () => {
    const wasi = await info(`(module
      (import "extism:host/env" "alloc" (func (param i64) (result i64)))
      (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1))`)
    expect(extismAbiCheck.check(wasi).usesWasi).toBe(true)
    const wrongSignature = await info(`(module
      (import "extism:host/env" "alloc" (func (param i32) (result i32))))`)
    expect(loadFailure(() => extismAbiCheck.check(wrongSignature))).toContain(
      'import extism:host/env.alloc must be (i64) -> i64',
    )
    const foreign = await info(`(module
      (import "extism:host/env" "alloc" (func (param i64) (result i64)))
      (import "extism:host/user" "launch_missiles" (func))
      (import "env" "abort" (func)))`)
    const message = loadFailure(() => extismAbiCheck.check(foreign))
    expect(message).toContain('unknown import extism:host/user.launch_missiles')
    expect(message).toContain('unknown import env.abort')
  })
})
