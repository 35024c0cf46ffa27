// __NAME__: greets people with the configured greeting and counts greetings per name in the host's cache.
import { definePlugin, PluginError, type Registration, serve } from '@corral/plugin-sdk'

const registration: Registration = {
  name: '__NAME__',
  version: '0.1.0',
  description: "Greets people over gRPC, and counts greetings in the host's cache.",
  license: 'MIT',
  routes: [{ method: 'POST', path: '/greet', handler: 'greet', middleware: [] }],
  menu_items: [],
  widgets: [],
  jobs: [],
  templates: [],
  error_codes: [{ code: 'missing_name', message: 'a name is required', http_status: 400 }],
  groups: [],
  hidden_menu_items: [],
  permissions: [],
}

let greeting = 'Hello'

const plugin = definePlugin({
  register: registration,
  async init(config) {
    greeting = typeof config.greeting === 'string' ? config.greeting : 'Hello'
  },
  functions: {
    /** `{"name": "Ada"}` → `{"message": "Hello, Ada!", "count": 1}`; `__NAME__:missing_name` without a name. */
    async greet(args, { host }) {
      const name = (args as { name?: unknown } | null)?.name
      if (typeof name !== 'string' || name === '') {
        throw new PluginError('__NAME__:missing_name', 'say who to greet: {"name": "..."}')
      }
      const key = `greetings:${name}`
      const { value } = await host.call('cache.get', { key })
      const count = (value === null ? 0 : Number(Buffer.from(value, 'base64').toString())) + 1
      await host.call('cache.set', { key, value: Buffer.from(String(count)).toString('base64') })
      return { message: `${greeting}, ${name}!`, count }
    },
  },
})

await serve(plugin)
