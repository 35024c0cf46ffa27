// Checked by `tsc` (the package's typecheck): a wrong type below fails the build.
import { bytesFunction, definePlugin, withArgs } from '@corral/plugin-sdk'
import { expectTypeOf, test } from 'vitest'
import * as z from 'zod'
import type helloGrpc from '../../../../examples/plugins/hello-grpc/src/plugin.js'
import type { PluginManager } from './manager-api.js'

declare const manager: PluginManager

const plugin = definePlugin({
  functions: {
    greet: withArgs(z.object({ name: z.string(), times: z.number().default(1) }), async ({ name, times }) => {
      expectTypeOf(times).toEqualTypeOf<number>()
      return { text: `Hello, ${name}`.repeat(times) }
    }),
    echo: (args) => args,
    now: () => Date.now(),
    reverse: bytesFunction((input) => input.slice().reverse()),
  },
})

test('a client method takes the schema input and resolves with the awaited result', () => {
  const client = manager.client<typeof plugin>('demo')
  expectTypeOf(client.greet).parameter(0).toEqualTypeOf<{ name: string; times?: number | undefined }>()
  expectTypeOf(client.greet).returns.toEqualTypeOf<Promise<{ text: string }>>()
  expectTypeOf(client.now).returns.toEqualTypeOf<Promise<number>>()
})

test('a function without a schema takes unknown arguments', () => {
  const client = manager.client<typeof plugin>('demo')
  expectTypeOf(client.echo).parameter(0).toEqualTypeOf<unknown>()
  expectTypeOf(client.reverse).parameter(0).toEqualTypeOf<unknown>()
})

test('a client has exactly the plugin functions', () => {
  const client = manager.client<typeof plugin>('demo')
  expectTypeOf<keyof typeof client>().toEqualTypeOf<'greet' | 'echo' | 'now' | 'reverse'>()
  // @ts-expect-error: the schema requires a string name
  void client.greet({ name: 42 })
})

test('the hello-grpc example is typed from its definition', () => {
  const hello = manager.client<typeof helloGrpc>('hello-grpc')
  expectTypeOf(hello.greet).parameter(0).toEqualTypeOf<{ name: string }>()
  expectTypeOf(hello.greet).returns.resolves.toEqualTypeOf<{ text: string; count: number }>()
  expectTypeOf(hello.addNote).parameter(0).toEqualTypeOf<{ day: string; text: string }>()
  expectTypeOf(hello.stats).returns.resolves.toEqualTypeOf<{ days: { day: string; notes: number }[] }>()
})
