import type { CallOptions } from './plugin.js'

/**
 * What a plugin function's arguments are, for typed clients. Types only: the SDK's `withArgs` sets
 * it from the function's schema (its input type, what a caller sends); nothing reads it at run time.
 */
export interface TypedArguments<Args> {
  readonly '~args'?: Args
}

/**
 * The arguments a caller passes to plugin function `F`: its schema's input (`withArgs`), else the
 * type its first parameter is annotated with (`unknown` when it has none).
 */
export type FunctionArguments<F> = '~args' extends keyof F
  ? F extends TypedArguments<infer Args>
    ? Args
    : unknown
  : F extends (args: infer Args, ...rest: never[]) => unknown
    ? Args
    : unknown

/** What plugin function `F` resolves with, as the caller gets it (after JSON). */
export type FunctionResult<F> = F extends (...args: never[]) => infer Result ? Awaited<Result> : unknown

/**
 * A plugin's functions as methods: each takes the function's arguments and resolves with its
 * result, derived from the plugin's definition type (`typeof plugin`, imported as a type only).
 *
 * @example
 * import type plugin from 'hello-grpc/plugin'
 * const hello: PluginClient<typeof plugin> = manager.client<typeof plugin>('hello-grpc')
 * const { text } = await hello.greet({ name: 'Ada' })
 */
export type PluginClient<Definition extends { functions: object }> = {
  readonly [Name in keyof Definition['functions'] & string]: (
    args: FunctionArguments<Definition['functions'][Name]>,
    options?: Omit<CallOptions, 'chain'>,
  ) => Promise<FunctionResult<Definition['functions'][Name]>>
}
