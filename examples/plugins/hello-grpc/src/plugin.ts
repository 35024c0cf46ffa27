import { definePlugin, jsonRoute, PluginError, withArgs } from '@corral/plugin-sdk'
import * as z from 'zod'

let greeting = 'Hello'

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(signal.reason)
    })
  })

/** Greets, and counts greetings in the host's cache. */
const greet = withArgs(z.object({ name: z.string() }), async ({ name }, { cache }) => {
  if (name === '') throw new PluginError('hello-grpc:empty_name', 'a name is required')
  const count = Number((await cache.getString('greetings')) ?? 0) + 1
  await cache.setString('greetings', String(count))
  return { text: `${greeting}, ${name}!`, count }
})

/** Keeps a note for a day (`YYYY-MM-DD`) in the plugin's own table. */
const addNote = withArgs(
  z.object({ day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be YYYY-MM-DD'), text: z.string() }),
  async ({ day, text }, { host }) => {
    await host.call('db.exec', {
      sql: 'INSERT INTO hello_grpc_notes (day, text) VALUES ($1, $2)',
      args: [day, text],
    })
    return { ok: true }
  },
)

/**
 * hello-grpc, as a host's typed client sees it (`manager.client<typeof helloGrpc>('hello-grpc')`).
 * Its name, version and description are its `plugin.yaml`'s.
 */
const helloGrpc = definePlugin({
  register: {
    // A route's handler gets the HTTP request: the *Route functions hand greet and addNote its JSON body.
    routes: [
      { method: 'POST', path: '/greet', handler: 'greetRoute', middleware: [] },
      { method: 'POST', path: '/notes', handler: 'addNoteRoute', middleware: ['auth'] },
      { method: 'GET', path: '/stats', handler: 'stats', middleware: ['auth'] },
    ],
    error_codes: [{ code: 'empty_name', message: 'a name is required', http_status: 400 }],
  },
  async init(config, { host }) {
    greeting = typeof config.greeting === 'string' ? config.greeting : 'Hello'
    await host.call('db.exec', {
      sql: 'CREATE TABLE IF NOT EXISTS hello_grpc_notes (day TEXT, text TEXT)',
    })
  },
  functions: {
    greet,
    /** POST /greet, `{"name": "Ada"}` → `{"text": "Hello, Ada!", "count": 1}`. */
    greetRoute: jsonRoute(greet),
    /** Returns its arguments (what the benchmark calls). */
    echo: (args) => args,
    /** Takes `ms` milliseconds (1000 by default), or less if canceled. */
    slow: withArgs(z.object({ ms: z.number().int().min(0).default(1000) }), async ({ ms }, { signal }) => {
      await sleep(ms, signal)
      return { done: true }
    }),
    addNote,
    /** POST /notes (signed in), `{"day": "2026-11-21", "text": "..."}` → `{"ok": true}`. */
    addNoteRoute: jsonRoute(addNote),
    /** How many notes each day has; also GET /stats (signed in), which needs nothing of the request. */
    async stats(_args, { host }) {
      const { rows } = await host.call('db.query', {
        sql: 'SELECT day, COUNT(*) AS notes FROM hello_grpc_notes GROUP BY day ORDER BY day',
      })
      return { days: rows as { day: string; notes: number }[] }
    },
  },
})

export default helloGrpc
