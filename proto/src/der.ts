/**
 * The few DER encodings (ITU-T X.690) an AutoMTLS certificate is made of. The certificate is one
 * fixed shape around a key and a signature Node makes; a general ASN.1 library (asn1js) cost every
 * plugin process more to load, at each start, than making the certificate itself.
 */

/** A tag, its length (short form below 128 bytes, else long form) and its content. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  const length: number[] = []
  for (let rest = content.length; rest > 0; rest = Math.floor(rest / 256)) length.unshift(rest % 256)
  const header = content.length < 0x80 ? [tag, content.length] : [tag, 0x80 | length.length, ...length]
  return Buffer.concat([Uint8Array.from(header), content])
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, Buffer.concat(items))

export const set = (...items: Uint8Array[]): Buffer => tlv(0x31, Buffer.concat(items))

/** A non-negative INTEGER from its big-endian bytes (a zero byte first where the high bit is set). */
export function integer(bytes: Uint8Array): Buffer {
  return tlv(0x02, (bytes[0] ?? 0) & 0x80 ? Buffer.concat([Uint8Array.of(0), bytes]) : bytes)
}

export const booleanTrue: Buffer = tlv(0x01, Uint8Array.of(0xff))

/** An OBJECT IDENTIFIER from its dotted form: the first two arcs in one byte, each arc base 128. */
export function objectIdentifier(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number)
  const bytes: number[] = []
  for (const arc of [first * 40 + second, ...rest]) {
    const groups = [arc % 128]
    for (let high = Math.floor(arc / 128); high > 0; high = Math.floor(high / 128)) {
      groups.unshift(0x80 | (high % 128))
    }
    bytes.push(...groups)
  }
  return tlv(0x06, Uint8Array.from(bytes))
}

export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'))

export const octetString = (content: Uint8Array): Buffer => tlv(0x04, content)

/** A BIT STRING of whole bytes but for `unusedBits` at the end of the last one. */
export const bitString = (content: Uint8Array, unusedBits = 0): Buffer =>
  tlv(0x03, Buffer.concat([Uint8Array.of(unusedBits), content]))

/** UTCTime, `YYMMDDHHMMSSZ`: what RFC 5280 asks for dates before 2050. */
export function utcTime(date: Date): Buffer {
  const iso = date.toISOString() // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = iso.slice(2, 19).replace(/[-T:]/g, '')
  return tlv(0x17, Buffer.from(`${digits}Z`, 'ascii'))
}

/** `[tag]` EXPLICIT: the context-specific tag constructed around the whole of `inner`. */
export const explicit = (tag: number, inner: Uint8Array): Buffer => tlv(0xa0 | tag, inner)

/** `[tag]` IMPLICIT of a primitive type: the context-specific tag in place of the type's own. */
export const implicit = (tag: number, content: Uint8Array): Buffer => tlv(0x80 | tag, content)
