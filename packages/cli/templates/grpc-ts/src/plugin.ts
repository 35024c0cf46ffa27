// __NAME__: greets people with the configured greeting and counts greetings per name in the host's cache.
// Its name, version and description are plugin.yaml's; `register` says only what it adds to the host.
import { definePlugin, jsonRoute, PluginError, withArgs } from '@corral/plugin-sdk'
import * as z from 'zod'

let greeting = 'Hello'

/**
 * `{"name": "Ada"}` → `{"message": "Hello, Ada!", "count": 1}`; `invalid_argument` naming the
 * field when `name` is not a string, `__NAME__:missing_name` when it is empty.
 */
const greet = withArgs(z.object({ name: z.string() }), async ({ name }, { cache }) => {
  if (name === '') throw new PluginError('__NAME__:missing_name', 'say who to greet: {"name": "..."}')
  const key = `greetings:${name}`
  const count = Number((await cache.getString(key)) ?? 0) + 1
  await cache.setString(key, String(count))
  return { message: `${greeting}, ${name}!`, count }
})

const plugin = definePlugin({
  register: {
    // The host calls a route's handler with the HTTP request; greetRoute hands greet its JSON body.
    routes: [{ method: 'POST', path: '/greet', handler: 'greetRoute', middleware: [] }],
    error_codes: [{ code: 'missing_name', message: 'a name is required', http_status: 400 }],
  },
  async init(config) {
    greeting = typeof config.greeting === 'string' ? config.greeting : 'Hello'
  },
  functions: {
    greet,
    /** POST /plugins/__NAME__/greet with `{"name": "Ada"}` → 200 `{"message": "Hello, Ada!", "count": 1}`. */
    greetRoute: jsonRoute(greet),
  },
})

/** A host's typed client comes from this type: `manager.client<typeof plugin>('__NAME__')`. */
export default plugin
