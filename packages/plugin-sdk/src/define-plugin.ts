import {
  formatFieldPath,
  type HealthStatus,
  type HostApi,
  type PluginCapabilities,
  PluginError,
  type TypedArguments,
} from '@corral/types'
import type { StandardSchemaV1 } from '@standard-schema/spec'
import type { PluginCache } from './plugin-cache.js'

/** What a plugin function gets besides its arguments. */
export interface CallContext {
  /** The host API, bound to this call: every host call is attributed to it and bounded by its deadline. */
  readonly host: HostApi
  /** Aborted when the host cancels the call or its deadline passes. */
  readonly signal: AbortSignal
  /** Epoch milliseconds after which the host no longer waits for the result, if the call has a deadline. */
  readonly deadline: number | undefined
  /** Identifies the call (what the host attributes its host calls to). */
  readonly token: string
  /** The plugin's cache namespace, with text values (the host API's `cache.*` take base64). */
  readonly cache: PluginCache
}

/** What `init` gets. */
export interface InitContext {
  /** The plugin's name as the host knows it. */
  readonly plugin: string
  /**
   * The host API, bound to the init call. Every host call belongs to a call in flight (its token
   * carries the call's deadline and plugin.call chain): the host refuses one made after its call ended.
   */
  readonly host: HostApi
}

/**
 * A plugin function: JSON arguments in, a JSON-serialisable result (or a promise of one) out. Its
 * arguments are `unknown` unless annotated (`(args: { name: string }) => …`), a type a host's typed
 * client then sends, unchecked at run time; {@link withArgs} checks them with a schema. (Declared
 * as a method, whose parameters TypeScript compares both ways, so that an annotated function fits.)
 */
export type PluginFunction = {
  call(args: unknown, context: CallContext): unknown
}['call']

/** A plugin function over bytes: the call's argument bytes in, its result bytes out, no JSON. */
export type BytesFunction = (input: Uint8Array, context: CallContext) => Uint8Array | Promise<Uint8Array>

/** Marks a function made by {@link bytesFunction}. */
const bytesMark: unique symbol = Symbol('corral.bytesFunction')

/** A {@link BytesFunction} as {@link PluginDefinition.functions} holds it. */
export interface MarkedBytesFunction extends PluginFunction {
  readonly [bytesMark]: BytesFunction
}

/**
 * Declares a function that takes and returns raw bytes: it gets the call's argument bytes as the
 * host sent them (what `Plugin.callBytes` was given, or the JSON text of `Plugin.call`'s arguments)
 * and its output goes back as it is (to `callBytes` exactly; `call` parses it as JSON).
 *
 * @example
 * functions: { reverse: bytesFunction((input) => input.slice().reverse()) }
 */
export function bytesFunction(fn: BytesFunction): MarkedBytesFunction {
  const marked = (() => {
    throw new TypeError('a bytesFunction is called by serve() only')
  }) as unknown as MarkedBytesFunction
  Object.defineProperty(marked, bytesMark, { value: fn })
  return marked
}

/** The bytes function behind `fn`, when {@link bytesFunction} made it. */
export function asBytesFunction(fn: PluginFunction): BytesFunction | undefined {
  return (fn as Partial<MarkedBytesFunction>)[bytesMark]
}

/**
 * A function whose arguments a schema checks, made by {@link withArgs}: it resolves with `Result`
 * (or returns it, when both the schema and the handler are synchronous).
 */
export type CheckedFunction<Args, Result> = ((
  args: unknown,
  context: CallContext,
) => Result | PromiseLike<Result>) &
  TypedArguments<Args>

/**
 * Declares a function whose arguments `schema` checks before `handler` runs: the handler gets them
 * parsed and typed (defaults applied), and a host's typed client (`manager.client`) sends the
 * schema's input type. The schema is any [Standard Schema](https://standardschema.dev) (zod 4,
 * Valibot, ArkType…): the plugin brings its own library, the SDK loads none. Arguments that do not
 * match fail the call with `invalid_argument`, each problem in `fields`
 * (`{field: 'items[0].name', message}`). A schema that checks asynchronously makes the call's
 * result a promise; a synchronous one answers in the same tick.
 *
 * @example
 * import * as z from 'zod'
 *
 * functions: {
 *   greet: withArgs(z.object({ name: z.string().min(1) }), ({ name }) => ({ text: `Hello, ${name}!` })),
 * }
 */
export function withArgs<Schema extends StandardSchemaV1, Result>(
  schema: Schema,
  handler: (args: StandardSchemaV1.InferOutput<Schema>, context: CallContext) => Result | PromiseLike<Result>,
): CheckedFunction<StandardSchemaV1.InferInput<Schema>, Result> {
  const validate = schema['~standard'].validate
  return (args, context) => {
    const checked = (result: StandardSchemaV1.Result<StandardSchemaV1.InferOutput<Schema>>) => {
      if (result.issues !== undefined) throw invalidArguments(result.issues)
      return handler(result.value, context)
    }
    const result = validate(args)
    return result instanceof Promise ? result.then(checked) : checked(result)
  }
}

/** `invalid_argument` listing every issue, each with its path. */
function invalidArguments(issues: readonly StandardSchemaV1.Issue[]): PluginError {
  const fields = issues.map((issue) => ({
    field: formatFieldPath(issuePath(issue)) || '(root)',
    message: issue.message,
  }))
  const list = fields.map((f) => `${f.field}: ${f.message}`).join('; ')
  return new PluginError('invalid_argument', `invalid arguments: ${list}`, { fields })
}

/** An issue's path as keys (a segment may be a key or `{key}`); symbols, which JSON has none of, left out. */
function issuePath(issue: StandardSchemaV1.Issue): (string | number)[] {
  const keys = (issue.path ?? []).map((segment) => (typeof segment === 'object' ? segment.key : segment))
  return keys.filter((key): key is string | number => typeof key !== 'symbol')
}

/**
 * What a plugin adds to the host: every list may be left out (none). Its identity (name, version,
 * description…) is its `plugin.yaml`'s: the host fills it in when the plugin registers.
 */
export type PluginRegistration = Partial<PluginCapabilities>

/** A TypeScript gRPC plugin, as {@link definePlugin} takes it. */
export interface PluginDefinition {
  /** What the plugin adds to the host (routes, jobs, widgets…); none when left out. */
  register?: PluginRegistration | (() => PluginRegistration | Promise<PluginRegistration>)
  /** Receives the plugin's config before any call. */
  init?: (config: Record<string, unknown>, context: InitContext) => void | Promise<void>
  /** The functions the host may call, by name. */
  functions: Record<string, PluginFunction>
  /** Readiness; by default ready once `init` has succeeded. */
  health?: () => HealthStatus | Promise<HealthStatus>
  /**
   * Finishes pending work; bounded by the host's shutdown timeout. The host calls it before it
   * stops the process (see `ServedPlugin.stop`).
   */
  shutdown?: () => void | Promise<void>
}

/**
 * Declares a plugin. It only checks the shape and returns it typed; {@link serve} runs it. Export
 * it (its type is what a host's typed client is derived from) and serve it from the entry file.
 *
 * @example
 * import * as z from 'zod'
 *
 * const greet = withArgs(z.object({ name: z.string() }), ({ name }) => ({ text: `Hello, ${name}` }))
 *
 * export default definePlugin({
 *   // A route's handler gets the HTTP request: jsonRoute hands greet the request's JSON body.
 *   register: { routes: [{ method: 'POST', path: '/greet', handler: 'greetRoute', middleware: [] }] },
 *   functions: { greet, greetRoute: jsonRoute(greet) },
 * })
 */
export function definePlugin<const T extends PluginDefinition>(definition: T): T {
  if (typeof definition.functions !== 'object' || definition.functions === null) {
    throw new TypeError('definePlugin: functions must be an object of named functions')
  }
  for (const [name, fn] of Object.entries(definition.functions)) {
    if (typeof fn !== 'function') throw new TypeError(`definePlugin: functions.${name} is not a function`)
  }
  return definition
}
