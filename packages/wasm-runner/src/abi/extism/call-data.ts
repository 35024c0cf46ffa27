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
 * The bytes an Extism export gets for the JSON text of a call's arguments (`JSON.stringify` of
 * them): a JSON string as its bare UTF-8 text, `null` as no input, any other JSON as its text.
 */
export function extismInputFromJson(json: string): Uint8Array {
  if (json.charCodeAt(0) === quote) return encoder.encode(JSON.parse(json) as string)
  if (json === 'null') return new Uint8Array(0)
  return encoder.encode(json)
}

/**
 * The value `Plugin.call` resolves with for an Extism export's output: no output as `null`, JSON
 * as its value, other UTF-8 text as a string, other bytes as a string of their base64.
 * `Plugin.callBytes` gets the output itself.
 */
export function extismOutputValue(output: Uint8Array): unknown {
  if (output.length === 0) return null
  let text: string
  try {
    text = utf8.decode(output)
  } catch {
    return Buffer.from(output).toString('base64')
  }
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
