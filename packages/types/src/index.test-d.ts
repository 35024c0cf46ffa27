import { expectTypeOf, test } from 'vitest'
import type { HostApi, HostMethodArgs, HostMethodResult, Plugin, PluginErrorCode } from './index.js'

test('host API methods are typed end to end', () => {
  expectTypeOf<HostMethodArgs<'db.query'>>().toEqualTypeOf<{ sql: string; args?: unknown[] }>()
  expectTypeOf<HostMethodResult<'cache.get'>>().toEqualTypeOf<{ value: string | null }>()
  expectTypeOf<HostApi['call']>().parameter(0).toEqualTypeOf<keyof import('./index.js').HostApiMethods>()
})

test('plugin-defined codes are prefixed by the plugin name', () => {
  expectTypeOf<'stats:quota'>().toExtend<PluginErrorCode>()
  expectTypeOf<'quota'>().not.toExtend<PluginErrorCode>()
})

test('a real AbortSignal satisfies the call options', () => {
  expectTypeOf<AbortSignal>().toExtend<NonNullable<Parameters<Plugin['call']>[2]>['signal']>()
})
