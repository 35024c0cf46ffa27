// The guest side of Corral ABI v1: allocation, the export wrapper, config, errors.
import { error, log as logImport } from './corral'
import { JsonValue } from './json'

/** The Corral ABI version this library implements. Re-export it from your plugin's entry file. */
export function corral_abi_version(): i32 {
  return 1
}

/**
 * Gives the host `size` writable bytes. The block is pinned (the garbage collector leaves it alone)
 * until the library has read it: {@link handle} and the host API unpin what they consume.
 */
export function corral_alloc(size: i32): usize {
  const ptr = __new(<usize>size, idof<ArrayBuffer>())
  __pin(ptr)
  return ptr
}

/** The output of the last call: it must stay valid until the host has copied it, i.e. the next entry. */
let lastOutput: usize = 0
let errorSet = false
let pluginConfig: JsonValue = JsonValue.object()

/** Reads (and releases) a block the host wrote into memory from {@link corral_alloc}. */
export function takeInput(ptr: usize, len: usize): string {
  if (ptr == 0) return ''
  const text = String.UTF8.decodeUnsafe(ptr, len)
  __unpin(ptr)
  return text
}

function releaseOutput(): void {
  if (lastOutput != 0) __unpin(lastOutput)
  lastOutput = 0
}

/** Packs text as the call's output: `(ptr << 32) | len`, pinned until the next call. */
function output(text: string): u64 {
  const buffer = String.UTF8.encode(text)
  const ptr = changetype<usize>(buffer)
  __pin(ptr)
  lastOutput = ptr
  return ((<u64>ptr) << 32) | <u64>buffer.byteLength
}

/**
 * The export wrapper: decodes the JSON input, runs `fn`, encodes its JSON result. A plugin function
 * is an export of `(ptr, len) => u64` that returns `handle(ptr, len, myFunction)`.
 *
 * @example
 * export function greet(ptr: usize, len: usize): u64 {
 *   return handle(ptr, len, (input: JsonValue): JsonValue => JsonValue.str('hi ' + input.getString('name')))
 * }
 */
export function handle(ptr: usize, len: usize, fn: (input: JsonValue) => JsonValue): u64 {
  releaseOutput()
  errorSet = false
  const text = takeInput(ptr, len)
  const input: JsonValue | null = text.length == 0 ? JsonValue.null() : JsonValue.parse(text)
  if (input === null) {
    fail('invalid_argument', 'the input is not JSON')
    return 0
  }
  const result = fn(input)
  if (errorSet) return 0
  return result.isNull ? 0 : output(result.toString())
}

/**
 * Fails the current call with a code of the plugin's own (the host reports it as
 * `<plugin>:<code>`). Return its result from the function: the call's output is ignored.
 */
export function fail(code: string, message: string): JsonValue {
  return failWith(code, message, null)
}

/**
 * Fails the current call: `code` as {@link fail} takes it (`invalid_argument` stays Corral's), and
 * the fields it is about, `[{"field", "message"}]`, when there are some.
 */
export function failWith(code: string, message: string, fields: JsonValue | null): JsonValue {
  const failure = JsonValue.object().set('code', JsonValue.str(code)).set('message', JsonValue.str(message))
  if (fields !== null) failure.set('fields', fields)
  const payload = String.UTF8.encode(failure.toString())
  error(changetype<usize>(payload), <usize>payload.byteLength)
  errorSet = true
  return JsonValue.null()
}

/** The plugin's config, as `corral_init` received it (an empty object before). */
export function config(): JsonValue {
  return pluginConfig
}

/** Receives `{"config": {...}}` before the instance serves. Re-export it from your plugin's entry file. */
export function corral_init(ptr: usize, len: usize): u64 {
  return handle(ptr, len, (input: JsonValue): JsonValue => {
    const received = input.get('config')
    if (received !== null) pluginConfig = received
    return JsonValue.null()
  })
}

/** Logs straight through the ABI's `log` import (no host API round trip). */
export function logMessage(level: i32, message: string): void {
  const bytes = String.UTF8.encode(message)
  logImport(level, changetype<usize>(bytes), <usize>bytes.byteLength)
}
