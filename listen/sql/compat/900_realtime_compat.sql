-- tidings SQL, optional compat part: schema `realtime` with Supabase's SQL broadcast API.
--
-- Installed only when asked (realtime_compat), after listen/sql/*.sql, in the same
-- transaction. Existing triggers that call realtime.send(...) or
-- realtime.broadcast_changes(...) keep working unchanged: both delegate to tidings.* with
-- the same argument names, order, defaults and return type (void) as Supabase:
--   realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
--   realtime.broadcast_changes(topic_name text, event_name text, operation text,
--       table_name text, table_schema text, new record, old record,
--       level text DEFAULT 'ROW')
-- If schema `realtime` already exists (e.g. restored from a Supabase dump) it is kept and
-- these two functions are replaced; the installing role must then own them (or the
-- schema). Only when this file creates the schema does it grant USAGE on it to PUBLIC,
-- so that triggers fired by any role can call the functions.
-- realtime.broadcast_changes is PL/pgSQL because SQL functions cannot take `record`.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'realtime') THEN
        CREATE SCHEMA realtime;
        GRANT USAGE ON SCHEMA realtime TO PUBLIC;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION realtime.send(payload jsonb, event text, topic text,
                                         private boolean DEFAULT true)
    RETURNS void
    LANGUAGE sql
AS $$
    SELECT tidings.send(payload, event, topic, private)
$$;

CREATE OR REPLACE FUNCTION realtime.broadcast_changes(topic_name text, event_name text,
                                                      operation text, table_name text,
                                                      table_schema text, new record,
                                                      old record, level text DEFAULT 'ROW')
    RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM tidings.broadcast_changes(topic_name, event_name, operation, table_name,
                                      table_schema, new, old, level);
END
$$;
