import type { EffectiveGrant } from '@corral/types'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Backends, createBackends } from '../backends/create-backends.js'
import { createSqlPolicyStore } from '../policy-store/policy-store.js'
import { createPolicyGrantLookup } from './grant-lookup.js'
import { createSandboxedHostApi, type SandboxedHostApi } from './sandboxed-host-api.js'

/**
 * `db.query` keeps the principal it makes from a grant for the next calls under that grant: a grant
 * lookup that hands two plugins one grant object must still run each plugin's statements as itself.
 */
describe('db principal of a shared grant object', () => {
  let backends: Backends
  let api: SandboxedHostApi
  const context = (plugin: string) => ({ plugin, token: 't' })

  beforeAll(async () => {
    backends = await createBackends({})
    const policies = createSqlPolicyStore(backends.database)
    const permissions = [{ type: 'db' as const, access: ['read' as const, 'write' as const], scope: ['x_*'] }]
    await policies.put({ plugin: 'alpha', status: 'approved', grants: permissions })
    const alphaGrants = createPolicyGrantLookup({ policies, requestOf: () => ({ permissions }) })
    // Every plugin gets alpha's grant object.
    const shared: EffectiveGrant = await alphaGrants('alpha')
    api = createSandboxedHostApi({ backends, grants: () => shared })
  })
  afterAll(async () => {
    await backends.close()
  })

  it("runs each plugin's statements on its own database", async () => {
    const alpha = api.forPlugin('alpha')
    const beta = api.forPlugin('beta')
    await alpha('db.exec', { sql: 'CREATE TABLE notes (t TEXT)' }, context('alpha'))
    await alpha('db.exec', { sql: 'INSERT INTO notes VALUES ($1)', args: ['alpha only'] }, context('alpha'))
    expect(await alpha('db.query', { sql: 'SELECT t FROM notes' }, context('alpha'))).toEqual({
      rows: [{ t: 'alpha only' }],
    })
    await expect(beta('db.query', { sql: 'SELECT t FROM notes' }, context('beta'))).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('no such table'),
    })
    await beta('db.exec', { sql: 'CREATE TABLE notes (t TEXT)' }, context('beta'))
    expect(await beta('db.query', { sql: 'SELECT t FROM notes' }, context('beta'))).toEqual({ rows: [] })
    expect(await alpha('db.query', { sql: 'SELECT t FROM notes' }, context('alpha'))).toEqual({
      rows: [{ t: 'alpha only' }],
    })
  })
})
