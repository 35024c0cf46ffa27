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

/**
 * What the grant of one relation of the host's schema depends on: its name and kind, its rules (a
 * view's query), the foreign keys to and from it, its triggers (and whether they run as their
 * owner), its inheritance children.
 */
const relationSignature = [
  'c.oid::text',
  'c.relkind::text',
  'c.relname::text',
  "(SELECT string_agg(r.oid::text || '.' || r.xmin::text, ' ' ORDER BY r.oid) FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid)",
  "(SELECT string_agg(k.oid::text || '.' || k.xmin::text, ' ' ORDER BY k.oid) FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND (k.conrelid = c.oid OR k.confrelid = c.oid))",
  "(SELECT string_agg(t.oid::text || '.' || p.prosecdef::text, ' ' ORDER BY t.oid) FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid WHERE t.tgrelid = c.oid)",
  "(SELECT string_agg(i.inhrelid::text, ' ' ORDER BY i.inhrelid) FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)",
].join(', ')

/**
 * The relations of the host's schema, and the `SECURITY DEFINER` functions outside the catalog
 * (with their rights: their row changes on `GRANT`/`REVOKE`), as one string that changes whenever
 * what a plugin's grant depends on does.
 */
const hostRelationsSql = `SELECT md5(
  coalesce((SELECT string_agg(concat_ws(' ', ${relationSignature}), ',' ORDER BY c.oid) FROM pg_catalog.pg_class c WHERE c.relnamespace = $1::text::regnamespace), '')
  || ';' || coalesce((SELECT string_agg(p.oid::text || '.' || p.xmin::text, ' ' ORDER BY p.oid) FROM pg_catalog.pg_proc p WHERE p.prosecdef AND p.pronamespace <> 'pg_catalog'::pg_catalog.regnamespace), ''))`

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
      // The role's rights on its own schema follow its grant: syncPluginGrants gives them.
      `REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC; GRANT USAGE ON SCHEMA ${quoteIdentifier(hostSchema)} TO ${role}`,
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

/** A relation of the host's schema, as the sync reads it (other relations by oid, of any schema). */
interface HostRelation {
  oid: string
  name: string
  kind: string
  /** Its `serial` and identity sequences. */
  sequences: string[]
  /** What a view or materialized view reads. */
  reads: string[]
  /** The tables its foreign keys reference: writing it probes them. */
  references: string[]
  /** The tables whose foreign keys reference it: writing it probes them. */
  referencedBy: string[]
  /** Of those, the ones a write to it changes (`CASCADE`, `SET NULL`, `SET DEFAULT`). */
  cascadesTo: string[]
  /** Whether a write to it runs something with its owner's rights: a rule, a `SECURITY DEFINER` trigger. */
  runsAsOwner: boolean
  /** Its inheritance children and partitions: a write to it may land there. */
  children: string[]
}

/**
 * The relations (oids) `principal` may read and write. A relation of a covered kind whose name a
 * glob matches, except the host's own, and only where nothing it leads to is outside the grant,
 * since PostgreSQL would reach that with the owner's rights: a view or materialized view needs
 * everything it reads granted; a write needs read on every table its foreign keys probe, write on
 * every table they cascade into, no rule or `SECURITY DEFINER` trigger, and the same of every
 * child it may write into. Relations outside the host's schema are never granted. The greatest
 * such sets: a cycle of foreign keys among granted tables stays granted.
 */
function grantedRelations(
  relations: readonly HostRelation[],
  principal: SqlPrincipal,
): { read: Set<string>; write: Set<string> } {
  const byOid = new Map(relations.map((relation) => [relation.oid, relation]))
  const named = (globs: readonly string[], kinds: ReadonlySet<string>) =>
    new Set(
      relations
        .filter((r) => kinds.has(r.kind) && !isHostOwn(r.name) && matchAnyScope(globs, r.name))
        .map((r) => r.oid),
    )
  /** Drops members that fail `keeps` until none does. */
  const narrow = (set: Set<string>, keeps: (relation: HostRelation) => boolean) => {
    for (let changed = true; changed; ) {
      changed = false
      for (const oid of set) {
        const relation = byOid.get(oid)
        if (relation === undefined || !keeps(relation)) {
          set.delete(oid)
          changed = true
        }
      }
    }
  }
  const read = named(principal.read, readableKinds)
  narrow(read, (r) => r.reads.every((oid) => read.has(oid)))
  const writesSafely = (relation: HostRelation, seen: Set<string>): boolean => {
    if (seen.has(relation.oid)) return true
    seen.add(relation.oid)
    return (
      !relation.runsAsOwner &&
      relation.references.every((oid) => read.has(oid)) &&
      relation.referencedBy.every((oid) => read.has(oid)) &&
      relation.cascadesTo.every((oid) => write.has(oid)) &&
      relation.children.every((oid) => {
        const child = byOid.get(oid)
        return child !== undefined && writesSafely(child, seen)
      })
    )
  }
  const write = named(principal.write, writableKinds)
  narrow(write, (r) => r.reads.every((oid) => write.has(oid)) && writesSafely(r, new Set()))
  return { read, write }
}

/**
 * Gives `names.role` exactly `principal`'s grant on the host schema: `SELECT` on the relations its
 * read globs match, `INSERT`/`UPDATE`/`DELETE` on those its write globs match (and `USAGE` on
 * their `serial` sequences), nothing else; `USAGE` on its own schema with any grant, `CREATE` with
 * a write grant; then records the {@link grantKey} on the role. Globs
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
  const own = quoteIdentifier(names.schema)
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
               WHERE r.ev_class = c.oid AND d.refobjid <> c.oid) AS reads,
         array(SELECT k.confrelid::text FROM pg_constraint k WHERE k.contype = 'f' AND k.conrelid = c.oid) AS "references",
         array(SELECT k.conrelid::text FROM pg_constraint k WHERE k.contype = 'f' AND k.confrelid = c.oid) AS "referencedBy",
         array(SELECT k.conrelid::text FROM pg_constraint k WHERE k.contype = 'f' AND k.confrelid = c.oid
               AND (k.confdeltype IN ('c', 'n', 'd') OR k.confupdtype IN ('c', 'n', 'd'))) AS "cascadesTo",
         EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN')
           OR EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                      WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND p.prosecdef) AS "runsAsOwner",
         array(SELECT i.inhrelid::text FROM pg_inherits i WHERE i.inhparent = c.oid) AS children
       FROM pg_class c WHERE c.relnamespace = $1::text::regnamespace`,
      [hostSchema],
    )
    // A function that runs as its owner does whatever its owner may: one the plugin may call would
    // be a grant beyond its own. PUBLIC may call every new function, so this fails closed.
    const definer = await client.query<{ fn: string }>(
      `SELECT p.oid::regprocedure::text AS fn FROM pg_proc p
       WHERE p.prosecdef AND p.pronamespace <> 'pg_catalog'::regnamespace
         AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
         AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = $1)
         AND has_schema_privilege($1, p.pronamespace, 'USAGE') AND has_function_privilege($1, p.oid, 'EXECUTE')
       ORDER BY 1 LIMIT 1`,
      [names.role],
    )
    const callable = definer.rows[0]?.fn
    if (callable !== undefined) {
      throw new PluginError(
        'unavailable',
        `${callable} runs with its owner's rights and plugin roles may call it: REVOKE EXECUTE ON FUNCTION ${callable} FROM PUBLIC`,
      )
    }
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
      `REVOKE ALL ON SCHEMA ${own} FROM ${role}`,
    ]
    // Its own schema, as SQLite's own database: used with a grant of any scope, created in with a
    // write grant (the transaction is also read-only without one, so its own tables stay as they are).
    const anyGrant = principal.read.length > 0 || principal.write.length > 0
    if (anyGrant) statements.push(`GRANT USAGE ON SCHEMA ${own} TO ${role}`)
    if (principal.write.length > 0) statements.push(`GRANT CREATE ON SCHEMA ${own} TO ${role}`)
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
