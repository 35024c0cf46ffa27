import { describe, expect, it } from 'vitest'
import { checkModule } from '../host/module-cache.js'
import { wat2wasm } from '../testing/wat-plugin.js'
import { warmUp, warmUpModuleBytes } from './warm-up.js'

describe('the warm-up', () => {
  it('runs the module its comment describes, as wabt assembles it from text', async () => {
    const text = `(module
      (import "corral" "host_call" (func (param i32 i32 i32 i32) (result i64)))
      (import "corral" "log" (func (param i32 i32 i32)))
      (import "corral" "error" (func (param i32 i32)))
      (import "env" "abort" (func (param i32 i32 i32 i32)))
      (memory (export "memory") 1)
      (func (export "corral_abi_version") (result i32) (i32.const 1))
      (func (export "corral_alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "corral_init") (param $ptr i32) (param $len i32) (result i64)
        (i64.or
          (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
          (i64.extend_i32_u (local.get $len))))
      (func (export "_initialize")))`
    expect(warmUpModuleBytes()).toEqual(await wat2wasm(text))
  })

  it('is a Corral ABI module with corral_init, and nothing a plugin call could reach', () => {
    const checked = checkModule(warmUpModuleBytes())
    expect(checked.abi).toBe('corral')
    expect([...checked.lifecycle]).toEqual(['corral_init'])
    expect(checked.callable.size).toBe(0)
    expect(checked.usesWasi).toBe(false)
  })

  it('instantiates the module and serves one call through a channel of its own', async () => {
    await expect(warmUp()).resolves.toBeUndefined()
  })
})
