/**
 * Test support: a database whose next policy read a test holds back, as a slow pooled connection
 * does: the row is read on time, the answer arrives when the test lets it go.
 */

import type { SqlDatabase } from '../backends/sql-database.js'

/** One held policy read. */
export interface HeldPolicyRead {
  /** Settles once the held read has its row (what it will answer is decided). */
  readonly read: Promise<void>
  /** Lets the answer go; settles a task later, once the reader has done what it does with it at once. */
  release(): Promise<void>
}

/** `database`, and `holdNext()`, which holds its next read of one policy (`PolicyStore.get`). */
export function withHeldPolicyReads(database: SqlDatabase): {
  database: SqlDatabase
  holdNext(): HeldPolicyRead
} {
  let next: { rowRead: () => void; released: Promise<void>; answered: () => void } | undefined
  return {
    database: {
      dialect: database.dialect,
      async query(sql, params, options) {
        const rows = await database.query(sql, params, options)
        const held = next
        if (held !== undefined && sql.startsWith('SELECT policy FROM corral_policies WHERE')) {
          next = undefined
          held.rowRead()
          await held.released
          setTimeout(held.answered, 0)
        }
        return rows
      },
      exec: (sql, params, options) => database.exec(sql, params, options),
      close: () => database.close(),
    },
    holdNext() {
      let rowRead = () => {}
      let release = () => {}
      let answered = () => {}
      const read = new Promise<void>((resolve) => {
        rowRead = resolve
      })
      const released = new Promise<void>((resolve) => {
        release = resolve
      })
      const done = new Promise<void>((resolve) => {
        answered = resolve
      })
      next = { rowRead, released, answered }
      return {
        read,
        release() {
          release()
          return done
        },
      }
    },
  }
}
