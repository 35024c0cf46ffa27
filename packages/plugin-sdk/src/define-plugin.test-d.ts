import type { PluginClient } from '@corral/types'
import { describe, expectTypeOf, it } from 'vitest'
import * as z from 'zod'
import { type CallContext, definePlugin, withArgs } from './define-plugin.js'

// Type tests (vitest's typecheck runs tsc on this file): each function form a plugin may take.
const plugin = definePlugin({
  functions: {
    greet: (args: { name: string }) => ({ message: `Hello, ${args.name}!` }),
    count: async (args: { by?: number }, context: CallContext) => ({ n: args.by ?? 1, call: context.token }),
    checked: withArgs(z.object({ name: z.string().default('Ada') }), ({ name }) => name.length),
    echo: (args: unknown) => args,
    answer: () => 42,
  },
})
type Client = PluginClient<typeof plugin>

describe('definePlugin and the typed client', () => {
  it('takes functions typed by annotation alone, and the client sends those types', () => {
    expectTypeOf<Client['greet']>().parameter(0).toEqualTypeOf<{ name: string }>()
    expectTypeOf<Client['greet']>().returns.resolves.toEqualTypeOf<{ message: string }>()
    expectTypeOf<Client['count']>().parameter(0).toEqualTypeOf<{ by?: number }>()
    expectTypeOf<Client['count']>().returns.resolves.toEqualTypeOf<{ n: number; call: string }>()
  })

  it("sends a schema's input type for withArgs, and unknown for a function that types none", () => {
    expectTypeOf<Client['checked']>().parameter(0).toEqualTypeOf<{ name?: string | undefined }>()
    expectTypeOf<Client['checked']>().returns.resolves.toEqualTypeOf<number>()
    expectTypeOf<Client['echo']>().parameter(0).toEqualTypeOf<unknown>()
    expectTypeOf<Client['answer']>().parameter(0).toEqualTypeOf<unknown>()
  })

  it('refuses arguments of another type, and a function that is not one', () => {
    const client = {} as Client
    // @ts-expect-error name is a string
    void client.greet({ name: 7 })
    // @ts-expect-error a function's arguments come first, its context second
    definePlugin({ functions: { swapped: (_context: CallContext, args: { name: string }) => args.name } })
    expectTypeOf(client.greet).toBeFunction()
  })
})
