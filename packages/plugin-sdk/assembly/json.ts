// JSON for AssemblyScript plugins: a parsed value tree and a writer, enough for the ABI's payloads.

/** What a {@link JsonValue} holds. */
export enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/**
 * One JSON value. Build one with the static constructors (`JsonValue.str("hi")`,
 * `JsonValue.object().set("n", JsonValue.num(1))`), read one with `get`, `getString`, `getNumber`.
 */
export class JsonValue {
  kind: JsonKind = JsonKind.Null
  bool: bool = false
  num: f64 = 0
  text: string = ''
  items: JsonValue[] = []
  keys: string[] = []

  static null(): JsonValue {
    return new JsonValue()
  }

  static bool(value: bool): JsonValue {
    const v = new JsonValue()
    v.kind = JsonKind.Bool
    v.bool = value
    return v
  }

  static num(value: f64): JsonValue {
    const v = new JsonValue()
    v.kind = JsonKind.Number
    v.num = value
    return v
  }

  static str(value: string): JsonValue {
    const v = new JsonValue()
    v.kind = JsonKind.String
    v.text = value
    return v
  }

  static array(): JsonValue {
    const v = new JsonValue()
    v.kind = JsonKind.Array
    return v
  }

  static object(): JsonValue {
    const v = new JsonValue()
    v.kind = JsonKind.Object
    return v
  }

  /** Parses JSON text; `null` when the text is not JSON. */
  static parse(text: string): JsonValue | null {
    const parser = new Parser(text)
    const value = parser.value()
    if (value === null) return null
    parser.space()
    return parser.pos == text.length ? value : null
  }

  get isNull(): bool {
    return this.kind == JsonKind.Null
  }

  /** Sets `key` on an object (replacing an existing one); returns this object, for chaining. */
  set(key: string, value: JsonValue): JsonValue {
    const i = this.keys.indexOf(key)
    if (i >= 0) {
      this.items[i] = value
    } else {
      this.keys.push(key)
      this.items.push(value)
    }
    return this
  }

  /** Appends to an array; returns this array, for chaining. */
  push(value: JsonValue): JsonValue {
    this.items.push(value)
    return this
  }

  /** The value at `key` of an object, or `null`. */
  get(key: string): JsonValue | null {
    if (this.kind != JsonKind.Object) return null
    const i = this.keys.indexOf(key)
    return i < 0 ? null : this.items[i]
  }

  /** The string at `key`, or `fallback` when it is missing or not a string. */
  getString(key: string, fallback: string = ''): string {
    const v = this.get(key)
    return v !== null && v.kind == JsonKind.String ? v.text : fallback
  }

  /** The number at `key`, or `fallback` when it is missing or not a number. */
  getNumber(key: string, fallback: f64 = 0): f64 {
    const v = this.get(key)
    return v !== null && v.kind == JsonKind.Number ? v.num : fallback
  }

  /** The boolean at `key`, or `fallback`. */
  getBool(key: string, fallback: bool = false): bool {
    const v = this.get(key)
    return v !== null && v.kind == JsonKind.Bool ? v.bool : fallback
  }

  /** The JSON text of this value. */
  toString(): string {
    const out: string[] = []
    this.write(out)
    return out.join('')
  }

  private write(out: string[]): void {
    switch (this.kind) {
      case JsonKind.Null:
        out.push('null')
        break
      case JsonKind.Bool:
        out.push(this.bool ? 'true' : 'false')
        break
      case JsonKind.Number:
        out.push(formatNumber(this.num))
        break
      case JsonKind.String:
        out.push(quote(this.text))
        break
      case JsonKind.Array:
        out.push('[')
        for (let i = 0; i < this.items.length; i++) {
          if (i > 0) out.push(',')
          this.items[i].write(out)
        }
        out.push(']')
        break
      default:
        out.push('{')
        for (let i = 0; i < this.keys.length; i++) {
          if (i > 0) out.push(',')
          out.push(quote(this.keys[i]))
          out.push(':')
          this.items[i].write(out)
        }
        out.push('}')
    }
  }
}

function formatNumber(n: f64): string {
  if (!Number.isFinite(n)) return 'null'
  // Integers print without the ".0" AssemblyScript's f64 formatting adds.
  if (n == Math.floor(n) && Math.abs(n) < 9007199254740992) return (<i64>n).toString()
  return n.toString()
}

const hex = '0123456789abcdef'

/** A JSON string literal for `s`, quotes included. */
export function quote(s: string): string {
  const out: string[] = ['"']
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue
    out.push(s.substring(start, i))
    if (c == 0x22) out.push('\\"')
    else if (c == 0x5c) out.push('\\\\')
    else if (c == 0x0a) out.push('\\n')
    else if (c == 0x0d) out.push('\\r')
    else if (c == 0x09) out.push('\\t')
    else out.push(`\\u00${hex.charAt(c >> 4)}${hex.charAt(c & 15)}`)
    start = i + 1
  }
  out.push(s.substring(start))
  out.push('"')
  return out.join('')
}

class Parser {
  pos: i32 = 0
  constructor(public text: string) {}

  space(): void {
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos)
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break
      this.pos++
    }
  }

  literal(word: string): bool {
    if (this.text.substr(this.pos, word.length) != word) return false
    this.pos += word.length
    return true
  }

  value(): JsonValue | null {
    this.space()
    if (this.pos >= this.text.length) return null
    const c = this.text.charCodeAt(this.pos)
    if (c == 0x7b) return this.object()
    if (c == 0x5b) return this.array()
    if (c == 0x22) {
      const s = this.string()
      return s === null ? null : JsonValue.str(s)
    }
    if (this.literal('true')) return JsonValue.bool(true)
    if (this.literal('false')) return JsonValue.bool(false)
    if (this.literal('null')) return JsonValue.null()
    return this.number()
  }

  number(): JsonValue | null {
    const start = this.pos
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos)
      const numeric =
        (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2b || c == 0x2e || c == 0x65 || c == 0x45
      if (!numeric) break
      this.pos++
    }
    if (this.pos == start) return null
    const n = parseFloat(this.text.substring(start, this.pos))
    return Number.isNaN(n) ? null : JsonValue.num(n)
  }

  string(): string | null {
    this.pos++ // opening quote
    const out: string[] = []
    let start = this.pos
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos)
      if (c == 0x22) {
        out.push(this.text.substring(start, this.pos))
        this.pos++
        return out.join('')
      }
      if (c != 0x5c) {
        this.pos++
        continue
      }
      out.push(this.text.substring(start, this.pos))
      const e = this.text.charCodeAt(this.pos + 1)
      this.pos += 2
      if (e == 0x6e) out.push('\n')
      else if (e == 0x72) out.push('\r')
      else if (e == 0x74) out.push('\t')
      else if (e == 0x62) out.push('\b')
      else if (e == 0x66) out.push('\f')
      else if (e == 0x75) {
        const code = <i32>parseInt(this.text.substr(this.pos, 4), 16)
        out.push(String.fromCharCode(code))
        this.pos += 4
      } else out.push(String.fromCharCode(e))
      start = this.pos
    }
    return null
  }

  array(): JsonValue | null {
    this.pos++
    const result = JsonValue.array()
    this.space()
    if (this.literal(']')) return result
    while (true) {
      const item = this.value()
      if (item === null) return null
      result.push(item)
      this.space()
      if (this.literal(']')) return result
      if (!this.literal(',')) return null
    }
  }

  object(): JsonValue | null {
    this.pos++
    const result = JsonValue.object()
    this.space()
    if (this.literal('}')) return result
    while (true) {
      this.space()
      if (this.pos >= this.text.length || this.text.charCodeAt(this.pos) != 0x22) return null
      const key = this.string()
      if (key === null) return null
      this.space()
      if (!this.literal(':')) return null
      const item = this.value()
      if (item === null) return null
      result.set(key, item)
      this.space()
      if (this.literal('}')) return result
      if (!this.literal(',')) return null
    }
  }
}
