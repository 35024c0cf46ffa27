// Typed calls of the host API (DESIGN.md), over the ABI's synchronous `host_call`.
import { decodeBase64, encodeBase64 } from './base64'
import { host_call } from './corral'
import { JsonValue } from './json'
import { takeInput } from './plugin'

/** A refused or failed host call: a Corral error code (`permission_denied`, …) and a message. */
export class HostError {
  constructor(
    public code: string,
    public message: string,
  ) {}
}

/** The outcome of a host call: `value` on success, `error` otherwise. */
export class HostResult {
  constructor(
    public value: JsonValue,
    public error: HostError | null,
  ) {}

  get ok(): bool {
    return this.error === null
  }
}

/** Calls any host API method with JSON arguments. */
export function hostCall(method: string, args: JsonValue): HostResult {
  const m = String.UTF8.encode(method)
  const a = String.UTF8.encode(args.toString())
  const packed = host_call(
    changetype<usize>(m),
    <usize>m.byteLength,
    changetype<usize>(a),
    <usize>a.byteLength,
  )
  if (packed == 0)
    return new HostResult(JsonValue.null(), new HostError('resource_exhausted', 'no memory for the response'))
  const response = JsonValue.parse(takeInput(<usize>(packed >> 32), <usize>(packed & 0xffffffff)))
  if (response === null)
    return new HostResult(JsonValue.null(), new HostError('internal', 'the host answered with invalid JSON'))
  const failure = response.get('error')
  if (failure !== null) {
    return new HostResult(
      JsonValue.null(),
      new HostError(failure.getString('code'), failure.getString('message')),
    )
  }
  const ok = response.get('ok')
  return new HostResult(ok === null ? JsonValue.null() : ok, null)
}

function args(): JsonValue {
  return JsonValue.object()
}

/** The plugin's own cache namespace. Values are text (base64 on the wire is handled here). */
export namespace cache {
  /** The text stored at `key`; `value` is null when there is none. */
  export function get(key: string): HostResult {
    const result = hostCall('cache.get', args().set('key', JsonValue.str(key)))
    if (!result.ok) return result
    const stored = result.value.get('value')
    const text =
      stored === null || stored.isNull ? JsonValue.null() : JsonValue.str(decodeBase64(stored.text))
    return new HostResult(text, null)
  }

  export function set(key: string, value: string, ttlSeconds: i32 = 0): HostResult {
    const a = args()
      .set('key', JsonValue.str(key))
      .set('value', JsonValue.str(encodeBase64(value)))
    if (ttlSeconds > 0) a.set('ttl_seconds', JsonValue.num(ttlSeconds))
    return hostCall('cache.set', a)
  }

  export function remove(key: string): HostResult {
    return hostCall('cache.delete', args().set('key', JsonValue.str(key)))
  }
}

/** SQL on the host's database, with bound parameters only. */
export namespace db {
  /** `value` is `{"rows": [...]}`. */
  export function query(sql: string, params: JsonValue = JsonValue.array()): HostResult {
    return hostCall('db.query', args().set('sql', JsonValue.str(sql)).set('args', params))
  }

  /** `value` is `{"rows_affected": n}`. */
  export function exec(sql: string, params: JsonValue = JsonValue.array()): HostResult {
    return hostCall('db.exec', args().set('sql', JsonValue.str(sql)).set('args', params))
  }
}

/** Outbound HTTP, to granted hosts only. */
export namespace http {
  /** `value` is `{"status", "headers", "body"}` with the body as text. */
  export function request(
    method: string,
    url: string,
    body: string = '',
    headers: JsonValue = JsonValue.object(),
  ): HostResult {
    const a = args()
      .set('method', JsonValue.str(method))
      .set('url', JsonValue.str(url))
      .set('headers', headers)
    if (body.length > 0) a.set('body', JsonValue.str(encodeBase64(body)))
    const result = hostCall('http.request', a)
    if (!result.ok) return result
    result.value.set('body', JsonValue.str(decodeBase64(result.value.getString('body'))))
    return result
  }
}

/** The host's log, with structured fields. */
export namespace hostLog {
  export function write(level: string, message: string, fields: JsonValue = JsonValue.object()): HostResult {
    return hostCall(
      'log',
      args().set('level', JsonValue.str(level)).set('message', JsonValue.str(message)).set('fields', fields),
    )
  }
}

/** Config keys granted by the `config` permission; `value` is the key's value. */
export namespace hostConfig {
  export function get(key: string): HostResult {
    const result = hostCall('config.get', args().set('key', JsonValue.str(key)))
    if (!result.ok) return result
    const value = result.value.get('value')
    return new HostResult(value === null ? JsonValue.null() : value, null)
  }
}

/** Events for the host's subscribers. */
export namespace events {
  export function publish(type: string, data: JsonValue = JsonValue.null()): HostResult {
    return hostCall('events.publish', args().set('type', JsonValue.str(type)).set('data', data))
  }
}

/** Translations; `value` is the text. */
export namespace i18n {
  export function translate(key: string, params: JsonValue = JsonValue.array()): HostResult {
    const result = hostCall('i18n.translate', args().set('key', JsonValue.str(key)).set('args', params))
    if (!result.ok) return result
    return new HostResult(JsonValue.str(result.value.getString('text')), null)
  }
}

/** Another plugin's function, where `plugin_call` is granted. */
export namespace plugins {
  export function call(plugin: string, fn: string, input: JsonValue = JsonValue.null()): HostResult {
    return hostCall(
      'plugin.call',
      args().set('plugin', JsonValue.str(plugin)).set('fn', JsonValue.str(fn)).set('args', input),
    )
  }
}

/** Email to granted recipient domains. */
export namespace email {
  export function send(to: string[], subject: string, body: string): HostResult {
    const recipients = JsonValue.array()
    for (let i = 0; i < to.length; i++) recipients.push(JsonValue.str(to[i]))
    return hostCall(
      'email.send',
      args().set('to', recipients).set('subject', JsonValue.str(subject)).set('body', JsonValue.str(body)),
    )
  }
}
