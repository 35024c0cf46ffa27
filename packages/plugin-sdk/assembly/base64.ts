// Base64 for the host API's binary values (cache values, HTTP bodies).

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Base64 of the UTF-8 bytes of `text`. */
export function encodeBase64(text: string): string {
  const bytes = Uint8Array.wrap(String.UTF8.encode(text))
  const out: string[] = []
  for (let i = 0; i < bytes.length; i += 3) {
    const b0 = <i32>bytes[i]
    const b1 = i + 1 < bytes.length ? <i32>bytes[i + 1] : 0
    const b2 = i + 2 < bytes.length ? <i32>bytes[i + 2] : 0
    out.push(alphabet.charAt(b0 >> 2))
    out.push(alphabet.charAt(((b0 & 3) << 4) | (b1 >> 4)))
    out.push(i + 1 < bytes.length ? alphabet.charAt(((b1 & 15) << 2) | (b2 >> 6)) : '=')
    out.push(i + 2 < bytes.length ? alphabet.charAt(b2 & 63) : '=')
  }
  return out.join('')
}

/** The UTF-8 text whose base64 is `encoded`. */
export function decodeBase64(encoded: string): string {
  const bytes = new Uint8Array((encoded.length / 4) * 3)
  let n = 0
  let acc = 0
  let bits = 0
  for (let i = 0; i < encoded.length; i++) {
    const v = alphabet.indexOf(encoded.charAt(i))
    if (v < 0) continue // padding and whitespace
    acc = (acc << 6) | v
    bits += 6
    if (bits >= 8) {
      bits -= 8
      bytes[n++] = <u8>((acc >> bits) & 0xff)
    }
  }
  return String.UTF8.decode(bytes.buffer.slice(0, n))
}
