/**
 * How `Plugin.call`'s JSON meets an Extism export's bytes. The runner hands every guest its call
 * arguments as JSON text and reads JSON text back; an Extism plugin reads and writes whatever
 * bytes it likes, most often plain text. So a JSON string goes in as its bare text
 * (`call('count_vowels', 'Hello')` gives the plugin `Hello`, as Extism would), and output that is
 * not JSON comes back as a string.
 */

const encoder = new TextEncoder()
const utf8 = new TextDecoder('utf-8', { fatal: true })
/** `"`: a JSON text starting with it is a string. */
const quote = 0x22

/**
 * The bytes an Extism export gets for the JSON text of a call's arguments: a JSON string as its
 * bare UTF-8 text, `null` as no input, any other JSON as it is.
 */
export function extismInputFromJson(json: Uint8Array): Uint8Array {
  let start = 0
  while (start < json.length && isSpace(json[start] as number)) start++
  if (json[start] === quote) return encoder.encode(JSON.parse(utf8.decode(json)) as string)
  if (json.length - start === 4 && utf8.decode(json.subarray(start)) === 'null') return new Uint8Array(0)
  return json
}

/**
 * The JSON text a call returns for an Extism export's output: no output as none (the call's
 * result is `null`), JSON as it is, other UTF-8 text as a JSON string, other bytes as a JSON
 * string of their base64.
 */
export function extismOutputToJson(output: Uint8Array): Uint8Array {
  if (output.length === 0) return output
  let text: string
  try {
    text = utf8.decode(output)
  } catch {
    return encoder.encode(JSON.stringify(Buffer.from(output).toString('base64')))
  }
  try {
    JSON.parse(text)
    return output
  } catch {
    return encoder.encode(JSON.stringify(text))
  }
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09
}
