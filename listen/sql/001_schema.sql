-- tidings SQL, part 1: the schema `tidings` and its tables.
--
-- The gateway installs listen/sql/*.sql in name order inside one transaction:
--     BEGIN; SELECT pg_advisory_xact_lock(hashtext('tidings')); <files>; COMMIT;
-- so every file must be safe to re-run (IF NOT EXISTS, CREATE OR REPLACE, ON CONFLICT).
-- Files under listen/sql/compat/ are installed only when asked (schema `realtime`).
-- PostgreSQL 15, no extensions (gen_random_uuid() is core).
--
-- Objects of this file:
--   tidings.meta     key/value facts about the install; 'version' is the SQL version.
--   tidings.outbox   one row per event: kind 1 = row change (postgres_changes), kind 2 =
--                    broadcast from SQL. payload is the JSON text the gateway forwards.
--                    NOTIFY tidings carries '<kind>:<id>:<json>' or just '<kind>:<id>'
--                    when that would exceed 7999 bytes; the listener then reads the row.
--                    The outbox also serves catch-up after a reconnect (004_catchup.sql).
--   tidings.enabled  bookkeeping of tidings.enable_changes() (002_changes.sql).
--   tidings.cursor   the listener's saved position: last id seen and the ids below it that
--                    were still in flight (gaps: ids are taken at INSERT time, not at commit).
--
-- Privileges. The installing role needs no superuser rights: CREATE on the database
-- (to create the schemas) is enough, e.g.
--     CREATE ROLE tidings LOGIN PASSWORD '...';
--     GRANT CREATE ON DATABASE app TO tidings;
-- That role owns every object. The listener must connect as that role (or a role granted
-- SELECT, DELETE on tidings.outbox, SELECT on tidings.enabled_tables and all privileges on
-- tidings.cursor): the outbox holds every change of every enabled table.
-- When the schema is created, USAGE on it is granted to PUBLIC so that any role can call
-- tidings.send() / tidings.broadcast_changes() (SECURITY DEFINER: they write the outbox as
-- the owner) and tidings.enable_changes(). No table of the schema is readable by PUBLIC.
-- The change trigger runs as the owner too, so rows of enabled tables can be written by
-- roles that have no privilege on schema tidings. To restrict broadcasting, revoke
-- EXECUTE on tidings.send and tidings.broadcast_changes from PUBLIC; re-installing keeps
-- such changes (ACLs survive CREATE OR REPLACE, and the grant below runs only once).
-- enable_changes(tbl) runs with the caller's rights: the caller must own tbl (or hold the
-- TRIGGER privilege on it).

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'tidings') THEN
        CREATE SCHEMA tidings;
        GRANT USAGE ON SCHEMA tidings TO PUBLIC;
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS tidings.meta (
    key text PRIMARY KEY, -- e.g. 'version'
    value text
);

CREATE TABLE IF NOT EXISTS tidings.outbox (
    id bigserial PRIMARY KEY,     -- event id, also in the NOTIFY payload
    kind smallint NOT NULL,       -- 1 = row change, 2 = broadcast from SQL
    payload text NOT NULL,        -- the JSON text of the event
    created_at timestamptz NOT NULL DEFAULT clock_timestamp() -- for prune()
);
CREATE INDEX IF NOT EXISTS outbox_created_at_idx ON tidings.outbox (created_at);

CREATE TABLE IF NOT EXISTS tidings.enabled (
    rel regclass PRIMARY KEY -- a table passed to enable_changes()
);

CREATE TABLE IF NOT EXISTS tidings.cursor (
    name text PRIMARY KEY,                 -- listener name
    last_id bigint NOT NULL,               -- highest outbox id processed
    gaps bigint[] NOT NULL DEFAULT '{}',   -- ids below last_id not seen yet
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO tidings.meta (key, value) VALUES ('version', '1')
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
