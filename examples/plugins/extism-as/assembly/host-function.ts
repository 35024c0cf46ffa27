// The same PDK with a host function of the host's own, as Extism's documentation declares one:
// `extism:host/user.hello`, which a host supplies when it loads the module (Extism's `functions`).
// Kept out of plugin.wasm, which every Corral host loads: a host that does not supply `hello`
// refuses a module importing it.
import './abort'
import { Host, Memory } from '@extism/as-pdk'
import { length } from '@extism/as-pdk/lib/env'
import { hello } from './host-functions'

/** Hands the input to the host's `hello` and outputs what it answers. */
export function say_hello(): i32 {
  const input = Memory.allocateBytes(Host.input())
  const answer = hello(input.offset)
  Host.outputMemory(new Memory(answer, length(answer)))
  return 0
}
