/** Field names the host sets on a line it logs for a plugin; the plugin's own fields never set them. */
export const hostLogFieldNames: readonly string[] = ['level', 'message', 'plugin', 'token']

/** At most this many characters of a plugin's own fields, as JSON, go with one log line. */
export const maxPluginLogFieldsLength = 4096

const hostOwned: ReadonlySet<string> = new Set(hostLogFieldNames)

/**
 * The fields of one line a plugin logs (through the host API `log`, or on a gRPC plugin's stderr):
 * the plugin's own fields, less those named in {@link hostLogFieldNames} and those past
 * {@link maxPluginLogFieldsLength} characters of JSON, then the host's `attribution` on top, so a
 * plugin can never pass for another or for the host. How many fields were left out is logged as
 * `dropped_fields`. The one rule for every runtime: use it wherever a plugin's fields are logged.
 */
export function pluginLogFields(
  own: Readonly<Record<string, unknown>> | undefined,
  attribution: { plugin: string } & Record<string, unknown>,
): Record<string, unknown> {
  const kept: [string, unknown][] = []
  let length = 2
  let dropped = 0
  for (const [name, value] of Object.entries(own ?? {})) {
    const size = hostOwned.has(name) ? undefined : jsonLength(name, value)
    if (size === undefined || length + size > maxPluginLogFieldsLength) {
      dropped++
      continue
    }
    length += size
    kept.push([name, value])
  }
  // fromEntries defines each name as an own field: "__proto__" stays a field, not a prototype.
  const fields = { ...Object.fromEntries(kept), ...attribution }
  if (dropped > 0) fields.dropped_fields = dropped
  return fields
}

/** Characters `"name":value,` takes in JSON; undefined for a value JSON cannot carry. */
function jsonLength(name: string, value: unknown): number | undefined {
  try {
    const text = JSON.stringify(value) as string | undefined
    return text === undefined ? undefined : JSON.stringify(name).length + text.length + 2
  } catch {
    return undefined
  }
}
