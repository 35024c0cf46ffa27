// hello-wasm: greets people with the configured greeting, counts greetings per name in the host
// cache, fails with its own error code on bad input, and renders a dashboard widget.
import { Arguments, cache, config, fail, handle, hostLog, JsonValue } from '@corral/plugin-sdk/assembly'

export { corral_abi_version, corral_alloc, corral_init } from '@corral/plugin-sdk/assembly'

/** `greet`'s answer to `{"name": ...}`. */
function greeting(input: JsonValue): JsonValue {
  const args = new Arguments(input)
  const name = args.getString('name')
  if (!args.ok) return args.fail()
  if (name.length == 0) return fail('missing_name', 'say who to greet: {"name": "..."}')
  const key = `greetings:${name}`
  const stored = cache.get(key)
  const readError = stored.error
  if (readError !== null) return fail('cache_unavailable', readError.message)
  const count = (stored.value.isNull ? 0 : <i32>parseInt(stored.value.text, 10)) + 1
  const writeError = cache.set(key, count.toString()).error
  if (writeError !== null) return fail('cache_unavailable', writeError.message)
  hostLog.write('info', `greeted ${name}`)
  return JsonValue.object()
    .set('message', JsonValue.str(`${config().getString('greeting', 'Hello')}, ${name}!`))
    .set('count', JsonValue.num(count))
}

/**
 * `{"name": "Ada"}` → `{"message": "Hello, Ada!", "count": 3}`; `invalid_argument` when `name` is
 * missing or not a string, `hello-wasm:missing_name` when it is empty.
 */
export function greet(ptr: usize, len: usize): u64 {
  return handle(ptr, len, greeting)
}

/**
 * The handler of `POST /plugins/hello-wasm/greet`: the host calls it with the HTTP request
 * (`{method, path, params, query, headers, body, user}`, the body as text), whose JSON body is
 * `greet`'s arguments; `greet`'s answer is the response, a 200 with it as JSON.
 */
export function greetRoute(ptr: usize, len: usize): u64 {
  return handle(ptr, len, (request: JsonValue): JsonValue => {
    const body = JsonValue.parse(request.getString('body'))
    if (body === null) return fail('invalid_argument', 'the body is not JSON: send {"name": "..."}')
    return greeting(body)
  })
}

/** The dashboard widget: a small HTML fragment. */
export function widget(ptr: usize, len: usize): u64 {
  return handle(ptr, len, (_input: JsonValue): JsonValue => {
    return JsonValue.str(`<p>${config().getString('greeting', 'Hello')} from WebAssembly.</p>`)
  })
}
