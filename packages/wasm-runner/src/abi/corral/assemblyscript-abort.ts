/** The most of an abort's message (and, separately, of its file name) a trap error carries. */
export const abortTextMaxChars = 500

const utf16 = new TextDecoder('utf-16le')

/**
 * The text of an AssemblyScript string at `ptr` in `memory`, at most `maxChars` characters (cut
 * with `…`); `null` for a null pointer. An AssemblyScript string is UTF-16 code units, its length in
 * bytes the `u32` just before it (the object header's `rtSize`). The guest is not trusted: a pointer
 * or length outside memory reads as `(unreadable)`, never past it.
 */
export function readAssemblyScriptString(memory: Uint8Array, ptr: number, maxChars: number): string | null {
  const start = ptr >>> 0
  if (start === 0) return null
  if (start < 4 || start > memory.length) return '(unreadable)'
  const header = new DataView(memory.buffer, memory.byteOffset + start - 4, 4)
  const byteLength = header.getUint32(0, true)
  if (start + byteLength > memory.length) return '(unreadable)'
  const cut = byteLength > maxChars * 2
  const length = cut ? maxChars * 2 : byteLength - (byteLength % 2)
  const text = utf16.decode(memory.subarray(start, start + length))
  return cut ? `${text}…` : text
}

/**
 * AssemblyScript's `env.abort(message, fileName, line, column)` (a failed `assert`, a thrown
 * `Error`, an index out of range): a trap whose error says what and where, as
 * `abort: <message> at <file>:<line>:<column>`.
 */
export function assemblyScriptAbort(
  memory: () => Uint8Array,
): (message: number, fileName: number, line: number, column: number) => never {
  return (message, fileName, line, column) => {
    const bytes = memory()
    const what = readAssemblyScriptString(bytes, message, abortTextMaxChars) ?? 'abort'
    const file = readAssemblyScriptString(bytes, fileName, abortTextMaxChars) ?? '?'
    throw new WebAssembly.RuntimeError(`abort: ${what} at ${file}:${line >>> 0}:${column >>> 0}`)
  }
}
