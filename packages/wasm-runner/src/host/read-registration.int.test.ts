import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { defaultLimits } from '@corral/manifest'
import { describe, expect, it } from 'vitest'
import { corralWat, registeringWat, wat2wasm } from '../testing/wat-plugin.js'
import { readRegistration } from './read-registration.js'

const limits = { ...defaultLimits, memory_mb: 4, init_timeout: 2_000 }

/** Threads of this process (worker threads among them), from /proc. */
function threadCount(): number {
  return Number(/^Threads:\s+(\d+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1])
}

async function threadsBackTo(count: number): Promise<void> {
  for (let i = 0; i < 200 && threadCount() > count; i++) await sleep(25)
  expect(threadCount()).toBeLessThanOrEqual(count)
}

function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  return promise.then(
    () => {
      throw new Error('expected a failure')
    },
    (error) => error,
  )
}

describe('readRegistration (a module describes itself, without a manifest)', () => {
  it('returns what corral_register says, unchecked, and leaves no worker running', async () => {
    const before = threadCount()
    const registration = { name: 'echo-bare', version: '1.2.3', routes: [{ method: 'GET', path: '/é' }] }
    const bytes = await wat2wasm(registeringWat(registration))
    expect(await readRegistration(bytes, { label: 'echo-bare.wasm', limits })).toEqual(registration)
    await threadsBackTo(before)
  })

  it('refuses a module without corral_register, before any of it runs', async () => {
    const refused = await failure(
      readRegistration(await wat2wasm(corralWat('')), { label: 'plain.wasm', limits }),
    )
    expect(refused).toMatchObject({ code: 'load_failed' })
    expect(refused.message).toMatch(/plain\.wasm exports no corral_register/)
  })

  it('refuses bytes that are not a Corral module', async () => {
    const refused = await failure(
      readRegistration(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]), { label: 'empty.wasm', limits }),
    )
    expect(refused.code).toBe('load_failed')
  })

  it('stops a corral_register that never returns at init_timeout', async () => {
    const before = threadCount()
    const bytes = await wat2wasm(
      corralWat(
        `(func (export "corral_register") (param i32 i32) (result i64) (loop $l (br $l)) (i64.const 0))`,
      ),
    )
    const refused = await failure(
      readRegistration(bytes, { label: 'spin.wasm', limits: { ...limits, init_timeout: 200 } }),
    )
    expect(refused.code).toBe('deadline_exceeded')
    await threadsBackTo(before)
  })

  it('refuses the host calls of a module describing itself', async () => {
    const bytes = await wat2wasm(
      corralWat(`
        (data (i32.const 2048) "cache.get")
        (func (export "corral_register") (param i32 i32) (result i64)
          (call $host_call (i32.const 2048) (i32.const 9) (i32.const 0) (i32.const 0)))`),
    )
    // The host call's answer is what corral_register returns: the refusal, as the ABI writes it.
    expect(await readRegistration(bytes, { label: 'nosy.wasm', limits })).toMatchObject({
      error: { code: 'permission_denied' },
    })
  })
})
