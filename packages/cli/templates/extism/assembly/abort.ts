// AssemblyScript's `abort` (a failed assertion, an index out of range, out of memory) would import
// `env.abort`, which no Extism host provides. `asconfig.json` routes it here instead: the message
// becomes the call's Extism error, and the trap ends the call.
import { Memory } from '@extism/as-pdk'
import { error_set } from '@extism/as-pdk/lib/env'

export function extismAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const where = `${fileName === null ? '?' : fileName}:${line}:${column}`
  error_set(Memory.allocateString(`${message === null ? 'abort' : message} at ${where}`).offset)
  unreachable()
}
