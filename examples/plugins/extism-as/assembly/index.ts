// extism-as: an unmodified Extism plugin written with Extism's AssemblyScript PDK. Nothing in it is
// Corral's except the name of the host function `greet` calls, which Corral offers every Extism
// plugin.
import './abort'
import { Config, Host, Memory, Var } from '@extism/as-pdk'
import { error_set, length } from '@extism/as-pdk/lib/env'
import { corral_host_call } from './host-functions'

/** Writes `text` as the call's output, UTF-8 encoded (the PDK's `outputString` counts UTF-16 units). */
function outputText(text: string): void {
  Host.output(Uint8Array.wrap(String.UTF8.encode(text)))
}

/** Fails the call with `message`, as Extism plugins do: an error set and a non-zero return. */
function failWith(message: string): i32 {
  error_set(Memory.allocateString(message).offset)
  return 1
}

/** `text` as a JSON string literal. */
function jsonString(text: string): string {
  let out = '"'
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c == 0x22) out += '\\"'
    else if (c == 0x5c) out += '\\\\'
    else if (c < 0x20) out += `\\u${c.toString(16).padStart(4, '0')}`
    else out += String.fromCharCode(c)
  }
  return `${out}"`
}

/**
 * Extism's own demo: counts the input's vowels (config `vowels`, default `aeiouAEIOU`) and keeps a
 * running total in the var `total` across calls. Text in, `{"count":…,"total":…,"vowels":…}` out.
 */
export function count_vowels(): i32 {
  const text = Host.inputString()
  const configured = Config.get('vowels')
  const vowels = configured === null ? 'aeiouAEIOU' : configured
  let count = 0
  for (let i = 0; i < text.length; i++) {
    if (vowels.includes(text.charAt(i))) count++
  }
  const stored = Var.getString('total')
  const total = (stored === null ? 0 : I64.parseInt(stored)) + count
  Var.set('total', Uint8Array.wrap(String.UTF8.encode(total.toString())))
  outputText(`{"count":${count},"total":${total},"vowels":${jsonString(vowels)}}`)
  return 0
}

/**
 * Greets the name it is given and logs it through the host function `corral_host_call`; fails
 * with the host's answer when the host refuses.
 */
export function greet(): i32 {
  const name = Host.inputString()
  if (name.length == 0) return failWith('say who to greet')
  const method = Memory.allocateString('log')
  const args = Memory.allocateString(`{"level":"info","message":${jsonString(`greeted ${name}`)}}`)
  const answerHandle = corral_host_call(method.offset, args.offset)
  const answer = new Memory(answerHandle, length(answerHandle)).toString()
  if (!answer.startsWith('{"ok"')) return failWith(`the host refused: ${answer}`)
  outputText(`Hello, ${name}!`)
  return 0
}

/**
 * The dashboard widget: the running total of `count_vowels` (the var `total`) as an HTML fragment.
 * Its input, the host's `{"widget": …}`, is not needed.
 */
export function widget(): i32 {
  const stored = Var.getString('total')
  outputText(`<p>Vowels counted so far: <strong>${stored === null ? '0' : stored}</strong></p>`)
  return 0
}

/** Always fails, with the Extism error `no such thing: <input>`. */
export function fail(): i32 {
  return failWith(`no such thing: ${Host.inputString()}`)
}
