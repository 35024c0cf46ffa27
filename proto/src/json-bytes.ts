/**
 * The value of JSON bytes as Corral's messages carry it (UTF-8); throws on bytes that are not JSON.
 * A field of a received message is a Buffer already, read in place: no view is made for it.
 */
export function parseJsonBytes(bytes: Uint8Array): unknown {
  const buffer = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return JSON.parse(buffer.toString())
}
