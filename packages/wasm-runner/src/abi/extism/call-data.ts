/**
 * How `Plugin.call`'s JSON meets an Extism export's bytes. The runner hands every guest its call
 * arguments as JSON text and reads JSON text back; an Extism plugin reads and writes whatever
 * bytes it likes, most often plain text. So a JSON string goes in as its bare text
 * (`call('count_vowels', 'Hello')` gives the plugin `Hello`, as Extism would), and output that is
 * not JSON comes back as a string.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true })
/** `"`: a JSON text starting with it is a string. */
const quote = 0x22

/**
 * The input an Extism export gets for the JSON text of a call's arguments (`JSON.stringify` of
 * them): a JSON string as its bare text, `null` as no input, any other JSON as its text. Text, not
 * bytes: the channel encodes it straight into shared memory, as it does a Corral-ABI call's JSON.
 */
export function extismInputFromJson(json: string): string {
  if (json.charCodeAt(0) === quote) return JSON.parse(json) as string
  return json === 'null' ? '' : json
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
