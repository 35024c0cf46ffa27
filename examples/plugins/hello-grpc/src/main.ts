import { definePlugin, PluginError, type Registration, serve } from '@corral/plugin-sdk'

const registration: Registration = {
  name: 'hello-grpc',
  version: '0.1.0',
  description: 'Greets over gRPC, keeps notes in its own table, and reports daily statistics.',
  author: 'Corral',
  license: 'MIT',
  min_host_version: '>=0.1.0',
  routes: [
    { method: 'POST', path: '/greet', handler: 'greet', middleware: [] },
    { method: 'POST', path: '/notes', handler: 'addNote', middleware: ['auth'] },
    { method: 'GET', path: '/stats', handler: 'stats', middleware: ['auth'] },
  ],
  menu_items: [],
  widgets: [],
  jobs: [],
  templates: [],
  error_codes: [{ code: 'empty_name', message: 'a name is required', http_status: 400 }],
  groups: [],
  hidden_menu_items: [],
  permissions: [],
}

let greeting = 'Hello'

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(signal.reason)
    })
  })

const plugin = definePlugin({
  register: registration,
  async init(config, { host }) {
    greeting = typeof config.greeting === 'string' ? config.greeting : 'Hello'
    await host.call('db.exec', {
      sql: 'CREATE TABLE IF NOT EXISTS hello_grpc_notes (day TEXT, text TEXT)',
    })
  },
  functions: {
    /** Greets, and counts greetings in the host's cache. */
    async greet(args, { host }) {
      const name = (args as { name?: unknown } | null)?.name
      if (typeof name !== 'string' || name === '')
        throw new PluginError('hello-grpc:empty_name', 'a name is required')
      const { value } = await host.call('cache.get', { key: 'greetings' })
      const count = (value === null ? 0 : Number(Buffer.from(value, 'base64').toString())) + 1
      await host.call('cache.set', { key: 'greetings', value: Buffer.from(String(count)).toString('base64') })
      return { text: `${greeting}, ${name}!`, count }
    },
    /** Returns its arguments (what the benchmark calls). */
    echo: (args) => args,
    /** Takes `ms` milliseconds, or less if canceled. */
    async slow(args, { signal }) {
      await sleep(Number((args as { ms?: unknown } | null)?.ms ?? 1000), signal)
      return { done: true }
    },
    /** Keeps a note for a day (`YYYY-MM-DD`) in the plugin's own table. */
    async addNote(args, { host }) {
      const { day, text } = (args ?? {}) as { day?: unknown; text?: unknown }
      if (typeof day !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(day) || typeof text !== 'string')
        throw new PluginError('invalid_argument', 'a note needs a day (YYYY-MM-DD) and a text')
      await host.call('db.exec', {
        sql: 'INSERT INTO hello_grpc_notes (day, text) VALUES ($1, $2)',
        args: [day, text],
      })
      return { ok: true }
    },
    /** How many notes each day has. */
    async stats(_args, { host }) {
      const { rows } = await host.call('db.query', {
        sql: 'SELECT day, COUNT(*) AS notes FROM hello_grpc_notes GROUP BY day ORDER BY day',
      })
      return { days: rows }
    },
  },
})

await serve(plugin)
