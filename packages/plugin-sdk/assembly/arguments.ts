// Typed reads of a call's JSON arguments that tell a missing field from one of the wrong type, and
// fail the call with `invalid_argument` saying which.
import { JsonKind, JsonValue, quote } from './json'
import { failWith } from './plugin'

/** The JSON name of a kind, as problems name it: `must be a string, got number`. */
function kindName(kind: JsonKind): string {
  switch (kind) {
    case JsonKind.Null:
      return 'null'
    case JsonKind.Bool:
      return 'boolean'
    case JsonKind.Number:
      return 'number'
    case JsonKind.String:
      return 'string'
    case JsonKind.Array:
      return 'array'
    default:
      return 'object'
  }
}

/**
 * A call's arguments, read field by field. Each getter returns the field's value, or a zero value
 * when the field is missing or of another type and records the problem; after the reads, `ok` says
 * whether there was none and `fail()` fails the call with them all.
 *
 * @example
 * const args = new Arguments(input)
 * const name = args.getString('name')
 * const times = args.has('times') ? args.getNumber('times') : 1
 * if (!args.ok) return args.fail() // invalid_argument: field "name" is missing
 */
export class Arguments {
  /** Every problem found so far, one per field. */
  problems: string[] = []
  /** The field names of {@link problems}, in the same order. */
  fields: string[] = []

  constructor(public value: JsonValue) {}

  /** Whether no field read so far was missing or of the wrong type. */
  get ok(): bool {
    return this.problems.length == 0
  }

  /** Whether the arguments have `key` (with any value, `null` included). */
  has(key: string): bool {
    return this.value.get(key) !== null
  }

  getString(key: string): string {
    const v = this.field(key, JsonKind.String)
    return v === null ? '' : v.text
  }

  getNumber(key: string): f64 {
    const v = this.field(key, JsonKind.Number)
    return v === null ? 0 : v.num
  }

  getBool(key: string): bool {
    const v = this.field(key, JsonKind.Bool)
    return v === null ? false : v.bool
  }

  /** The object at `key` (an empty one when it is not there). */
  getObject(key: string): JsonValue {
    const v = this.field(key, JsonKind.Object)
    return v === null ? JsonValue.object() : v
  }

  /** The array at `key` (an empty one when it is not there). */
  getArray(key: string): JsonValue {
    const v = this.field(key, JsonKind.Array)
    return v === null ? JsonValue.array() : v
  }

  /**
   * Fails the call with `invalid_argument` (a code of Corral's, not prefixed with the plugin's
   * name), every problem in its message and in its `fields`. Return its result from the function.
   */
  fail(): JsonValue {
    const fields = JsonValue.array()
    for (let i = 0; i < this.problems.length; i++) {
      fields.push(
        JsonValue.object()
          .set('field', JsonValue.str(this.fields[i]))
          .set('message', JsonValue.str(this.problems[i])),
      )
    }
    return failWith('invalid_argument', this.problems.join('; '), fields)
  }

  private field(key: string, kind: JsonKind): JsonValue | null {
    if (this.value.kind != JsonKind.Object) {
      this.problem('(root)', `the arguments must be an object, got ${kindName(this.value.kind)}`)
      return null
    }
    const v = this.value.get(key)
    if (v === null) {
      this.problem(key, `field ${quote(key)} is missing`)
      return null
    }
    if (v.kind != kind) {
      this.problem(key, `field ${quote(key)} must be a ${kindName(kind)}, got ${kindName(v.kind)}`)
      return null
    }
    return v
  }

  /** Records one problem per field: reading a field twice does not repeat it. */
  private problem(field: string, message: string): void {
    if (this.fields.includes(field)) return
    this.fields.push(field)
    this.problems.push(message)
  }
}
