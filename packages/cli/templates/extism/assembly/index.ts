// __NAME__: an Extism plugin. `greet` takes a name as text and answers with the configured greeting.
import './abort'
import { Config, Host, Memory } from '@extism/as-pdk'
import { error_set } from '@extism/as-pdk/lib/env'

/** `Ada` → `Hello, Ada!`; no name fails the call with an Extism error. */
export function greet(): i32 {
  const name = Host.inputString()
  if (name.length === 0) {
    error_set(Memory.allocateString('missing_name: say who to greet').offset)
    return 1
  }
  const configured = Config.get('greeting')
  const greeting = configured === null ? 'Hello' : configured
  // UTF-8 bytes: the PDK's outputString would size the output in UTF-16 units.
  Host.output(Uint8Array.wrap(String.UTF8.encode(`${greeting}, ${name}!`)))
  return 0
}
