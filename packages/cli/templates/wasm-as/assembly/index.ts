// __NAME__: answers `greet` with the configured greeting, and fails with its own error code on bad input.
import { Arguments, config, fail, handle, hostLog, JsonValue } from '@corral/plugin-sdk/assembly'

export { corral_abi_version, corral_alloc, corral_init } from '@corral/plugin-sdk/assembly'

/**
 * `{"name": "Ada"}` → `{"message": "Hello, Ada!"}`; `invalid_argument` when `name` is missing or not
 * a string, `__NAME__:missing_name` when it is empty.
 */
export function greet(ptr: usize, len: usize): u64 {
  return handle(ptr, len, (input: JsonValue): JsonValue => {
    const args = new Arguments(input)
    const name = args.getString('name')
    if (!args.ok) return args.fail()
    if (name.length === 0) return fail('missing_name', 'say who to greet: {"name": "..."}')
    hostLog.write('info', `greeted ${name}`)
    return JsonValue.object().set(
      'message',
      JsonValue.str(`${config().getString('greeting', 'Hello')}, ${name}!`),
    )
  })
}
