/**
 * PostgreSQL leak cases as rows, for any suite that runs plugin SQL as a principal: each is the
 * host's set-up, the plugin's own preparation, the attack, and what must come of it. Every secret
 * value starts with {@link secretMarker}: no answer, rows or error message, may ever contain it.
 */
import type { PluginErrorCode } from '@corral/types'
import type { SqlPrincipal } from '../backends/sql-database.js'

/** Every value no grant of {@link leakPrincipal} reaches starts with this. */
export const secretMarker = 'SECRET-'

/** The plugin the cases attack as: `stats_*` read and write, `shared_*` read. */
export const leakPrincipal: SqlPrincipal = {
  plugin: 'stats',
  read: ['stats_*', 'shared_*'],
  write: ['stats_*'],
}

/** The host's schema: secret rows in every table and object outside the grant. */
export const leakSchema: readonly string[] = [
  'CREATE TABLE users (name TEXT PRIMARY KEY, password TEXT)',
  `INSERT INTO users VALUES ('root', '${secretMarker}users')`,
  'CREATE TABLE secrets (v TEXT)',
  `INSERT INTO secrets VALUES ('${secretMarker}secrets')`,
  'ANALYZE secrets',
  'CREATE TABLE corral_policies (plugin TEXT, policy TEXT)',
  `INSERT INTO corral_policies VALUES ('stats', '${secretMarker}host')`,
  'CREATE TABLE stats_daily (day TEXT PRIMARY KEY, hits INTEGER)',
  "INSERT INTO stats_daily VALUES ('2026-11-20', 3), ('2026-11-21', 5)",
  'CREATE TABLE shared_config (k TEXT PRIMARY KEY, v TEXT)',
  "INSERT INTO shared_config VALUES ('theme', 'dark')",
  // A schema named like a granted glob, holding a table named like a secret one.
  'CREATE SCHEMA shared_stuff',
  'CREATE TABLE shared_stuff.secrets (v TEXT)',
  `INSERT INTO shared_stuff.secrets VALUES ('${secretMarker}schema')`,
  // Inheritance: a granted parent with a child outside the grant.
  'CREATE TABLE shared_parent (v TEXT)',
  "INSERT INTO shared_parent VALUES ('parent-row')",
  'CREATE TABLE hidden_child (note TEXT) INHERITS (shared_parent)',
  `INSERT INTO hidden_child VALUES ('child-row', '${secretMarker}child')`,
  // Partitions: a secret partitioned table, and a granted one with a partition outside the grant.
  'CREATE TABLE secret_events (k TEXT, v TEXT) PARTITION BY LIST (k)',
  "CREATE TABLE secret_events_a PARTITION OF secret_events FOR VALUES IN ('a')",
  `INSERT INTO secret_events VALUES ('a', '${secretMarker}events')`,
  'CREATE TABLE shared_events (k TEXT, v TEXT) PARTITION BY LIST (k)',
  "CREATE TABLE hidden_events_a PARTITION OF shared_events FOR VALUES IN ('a')",
  "INSERT INTO shared_events VALUES ('a', 'event-row')",
  // Writes that reach further: a cascading foreign key, a rule, triggers, a probed key.
  'CREATE TABLE stats_parent (id INT PRIMARY KEY)',
  'INSERT INTO stats_parent VALUES (1)',
  'CREATE TABLE vault_child (parent INT REFERENCES stats_parent (id) ON DELETE CASCADE ON UPDATE CASCADE, secret TEXT)',
  `INSERT INTO vault_child VALUES (1, '${secretMarker}vault-child')`,
  'CREATE TABLE stats_ruled (v TEXT)',
  'CREATE RULE stats_ruled_copy AS ON INSERT TO stats_ruled DO ALSO INSERT INTO secrets VALUES (new.v)',
  "CREATE FUNCTION copy_to_secrets() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS 'BEGIN INSERT INTO public.secrets VALUES (NEW.v); RETURN NEW; END'",
  'CREATE TABLE stats_definer (v TEXT)',
  'CREATE TRIGGER stats_definer_copy AFTER INSERT ON stats_definer FOR EACH ROW EXECUTE FUNCTION copy_to_secrets()',
  "CREATE FUNCTION copy_as_caller() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN INSERT INTO public.secrets VALUES (NEW.v); RETURN NEW; END'",
  'CREATE TABLE stats_invoker (v TEXT)',
  'CREATE TRIGGER stats_invoker_copy AFTER INSERT ON stats_invoker FOR EACH ROW EXECUTE FUNCTION copy_as_caller()',
  'CREATE TABLE stats_owners (u TEXT REFERENCES users (name))',
  // Views named like the grant: one over a secret table, one over a granted table.
  'CREATE VIEW shared_user_names AS SELECT name FROM users',
  'CREATE VIEW shared_theme AS SELECT v FROM shared_config',
]

/** The tables and objects no grant of {@link leakPrincipal} reaches, by the query that reads them all. */
export const ungrantedObjects: readonly string[] = [
  'SELECT * FROM users ORDER BY name',
  'SELECT * FROM secrets ORDER BY v',
  'SELECT * FROM corral_policies ORDER BY plugin',
  'SELECT * FROM shared_stuff.secrets ORDER BY v',
  'SELECT * FROM hidden_child ORDER BY v',
  'SELECT * FROM secret_events ORDER BY v',
  'SELECT * FROM hidden_events_a ORDER BY v',
  'SELECT * FROM vault_child ORDER BY parent',
  // Every host object's definition: columns, constraints, triggers, rules, inheritance, owner.
  `SELECT n.nspname, c.relname, c.relkind::text, c.relowner::regrole::text AS owner,
     (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
     (SELECT string_agg(pg_get_constraintdef(k.oid), ', ' ORDER BY k.conname) FROM pg_constraint k WHERE k.conrelid = c.oid) AS constraints,
     (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid) AS triggers,
     (SELECT count(*) FROM pg_rewrite r WHERE r.ev_class = c.oid) AS rules,
     (SELECT string_agg(i.inhparent::regclass::text, ', ') FROM pg_inherits i WHERE i.inhrelid = c.oid) AS parents,
     (SELECT string_agg(i.inhrelid::regclass::text, ', ') FROM pg_inherits i WHERE i.inhparent = c.oid) AS children
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname IN ('public', 'shared_stuff') AND c.relname NOT LIKE 'corral_plugin_roles%'
   ORDER BY n.nspname, c.relname`,
]

/** What an attack must come to: a refusal, or the only rows it may see (documented as visible). */
export type LeakExpectation = { code: PluginErrorCode } | { rows: Record<string, unknown>[] }

/** One attack, as a row. */
export interface SqlLeakCase {
  /** The leak class of the issue it performs. */
  leak: string
  /** What it tries. */
  name: string
  /** Statements the plugin runs first, on its own objects; they must succeed. */
  prepare?: readonly string[]
  /** The attack, run as the plugin. */
  sql: string
  /** Another grant than {@link leakPrincipal} (same plugin). */
  principal?: SqlPrincipal
  expect: LeakExpectation
}

const denied: LeakExpectation = { code: 'permission_denied' }

/** The PostgreSQL leak classes of the issue, each performed for real. */
export const postgresLeakCases: readonly SqlLeakCase[] = [
  // Table functions, which the parser treated as special nodes.
  {
    leak: 'table function',
    name: 'query_to_xml in the select list',
    sql: "SELECT query_to_xml('SELECT * FROM secrets', true, true, '') AS x",
    expect: denied,
  },
  {
    leak: 'table function',
    name: 'query_to_xml in FROM',
    sql: "SELECT * FROM query_to_xml('SELECT * FROM users', true, true, '') AS x",
    expect: denied,
  },
  {
    leak: 'table function',
    name: 'table_to_xml by name',
    sql: "SELECT table_to_xml('secrets', true, true, '') AS x",
    expect: denied,
  },
  {
    leak: 'table function',
    name: 'XMLTABLE over query_to_xml',
    sql: "SELECT * FROM XMLTABLE('/table/row' PASSING query_to_xml('SELECT * FROM users', false, false, '') COLUMNS password TEXT) AS t",
    expect: denied,
  },
  {
    leak: 'table function',
    name: 'ROWS FROM',
    sql: "SELECT * FROM ROWS FROM (query_to_xml('SELECT * FROM secrets', true, true, '')) AS r(x)",
    expect: denied,
  },
  {
    leak: 'table function',
    name: 'unnest of an array subquery',
    sql: 'SELECT * FROM unnest(ARRAY(SELECT password FROM users)) AS u(p)',
    expect: denied,
  },
  {
    leak: 'table function',
    name: 'json_to_recordset of a row aggregate',
    sql: 'SELECT * FROM json_to_recordset((SELECT json_agg(s) FROM secrets s)) AS t(v TEXT)',
    expect: denied,
  },
  {
    leak: 'table function',
    name: 'database_to_xml shows only what the role may read',
    sql: "SELECT position('SECRET' IN database_to_xml(true, true, '')::text) AS at",
    expect: { rows: [{ at: 0 }] },
  },
  // CTE names compared without their quoting.
  {
    leak: 'CTE quoting',
    name: 'a quoted upper-case CTE does not hide the lower-case table',
    sql: `WITH "SECRETS" AS (SELECT 'decoy' AS v) SELECT v FROM secrets`,
    expect: denied,
  },
  {
    leak: 'CTE quoting',
    name: 'a quoted mixed-case CTE, read unquoted',
    sql: `WITH "Secrets" AS (SELECT 'decoy' AS v) SELECT v FROM Secrets`,
    expect: denied,
  },
  {
    leak: 'CTE quoting',
    name: 'a CTE named like the table, with the table schema-qualified',
    sql: "WITH secrets AS (SELECT 'decoy'::text AS v) SELECT v FROM public.secrets",
    expect: denied,
  },
  // A parenthesised WITH taken to cover the other half of a UNION.
  {
    leak: 'parenthesised WITH',
    name: 'WITH in the left half of a UNION',
    sql: "(WITH secrets AS (SELECT 'decoy'::text AS v) SELECT v FROM secrets) UNION ALL SELECT v FROM secrets",
    expect: denied,
  },
  {
    leak: 'parenthesised WITH',
    name: 'WITH in the right half of a UNION',
    sql: "SELECT v FROM secrets UNION ALL (WITH secrets AS (SELECT 'decoy'::text AS v) SELECT v FROM secrets)",
    expect: denied,
  },
  // DDL that reads: CREATE TABLE AS and its relatives.
  {
    leak: 'CREATE TABLE AS',
    name: 'CREATE TABLE AS SELECT from a secret table',
    sql: 'CREATE TABLE stats_loot AS SELECT * FROM secrets',
    expect: denied,
  },
  {
    leak: 'CREATE TABLE AS',
    name: 'SELECT INTO',
    sql: 'SELECT * INTO stats_loot FROM users',
    expect: denied,
  },
  {
    leak: 'CREATE TABLE AS',
    name: 'CREATE MATERIALIZED VIEW',
    sql: 'CREATE MATERIALIZED VIEW stats_loot_mv AS SELECT * FROM secrets',
    expect: denied,
  },
  {
    leak: 'CREATE TABLE AS',
    name: "a view of the plugin's own, read later, reads with the plugin's rights",
    prepare: ['CREATE VIEW stats_loot_v AS SELECT * FROM secrets'],
    sql: 'SELECT * FROM stats_loot_v',
    expect: denied,
  },
  {
    leak: 'CREATE TABLE AS',
    name: 'an own table made by a plugin granted reads only (writing its own tables takes a write grant)',
    principal: { plugin: 'stats', read: ['*'], write: [] },
    sql: 'CREATE TABLE stats_mine (v TEXT)',
    expect: denied,
  },
  {
    leak: 'CREATE TABLE AS',
    name: "a table in the host's schema",
    sql: 'CREATE TABLE public.stats_mine (v TEXT)',
    expect: denied,
  },
  // A glob that also matched a schema's name.
  {
    leak: 'schema named like a glob',
    name: 'a table in schema shared_stuff under a shared_* grant',
    sql: 'SELECT * FROM shared_stuff.secrets',
    expect: denied,
  },
  {
    leak: 'schema named like a glob',
    name: 'the same, quoted',
    sql: 'SELECT * FROM "shared_stuff"."secrets"',
    expect: denied,
  },
  // Catalogs: names are visible to every role, rows are not (see the README).
  {
    leak: 'regclass enumeration',
    name: 'a regclass cast names a table (visible, documented)',
    sql: "SELECT 'secrets'::regclass::text AS t",
    expect: { rows: [{ t: 'secrets' }] },
  },
  {
    leak: 'regclass enumeration',
    name: 'column statistics of a table the role may not read stay hidden',
    sql: "SELECT most_common_vals::text AS v FROM pg_stats WHERE tablename = 'secrets'",
    expect: { rows: [] },
  },
  {
    leak: 'regclass enumeration',
    name: 'raw statistics',
    sql: 'SELECT stavalues1::text AS v FROM pg_statistic',
    expect: denied,
  },
  {
    leak: 'regclass enumeration',
    name: 'role passwords in the catalog',
    sql: 'SELECT rolpassword FROM pg_authid',
    expect: denied,
  },
  {
    leak: 'regclass enumeration',
    name: "the host's table of plugin role passwords",
    sql: 'SELECT * FROM corral_plugin_roles',
    expect: denied,
  },
  {
    leak: 'regclass enumeration',
    name: "the host's own tables, under a * grant",
    principal: { plugin: 'stats', read: ['*'], write: [] },
    sql: 'SELECT * FROM corral_policies',
    expect: denied,
  },
  // Views: a grant on a view is no grant on what it reads.
  {
    leak: 'views',
    name: 'a view named like the grant over a secret table',
    sql: 'SELECT name FROM shared_user_names',
    expect: denied,
  },
  {
    leak: 'views',
    name: 'a view named like the grant over granted tables',
    sql: 'SELECT v FROM shared_theme',
    expect: { rows: [{ v: 'dark' }] },
  },
  // Inheritance.
  {
    leak: 'inheritance',
    name: 'an own table inheriting from a secret one',
    sql: 'CREATE TABLE stats_child (extra INT) INHERITS (users)',
    expect: denied,
  },
  {
    leak: 'inheritance',
    name: 'a secret table made to inherit from an own one',
    prepare: ['CREATE TABLE stats_base (name TEXT, password TEXT)'],
    sql: 'ALTER TABLE users INHERIT stats_base',
    expect: denied,
  },
  {
    leak: 'inheritance',
    name: 'a child table outside the grant, read directly',
    sql: 'SELECT * FROM hidden_child',
    expect: denied,
  },
  {
    leak: 'inheritance',
    name: "a granted parent shows its children's rows in its own columns only (documented)",
    sql: 'SELECT v FROM shared_parent ORDER BY v',
    expect: { rows: [{ v: 'child-row' }, { v: 'parent-row' }] },
  },
  // Partitions.
  {
    leak: 'partitions',
    name: 'an own table made a partition of a secret one',
    sql: "CREATE TABLE stats_part PARTITION OF secret_events FOR VALUES IN ('mine')",
    expect: denied,
  },
  {
    leak: 'partitions',
    name: "a secret partition attached to the plugin's own partitioned table",
    prepare: ['CREATE TABLE stats_parted (k TEXT, v TEXT) PARTITION BY LIST (k)'],
    sql: "ALTER TABLE stats_parted ATTACH PARTITION secret_events_a FOR VALUES IN ('a')",
    expect: denied,
  },
  {
    leak: 'partitions',
    name: 'a partition outside the grant, read directly',
    sql: 'SELECT * FROM hidden_events_a',
    expect: denied,
  },
  // Foreign keys: REFERENCES is never granted on the host's tables.
  {
    leak: 'foreign keys',
    name: 'a foreign key to a secret table (probes its keys, adds triggers to it)',
    sql: 'CREATE TABLE stats_fk (u TEXT REFERENCES users (name))',
    expect: denied,
  },
  {
    leak: 'foreign keys',
    name: 'a cascading foreign key to a granted table',
    sql: 'CREATE TABLE stats_fk (d TEXT REFERENCES stats_daily (day) ON DELETE CASCADE)',
    expect: denied,
  },
  {
    leak: 'foreign keys',
    name: "a foreign key added to the plugin's own table",
    prepare: ['CREATE TABLE stats_refs (u TEXT)'],
    sql: 'ALTER TABLE stats_refs ADD FOREIGN KEY (u) REFERENCES users (name)',
    expect: denied,
  },
  // DROP … CASCADE and other DDL on what is not the plugin's.
  {
    leak: 'DROP CASCADE',
    name: 'DROP TABLE … CASCADE of a secret table',
    sql: 'DROP TABLE users CASCADE',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: "DROP SCHEMA of the host's schema",
    sql: 'DROP SCHEMA public CASCADE',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: "DROP SCHEMA of the plugin's own schema (owned by the host)",
    sql: 'DROP SCHEMA plugin_stats CASCADE',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: "DROP OWNED BY the host's role",
    sql: 'DROP OWNED BY postgres CASCADE',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: 'TRUNCATE … CASCADE of a secret table',
    sql: 'TRUNCATE users CASCADE',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: 'TRUNCATE of a granted table (not a write grant)',
    sql: 'TRUNCATE stats_daily',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: 'DROP VIEW of a granted view',
    sql: 'DROP VIEW shared_user_names',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: 'renaming a granted table',
    sql: 'ALTER TABLE shared_config RENAME TO stats_config',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: 'an index on a secret table',
    sql: 'CREATE INDEX stats_i ON users (password)',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: 'a rule on a granted table',
    sql: 'CREATE RULE stats_r AS ON INSERT TO stats_daily DO ALSO DELETE FROM stats_daily',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: 'a trigger on a granted table',
    prepare: ["CREATE FUNCTION stats_trigger() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'"],
    sql: 'CREATE TRIGGER stats_t BEFORE INSERT ON stats_daily FOR EACH ROW EXECUTE FUNCTION stats_trigger()',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: 'granting a secret table to everyone',
    sql: 'GRANT SELECT ON secrets TO PUBLIC',
    expect: denied,
  },
  {
    leak: 'DROP CASCADE',
    name: "DROP … CASCADE of the plugin's own table drops only its own objects",
    prepare: ['CREATE TABLE stats_own (v TEXT)', 'CREATE VIEW stats_own_v AS SELECT v FROM stats_own'],
    sql: 'DROP TABLE stats_own CASCADE',
    expect: { rows: [] },
  },
  // Writes outside the grant, however spelled.
  {
    leak: 'writes',
    name: 'UPDATE of a read-only grant',
    sql: "UPDATE shared_config SET v = 'x'",
    expect: denied,
  },
  {
    leak: 'writes',
    name: 'INSERT into a secret table',
    sql: "INSERT INTO users VALUES ('evil', 'x')",
    expect: denied,
  },
  {
    leak: 'writes',
    name: 'INSERT … SELECT from a secret table',
    sql: 'INSERT INTO stats_daily (day, hits) SELECT password, 1 FROM users',
    expect: denied,
  },
  {
    leak: 'writes',
    name: 'UPDATE … FROM a secret table',
    sql: 'UPDATE stats_daily SET hits = 1 FROM users WHERE users.name = stats_daily.day',
    expect: denied,
  },
  {
    leak: 'writes',
    name: 'an upsert whose update reads a secret table',
    sql: "INSERT INTO stats_daily VALUES ('2026-11-20', 1) ON CONFLICT (day) DO UPDATE SET hits = (SELECT count(*) FROM secrets)",
    expect: denied,
  },
  {
    leak: 'writes',
    name: 'a data-modifying CTE on a secret table',
    sql: 'WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d',
    expect: denied,
  },
  {
    leak: 'writes',
    name: 'DELETE cascading into an ungranted table',
    sql: 'DELETE FROM stats_parent',
    expect: denied,
  },
  {
    leak: 'writes',
    name: 'UPDATE cascading into an ungranted table',
    sql: 'UPDATE stats_parent SET id = 2',
    expect: denied,
  },
  {
    leak: 'writes',
    name: "a host's rule writing an ungranted table",
    sql: "INSERT INTO stats_ruled VALUES ('x')",
    expect: denied,
  },
  {
    leak: 'writes',
    name: "a host's SECURITY DEFINER trigger writing an ungranted table",
    sql: "INSERT INTO stats_definer VALUES ('x')",
    expect: denied,
  },
  {
    leak: 'writes',
    name: "a host's trigger writing an ungranted table with the plugin's rights",
    sql: "INSERT INTO stats_invoker VALUES ('x')",
    expect: denied,
  },
  {
    leak: 'writes',
    name: 'an insert whose foreign key probes a secret table',
    sql: "INSERT INTO stats_owners VALUES ('root')",
    expect: denied,
  },
  {
    leak: 'writes',
    name: 'a table whose foreign key probes a secret one stays readable',
    sql: 'SELECT count(*) AS n FROM stats_owners',
    expect: { rows: [{ n: 0 }] },
  },
  // Becoming the host within one statement (why a plugin logs in as its role, see postgres-plugin-roles.ts).
  {
    leak: 'role escape',
    name: 'RESET ROLE in a DO block, then a read',
    sql: 'DO $$ BEGIN RESET ROLE; PERFORM * FROM secrets; END $$',
    expect: denied,
  },
  {
    leak: 'role escape',
    name: "set_config('role') in the select list",
    sql: "SELECT set_config('role', 'postgres', true) AS r, (SELECT count(*) FROM pg_class) AS n",
    expect: denied,
  },
  { leak: 'role escape', name: 'SET ROLE', sql: 'SET ROLE postgres', expect: denied },
  {
    leak: 'role escape',
    name: 'SET SESSION AUTHORIZATION',
    sql: 'SET SESSION AUTHORIZATION postgres',
    expect: denied,
  },
  {
    leak: 'role escape',
    name: 'forging the grant key the host compares',
    sql: "DO $$ BEGIN EXECUTE format('COMMENT ON ROLE %I IS %L', current_user, 'forged'); END $$",
    expect: denied,
  },
  {
    leak: 'role escape',
    name: 'becoming a superuser',
    sql: 'ALTER ROLE CURRENT_ROLE SUPERUSER',
    expect: denied,
  },
  {
    leak: 'role escape',
    name: 'reading a server file',
    sql: "SELECT pg_read_file('/etc/passwd') AS f",
    expect: denied,
  },
]
