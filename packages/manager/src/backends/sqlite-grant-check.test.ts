import { describe, expect, it } from 'vitest'
import {
  appDb,
  checkProgram,
  checkStatementKind,
  firstKeyword,
  type GrantCheckContext,
  ownDb,
  tempDb,
  type VdbeOp,
} from './sqlite-grant-check.js'

const context: GrantCheckContext = {
  principal: { plugin: 'stats', read: ['stats_*', 'Shared_*'], write: ['stats_*'] },
  appTables: new Map([
    [1, 'sqlite_schema'],
    [2, 'stats_daily'],
    [3, 'vault'],
    [4, 'shared_config'],
    [5, 'sqlite_sequence'],
    [6, '\u212Aeys'],
  ]),
  allowedVtabs: new Set(['vtab:1']),
  returnsRows: true,
}

function op(opcode: string, p1: number, p2: number, p3: number, p4: string | null = null, p5 = 0): VdbeOp {
  return { opcode, p1, p2, p3, p4, p5 }
}

function verdict(ops: VdbeOp[], overrides: Partial<GrantCheckContext> = {}): string {
  try {
    checkProgram(ops, { ...context, ...overrides })
    return 'ok'
  } catch (error) {
    return (error as Error).message
  }
}

describe('firstKeyword', () => {
  it('skips blanks and both kinds of comments, and folds ASCII only', () => {
    expect(firstKeyword(' /* a */ -- b\n\tPrAgMa x')).toBe('pragma')
    expect(firstKeyword('-- only a comment')).toBe('')
    expect(firstKeyword(';SELECT 1')).toBe(';')
  })
})

describe('checkStatementKind', () => {
  it('lets data statements and DDL through, refuses the rest with the right code', () => {
    for (const sql of [
      'SELECT 1',
      'with t as (select 1) select * from t',
      'VALUES (1)',
      'create table t (a)',
    ]) {
      expect(() => checkStatementKind(sql)).not.toThrow()
    }
    expect(() => checkStatementKind('/**/PRAGMA writable_schema = ON')).toThrow(
      expect.objectContaining({ code: 'permission_denied' }),
    )
    expect(() => checkStatementKind("ATTACH 'x' AS y")).toThrow(
      expect.objectContaining({ code: 'permission_denied' }),
    )
    expect(() => checkStatementKind('SELEC 1')).toThrow(expect.objectContaining({ code: 'invalid_argument' }))
    expect(() => checkStatementKind('SELECT * FROM "SQLite_Sequence"')).toThrow(/reserved/)
  })
})

describe('checkProgram', () => {
  it('allows the plugin database, and granted application tables for what the grant says', () => {
    expect(
      verdict([op('OpenWrite', 0, 7, ownDb), op('OpenRead', 1, 2, appDb), op('OpenRead', 2, 4, appDb)]),
    ).toBe('ok')
    expect(verdict([op('OpenWrite', 0, 2, appDb)])).toBe('ok')
  })

  it('lets a plugin read its own database with any db grant, and write it with a db write grant', () => {
    const readOnly = { principal: { plugin: 'r', read: ['x'], write: [] } }
    const none = { principal: { plugin: 'n', read: [], write: [] } }
    expect(verdict([op('OpenRead', 0, 7, ownDb)], readOnly)).toBe('ok')
    expect(verdict([op('OpenRead', 0, 7, ownDb)], none)).toMatch(/needs a db grant/)
    for (const write of [
      op('OpenWrite', 0, 7, ownDb),
      op('CreateBtree', ownDb, 1, 0),
      op('Clear', 7, ownDb, 0),
    ]) {
      expect(verdict([write], readOnly)).toMatch(/needs a db write grant/)
      expect(verdict([write])).toBe('ok')
    }
  })

  it('names the table a program may not open, and the grant to ask for', () => {
    expect(verdict([op('OpenRead', 0, 3, appDb)])).toMatch(
      /db read on table vault is not granted.*read scopes/,
    )
    expect(verdict([op('OpenWrite', 0, 4, appDb)])).toMatch(/db write on table shared_config/)
    expect(verdict([op('Clear', 4, appDb, 0)])).toMatch(/db write on table shared_config/)
  })

  it('says the administrator, not plugin.yaml, is missing when the manifest asks for what is refused', () => {
    const asks = { read: ['stats_*', 'vault'], write: ['stats_*', 'shared_*'] }
    const pending = {
      principal: {
        plugin: 'p',
        read: [],
        write: [],
        requested: { ...asks, status: 'pending_review' as const },
      },
    }
    const restricted = {
      principal: {
        plugin: 'p',
        read: ['stats_*'],
        write: [],
        requested: { ...asks, status: 'restricted' as const },
      },
    }
    const ownWrite = verdict([op('OpenWrite', 0, 7, ownDb)], pending)
    expect(ownWrite).toMatch(/plugin\.yaml asks for db write, but the plugin is pending review/)
    expect(ownWrite).not.toMatch(/ask for db write in plugin\.yaml/)
    expect(verdict([op('OpenRead', 0, 7, ownDb)], pending)).toMatch(
      /asks for db, but the plugin is pending review/,
    )
    expect(verdict([op('OpenRead', 0, 3, appDb)], restricted)).toMatch(
      /db read on table vault is not granted; plugin\.yaml asks for it, but the administrator has not granted it \(policy restricted/,
    )
    expect(verdict([op('OpenWrite', 0, 4, appDb)], restricted)).toMatch(
      /db write on table shared_config is not granted; plugin\.yaml asks for it, but the administrator/,
    )
    // What the manifest does not ask for is still plugin.yaml's to ask for.
    expect(verdict([op('OpenWrite', 0, 3, appDb)], restricted)).toMatch(
      /db write on table vault is not granted; add it to the db write scopes in plugin\.yaml/,
    )
  })

  it('compares names as SQLite does: ASCII case folded, nothing else', () => {
    expect(
      verdict([op('OpenRead', 0, 6, appDb)], { principal: { plugin: 'k', read: ['keys'], write: [] } }),
    ).toMatch(/not granted/)
  })

  it('refuses the catalog, unknown pages, registers for pages, and temporary objects', () => {
    expect(verdict([op('OpenRead', 0, 1, appDb)])).toMatch(/reserved/)
    expect(verdict([op('OpenRead', 0, 99, appDb)])).toMatch(/no grant names/)
    expect(verdict([op('OpenWrite', 0, 2, appDb, null, 0x10)])).toMatch(/no grant names/)
    expect(verdict([op('OpenRead', 0, 2, tempDb)])).toMatch(/temporary/)
    expect(verdict([op('CreateBtree', tempDb, 1, 0)])).toMatch(/own tables/)
    expect(verdict([op('Destroy', 3, 0, appDb)])).toMatch(/own tables/)
    expect(verdict([op('DropTable', appDb, 0, 0, 'vault')])).toMatch(/own tables/)
  })

  it('lets sqlite_sequence be bookkeeping of a granted write only', () => {
    expect(
      verdict([op('OpenWrite', 0, 2, appDb), op('OpenRead', 1, 5, appDb), op('OpenWrite', 1, 5, appDb)]),
    ).toBe('ok')
    expect(verdict([op('OpenRead', 1, 5, appDb)])).toMatch(/reserved/)
  })

  it('lets a write read its own target, unless it returns rows', () => {
    const update = [op('OpenRead', 0, 2, appDb), op('OpenWrite', 1, 2, appDb)]
    const writeOnly = { principal: { plugin: 'w', read: [], write: ['stats_*'] } }
    expect(verdict(update, { ...writeOnly, returnsRows: false })).toBe('ok')
    expect(verdict(update, { ...writeOnly, returnsRows: true })).toMatch(/db read on table stats_daily/)
  })

  it('allows only the listed virtual tables and refuses attach and extensions', () => {
    expect(verdict([op('VOpen', 0, 0, 0, 'vtab:1')])).toBe('ok')
    expect(verdict([op('VOpen', 0, 0, 0, 'vtab:2')])).toMatch(/virtual tables/)
    expect(verdict([op('VCreate', 0, 1, 0)])).toMatch(/virtual tables/)
    expect(verdict([op('Function', 0, 1, 2, 'sqlite_attach(3)')])).toMatch(/sqlite_attach/)
    expect(verdict([op('Function', 0, 1, 2, 'LOAD_EXTENSION(1)')])).toMatch(/load_extension/)
    expect(verdict([op('Function', 0, 1, 2, 'json_set(3)')])).toBe('ok')
    expect(verdict([op('Vacuum', 0, 0, 0)])).toMatch(/not allowed/)
  })

  it('lets a journal mode be read (CREATE … IF NOT EXISTS of an existing table), never set', () => {
    expect(verdict([op('JournalMode', 0, 1, -1)])).toBe('ok')
    // PAGER_JOURNALMODE_OFF and _WAL.
    expect(verdict([op('JournalMode', 0, 1, 2)])).toMatch(/JournalMode is not allowed/)
    expect(verdict([op('JournalMode', 0, 1, 5)])).toMatch(/JournalMode is not allowed/)
  })
})
