import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'
import { matchAnyScope, pluginNamePattern } from '@corral/manifest'
import { PluginError } from '@corral/types'
import type { PoolClient } from 'pg'
import type { SqlPrincipal } from './sql-database.js'

/**
 * How PostgreSQL itself enforces a plugin's `db` grant: each plugin logs in as a role of its own,
 * whose privileges are exactly its grant, with a schema of its own for the tables it creates.
 *
 * A login role, not `SET ROLE` from the host's session: PostgreSQL lets a statement go back to the
 * session's user (`RESET ROLE` in a `DO` block, `set_config('role', …)`), so a plugin running in
 * the host's session could become the host within one statement. Logged in as itself, it cannot.
 */

/** A plugin's role and schema names in one database. */
export interface PluginRoleNames {
  /** Its login role: cluster-wide in PostgreSQL, so the database's name is part of it. */
  role: string
  /** Its own schema, owned by the host, where it may create (and so owns) objects. */
  schema: string
}

/** The host's table of plugin role passwords (no grant reaches `corral_*` tables). */
export const pluginRoleTable = 'corral_plugin_roles'

/** PostgreSQL's identifier limit, in bytes (plugin names are ASCII). */
const maxIdentifier = 63

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** `prefix` + the plugin name (`-` as `_`, which names never contain), hashed where too long. */
function identifier(prefix: string, plugin: string): string {
  const name = prefix + plugin.replaceAll('-', '_')
  return name.length <= maxIdentifier
    ? name
    : `${name.slice(0, maxIdentifier - 9)}_${sha256(plugin).slice(0, 8)}`
}

/** A double-quoted SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`
}

/**
 * The SCRAM-SHA-256 verifier of `password`, as PostgreSQL stores it: given in `CREATE ROLE`, the
 * password is not in the statement's text, which the server may log (`log_statement = ddl`).
 */
function scramVerifier(password: string): string {
  const salt = randomBytes(16)
  const iterations = 4096
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256')
  const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest()
  const storedKey = createHash('sha256').update(hmac(salted, 'Client Key')).digest()
  const serverKey = hmac(salted, 'Server Key')
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

/**
 * The role and schema of `plugin` in `database`; refuses anything but a plugin name, so no name
 * can smuggle SQL or reach another plugin's role.
 */
export function pluginRoleNames(database: string, plugin: string): PluginRoleNames {
  if (!pluginNamePattern.test(plugin)) {
    throw new PluginError('invalid_argument', `not a plugin name: ${JSON.stringify(plugin)}`)
  }
  return {
    role: identifier(`corral_${sha256(database).slice(0, 8)}_`, plugin),
    schema: identifier('plugin_', plugin),
  }
}

/**
 * Where the grant checks look names up: the catalog only, before temporary objects. A plugin's own
 * functions, operators and temporary tables must not stand in for those the checks call.
 */
export const catalogSearchPath = 'SET LOCAL search_path = pg_catalog, pg_temp'

/** The relations of the host's schema, as one string that changes when any is added, dropped, renamed or (a view) redefined. */
const hostRelationsSql =
  "SELECT coalesce(md5(string_agg(c.oid::text || ' ' || c.relkind::text || ' ' || c.relname || coalesce(' ' || (SELECT string_agg(r.xmin::text, ' ') FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid), ''), ',' ORDER BY c.oid)), '') FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::text::regnamespace"

/** What a plugin's session reads of its role's grant, right before and right after its statement. */
export interface GrantState {
  /** The host schema's relations (see `hostRelationsSql`). */
  relations: string
  /** The role's comment: the {@link grantKey} it was last synced from, and a mark of that sync. */
  synced: string
}

/**
 * Reads the grant state in the plugin's own session (under {@link catalogSearchPath}). It comes
 * from the database, not from the host's memory, so every host replica sees the same state; only
 * a role administrator can set a role's comment, so the plugin cannot forge it.
 */
export async function readGrantState(client: PoolClient, hostSchema: string): Promise<GrantState> {
  const state = await client.query<GrantState>(
    `SELECT (${hostRelationsSql}) AS relations, coalesce(shobj_description((SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user), 'pg_authid'), '') AS synced`,
    [hostSchema],
  )
  return state.rows[0] ?? { relations: '', synced: '' }
}

/** What the role's privileges were synced from: the grant and the host schema's relations. */
function grantKey(principal: SqlPrincipal, relations: string): string {
  return sha256(JSON.stringify([principal.read, principal.write, relations]))
}

/** Whether the role's privileges are exactly `principal`'s grant on the host schema as it is now. */
export function isSyncedFor(state: GrantState, principal: SqlPrincipal): boolean {
  return state.synced.split(' ')[0] === grantKey(principal, state.relations)
}

/** Begins a host transaction bounded by `timeoutMs`, serialised with every other role change. */
async function beginRoleChange(client: PoolClient, timeoutMs: number): Promise<void> {
  const ms = Math.max(1, Math.ceil(timeoutMs))
  await client.query(
    `BEGIN; SET LOCAL statement_timeout = ${ms}; SET LOCAL lock_timeout = ${ms}; ${catalogSearchPath}`,
  )
}

/**
 * Makes sure `names.role` exists as a login role with only its own rights and the password the host
 * keeps for it, and that its schema exists. Returns the password. Runs as the host, which needs
 * `CREATEROLE`. Fails closed when the role could do more than its grant: a member of another role
 * (it could `SET ROLE` to it), or allowed to create objects in the host's schema (it could shadow
 * the host's functions and tables).
 */
export async function ensurePluginRole(
  client: PoolClient,
  hostSchema: string,
  names: PluginRoleNames,
  timeoutMs: number,
): Promise<string> {
  const table = `${quoteIdentifier(hostSchema)}.${pluginRoleTable}`
  const role = quoteIdentifier(names.role)
  await beginRoleChange(client, timeoutMs)
  try {
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${table} (role TEXT PRIMARY KEY, password TEXT NOT NULL); REVOKE ALL ON ${table} FROM PUBLIC`,
    )
    await client.query(`LOCK TABLE ${table} IN SHARE ROW EXCLUSIVE MODE`)
    const stored = await client.query(`SELECT password FROM ${table} WHERE role = $1`, [names.role])
    let password = (stored.rows[0] as { password?: string } | undefined)?.password
    if (password === undefined) {
      password = randomBytes(24).toString('hex')
      await client.query(`INSERT INTO ${table} (role, password) VALUES ($1, $2)`, [names.role, password])
    }
    const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [names.role])
    const attributes = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD ${quoteLiteral(scramVerifier(password))}`
    await client.query(`${exists.rowCount === 0 ? 'CREATE' : 'ALTER'} ROLE ${role} WITH ${attributes}`)
    // The schema is marked as the plugin's: one of that name the host made for itself is not taken over.
    const schema = quoteIdentifier(names.schema)
    const mark = `corral: the own schema of plugin ${names.role}`
    const found = await client.query<{ note: string | null }>(
      "SELECT obj_description(oid, 'pg_namespace') AS note FROM pg_namespace WHERE nspname = $1",
      [names.schema],
    )
    if (found.rowCount === 0) {
      await client.query(`CREATE SCHEMA ${schema}; COMMENT ON SCHEMA ${schema} IS ${quoteLiteral(mark)}`)
    } else if (found.rows[0]?.note !== mark) {
      throw new PluginError('unavailable', `schema ${names.schema} exists and is not the plugin's own`)
    }
    await client.query(
      `REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC; GRANT USAGE, CREATE ON SCHEMA ${schema} TO ${role}; GRANT USAGE ON SCHEMA ${quoteIdentifier(hostSchema)} TO ${role}`,
    )
    const reach = await client.query(
      `SELECT has_schema_privilege($1, $2, 'CREATE') AS creates, EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1) AS member`,
      [names.role, hostSchema],
    )
    const { creates, member } = reach.rows[0] as { creates: boolean; member: boolean }
    if (creates || member) {
      throw new PluginError(
        'unavailable',
        creates
          ? `role ${names.role} may create objects in schema ${hostSchema}: REVOKE CREATE ON SCHEMA ${hostSchema} FROM PUBLIC`
          : `role ${names.role} is a member of another role; a plugin's role must not be`,
      )
    }
    await client.query('COMMIT')
    return password
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}

/** Relation kinds a read grant covers: tables, partitioned tables, views, materialized views, foreign tables. */
const readableKinds = new Set(['r', 'p', 'v', 'm', 'f'])
/** Relation kinds a write grant covers: those that can take rows (a simple view writes its base table). */
const writableKinds = new Set(['r', 'p', 'v', 'f'])

/** The host's own tables: no grant reaches them, not even `*`. */
function isHostOwn(name: string): boolean {
  return /^corral_/i.test(name)
}

/** A relation of the host's schema, as the sync reads it. */
interface HostRelation {
  oid: string
  name: string
  kind: string
  /** Its `serial` and identity sequences. */
  sequences: string[]
  /** What a view or materialized view reads (relation oids, of any schema). */
  reads: string[]
}

/**
 * The relations (oids) `principal` may read and write: those of a covered kind whose name a glob
 * matches, except the host's own; a view or materialized view only if everything it reads is
 * granted too, so a grant on a view never grants what is behind it (PostgreSQL would read that with
 * the view owner's rights). What lies outside the host's schema is never granted.
 */
function grantedRelations(
  relations: readonly HostRelation[],
  principal: SqlPrincipal,
): { read: Set<string>; write: Set<string> } {
  const byOid = new Map(relations.map((relation) => [relation.oid, relation]))
  const granted = (globs: readonly string[], kinds: ReadonlySet<string>): Set<string> => {
    const verdicts = new Map<string, boolean>()
    const covers = (oid: string): boolean => {
      const known = verdicts.get(oid)
      if (known !== undefined) return known
      const relation = byOid.get(oid)
      // Views cannot read themselves, directly or not: this recursion ends.
      const verdict =
        relation !== undefined &&
        kinds.has(relation.kind) &&
        !isHostOwn(relation.name) &&
        matchAnyScope(globs, relation.name) &&
        relation.reads.every(covers)
      verdicts.set(oid, verdict)
      return verdict
    }
    return new Set(relations.filter((relation) => covers(relation.oid)).map((relation) => relation.oid))
  }
  return { read: granted(principal.read, readableKinds), write: granted(principal.write, writableKinds) }
}

/**
 * Gives `names.role` exactly `principal`'s grant on the host schema: `SELECT` on the relations its
 * read globs match, `INSERT`/`UPDATE`/`DELETE` on those its write globs match (and `USAGE` on
 * their `serial` sequences), nothing else; then records the {@link grantKey} on the role. Globs
 * match relation names in `hostSchema` only, never a schema's name. Runs as the host, in one
 * transaction, so a plugin's statement sees the old privileges or the new ones, never a mix.
 */
export async function syncPluginGrants(
  client: PoolClient,
  hostSchema: string,
  names: PluginRoleNames,
  principal: SqlPrincipal,
  timeoutMs: number,
): Promise<void> {
  const schema = quoteIdentifier(hostSchema)
  const role = quoteIdentifier(names.role)
  await beginRoleChange(client, timeoutMs)
  try {
    await client.query(`LOCK TABLE ${schema}.${pluginRoleTable} IN SHARE ROW EXCLUSIVE MODE`)
    const relations = await client.query<{ relations: string }>(`SELECT (${hostRelationsSql}) AS relations`, [
      hostSchema,
    ])
    const listed = await client.query<HostRelation>(
      `SELECT c.oid::text AS oid, c.relname AS name, c.relkind::text AS kind,
         array(SELECT s.relname::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
               WHERE d.refobjid = c.oid AND d.classid = 'pg_class'::regclass AND s.relkind = 'S'
                 AND s.relnamespace = c.relnamespace AND d.deptype IN ('a', 'i')) AS sequences,
         array(SELECT DISTINCT d.refobjid::text FROM pg_rewrite r JOIN pg_depend d
                 ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
               WHERE r.ev_class = c.oid AND d.refobjid <> c.oid) AS reads
       FROM pg_class c WHERE c.relnamespace = $1::text::regnamespace`,
      [hostSchema],
    )
    const granted = grantedRelations(listed.rows, principal)
    const read: string[] = []
    const write: string[] = []
    const sequences: string[] = []
    for (const relation of listed.rows) {
      const qualified = `${schema}.${quoteIdentifier(relation.name)}`
      if (granted.read.has(relation.oid)) read.push(qualified)
      if (granted.write.has(relation.oid)) {
        write.push(qualified)
        for (const sequence of relation.sequences) sequences.push(`${schema}.${quoteIdentifier(sequence)}`)
      }
    }
    const statements = [
      `REVOKE ALL ON ALL TABLES IN SCHEMA ${schema} FROM ${role}`,
      `REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${schema} FROM ${role}`,
    ]
    if (read.length > 0) statements.push(`GRANT SELECT ON TABLE ${read.join(', ')} TO ${role}`)
    if (write.length > 0)
      statements.push(`GRANT INSERT, UPDATE, DELETE ON TABLE ${write.join(', ')} TO ${role}`)
    if (sequences.length > 0) statements.push(`GRANT USAGE ON SEQUENCE ${sequences.join(', ')} TO ${role}`)
    // Each sync marks its comment as its own: a statement can tell whether any sync came between
    // its check and its end, even one that put back the same grant.
    const key = grantKey(principal, relations.rows[0]?.relations ?? '')
    statements.push(`COMMENT ON ROLE ${role} IS ${quoteLiteral(`${key} ${randomBytes(8).toString('hex')}`)}`)
    await client.query(statements.join('; '))
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  }
}
