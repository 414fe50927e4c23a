-- tidings SQL, part 2: row changes of enabled tables (postgres_changes).
--
-- tidings.enable_changes(tbl) attaches the row trigger `tidings_changes` (AFTER INSERT OR
-- UPDATE OR DELETE) that runs tidings.capture_change(). For every row, capture_change()
-- builds the `data` object of a postgres_changes frame (PROTOCOL.md 5.3):
--   {"schema":"public","table":"todos","commit_timestamp":"2025-05-01T12:34:56.789Z",
--    "type":"UPDATE","columns":[{"name":"id","type":"int8"},...],
--    "record":{...}|null,"old_record":{...}|null,"errors":null|["..."]}
-- stores it in tidings.outbox (kind 1) and sends NOTIFY tidings '1:<id>:<json>', or
-- '1:<id>' when that text would exceed 7999 bytes (the listener then reads the row).
--
-- Rules:
--   * record is row_to_json(NEW) (attribute order, typed JSON values: numbers, booleans,
--     nested json/jsonb, arrays; timestamptz rendered in UTC, "...T12:34:56.123456+00:00",
--     because the function runs with TimeZone = UTC); null for DELETE.
--   * old_record is null for INSERT. For UPDATE/DELETE it holds the replica identity of
--     OLD: the whole row (row_to_json) under REPLICA IDENTITY FULL, else the columns of
--     the replica identity index: the primary key under DEFAULT, the chosen index under
--     USING INDEX; NOTHING falls back to the primary key. A DELETE on a table with
--     row-level security is reduced to the primary key even under FULL (as Supabase does:
--     DELETEs cannot be RLS-checked). The key-only form is rendered by jsonb, so it reads
--     {"id": 1} (keys sorted, a space after ':'); values are the same typed JSON.
--   * No key (no primary key and no usable identity) on UPDATE/DELETE: the change is still
--     sent with record as usual, old_record null and
--     errors ["Error 400: Bad Request, no primary key"] (PROTOCOL.md 5.3). INSERTs on such
--     tables are sent normally.
--   * JSON text over 1 MiB (1048576 bytes): record and old_record keep only the fields
--     whose JSON text is at most 64 bytes, and errors gets "Error 413: Payload Too Large".
--   * commit_timestamp is the transaction start time (now()) in UTC with milliseconds; the
--     real commit time is not known inside the transaction.
--   * A partition reports the schema and name of its partition root, so enabling a
--     partitioned table covers its partitions.
--
-- Cost: nothing is cached, so ALTER TABLE takes effect at the next row. Per row,
-- capture_change runs one catalog query (pg_class by oid, pg_attribute by attrelid, pg_type
-- by oid: the column list), and for UPDATE/DELETE without FULL one more (pg_index by
-- indexrelid, pg_attribute by attrelid: the non-key columns; the key index itself comes
-- from the relcache through pg_get_replica_identity_index()). Then one outbox INSERT and
-- one pg_notify. Measured on PostgreSQL 15 (DO loop of single-row statements, 2 shared
-- cores): a 6-column table costs about 40 us more per INSERT and 60 us more per UPDATE
-- than the 4-6 us without the trigger; a 14-column table about 95 us and 125 us. The
-- column list (about 2.5 us per column) is the largest part; caching it would need a way
-- to notice ALTER TABLE, which PostgreSQL offers only to superusers (event triggers).
-- The trigger runs as the owner of schema tidings (SECURITY DEFINER) so that any role
-- writing the table can append to the outbox.

-- tidings.enabled_tables lists the tables that have the trigger (read from pg_trigger, so
-- it stays right after DROP TABLE or a manual DROP TRIGGER), with their columns.
-- enable_changes/disable_changes send NOTIFY tidings '0:0' so the listener reloads it.

CREATE OR REPLACE FUNCTION tidings.trim_fields(obj text)
    RETURNS text
    LANGUAGE sql
    IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    -- Keeps the fields of a JSON object whose value text is at most 64 bytes ('null' stays).
    SELECT CASE WHEN obj IS NULL OR obj = 'null' THEN obj
                ELSE '{' || coalesce(string_agg(to_json(e.key)::text || ':' || e.value::text,
                                                ',' ORDER BY e.ord), '') || '}' END
      FROM json_each(CASE WHEN obj IS NULL OR obj = 'null' THEN '{}' ELSE obj END::json)
           WITH ORDINALITY AS e(key, value, ord)
     WHERE octet_length(e.value::text) <= 64
$$;

CREATE OR REPLACE FUNCTION tidings.capture_change()
    RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
AS $$
DECLARE
    rel_schema text := TG_TABLE_SCHEMA; -- reported schema (partition root's if any)
    rel_name text := TG_TABLE_NAME;     -- reported table name
    ident "char";                       -- pg_class.relreplident: d, n, f or i
    rls boolean;                        -- row-level security enabled
    part boolean;                       -- the table is a partition
    cols text;                          -- inside of the "columns" array, JSON text
    key_index oid;                      -- index whose columns identify OLD
    nonkeys text[];                     -- columns not in that index
    rec text := 'null';                 -- "record", JSON text
    old_rec text := 'null';             -- "old_record", JSON text
    errs text[] := '{}';                -- "errors"
    head text;                          -- msg up to "record":, JSON text
    msg text;                           -- the whole change object, JSON text
    row_id bigint;                      -- outbox id
BEGIN
    SELECT c.relreplident, c.relrowsecurity, c.relispartition,
           -- pg_type by a scalar subquery: a join is planned as a hash join over a
           -- sequential scan of pg_type, several times slower.
           (SELECT string_agg('{"name":' || to_json(a.attname)::text || ',"type":'
                              || to_json((SELECT t.typname FROM pg_type t
                                           WHERE t.oid = a.atttypid))::text || '}',
                              ',' ORDER BY a.attnum)
              FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)
      INTO ident, rls, part, cols
      FROM pg_class c
     WHERE c.oid = TG_RELID;

    IF part THEN
        SELECT n.nspname, r.relname INTO rel_schema, rel_name
          FROM pg_class r
          JOIN pg_namespace n ON n.oid = r.relnamespace
         WHERE r.oid = pg_partition_root(TG_RELID);
    END IF;

    IF TG_OP <> 'DELETE' THEN
        rec := row_to_json(NEW)::text;
    END IF;

    IF TG_OP <> 'INSERT' THEN
        IF ident = 'f' AND NOT (TG_OP = 'DELETE' AND rls) THEN
            old_rec := row_to_json(OLD)::text;
        ELSE
            -- The key index: the replica identity index from the relcache (the primary
            -- key under DEFAULT), else the primary key (NOTHING, FULL with RLS, USING
            -- INDEX whose index was dropped).
            key_index := pg_get_replica_identity_index(TG_RELID);
            IF key_index IS NULL OR (TG_OP = 'DELETE' AND rls) THEN
                SELECT i.indexrelid INTO key_index
                  FROM pg_index i
                 WHERE i.indrelid = TG_RELID AND i.indisprimary;
            END IF;
            IF key_index IS NULL THEN
                errs := errs || 'Error 400: Bad Request, no primary key'::text;
            ELSE
                -- old_record = OLD minus its non-key columns: one indexed pg_attribute
                -- scan and a jsonb operator, the cheapest way found (no json_each).
                SELECT array_agg(a.attname::text)
                  INTO nonkeys
                  FROM pg_attribute a
                 WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attnum <> ALL ((SELECT i.indkey FROM pg_index i
                                          WHERE i.indexrelid = key_index)::int2[]);
                old_rec := (to_jsonb(OLD) - coalesce(nonkeys, '{}'::text[]))::text;
            END IF;
        END IF;
    END IF;

    head := '{"schema":' || to_json(rel_schema)::text
        || ',"table":' || to_json(rel_name)::text
        || ',"commit_timestamp":"'
        || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        || '","type":"' || TG_OP || '","columns":[' || coalesce(cols, '') || '],"record":';
    msg := head || rec || ',"old_record":' || old_rec || ',"errors":'
        || CASE WHEN cardinality(errs) = 0 THEN 'null' ELSE to_json(errs)::text END || '}';
    IF octet_length(msg) > 1048576 THEN
        errs := errs || 'Error 413: Payload Too Large'::text;
        msg := head || tidings.trim_fields(rec) || ',"old_record":'
            || tidings.trim_fields(old_rec) || ',"errors":' || to_json(errs)::text || '}';
    END IF;

    INSERT INTO tidings.outbox (kind, payload) VALUES (1, msg) RETURNING id INTO row_id;
    IF octet_length(msg) + length(row_id::text) + 3 <= 7999 THEN
        PERFORM pg_notify('tidings', '1:' || row_id || ':' || msg);
    ELSE
        PERFORM pg_notify('tidings', '1:' || row_id);
    END IF;
    RETURN NULL;
END
$$;

-- Makes tidings.enabled agree with the catalog for tbl (and forgets dropped tables).
-- SECURITY DEFINER so that a table owner without rights on tidings.enabled can call
-- enable_changes(); it only records what pg_trigger says, so it cannot be misused.
CREATE OR REPLACE FUNCTION tidings.sync_enabled(tbl regclass)
    RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM tidings.enabled e
     WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = e.rel);
    IF EXISTS (SELECT 1 FROM pg_trigger t
                WHERE t.tgrelid = tbl AND t.tgname = 'tidings_changes'
                  AND t.tgfoid = 'tidings.capture_change()'::regprocedure) THEN
        INSERT INTO tidings.enabled (rel) VALUES (tbl) ON CONFLICT (rel) DO NOTHING;
    ELSE
        DELETE FROM tidings.enabled WHERE rel = tbl;
    END IF;
END
$$;

-- Runs with the caller's rights: the caller must own tbl (or hold TRIGGER on it).
CREATE OR REPLACE FUNCTION tidings.enable_changes(tbl regclass)
    RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class
                    WHERE oid = tbl AND relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION 'tidings.enable_changes: % is not a table', tbl;
    END IF;
    EXECUTE format('CREATE OR REPLACE TRIGGER tidings_changes'
                   ' AFTER INSERT OR UPDATE OR DELETE ON %s'
                   ' FOR EACH ROW EXECUTE FUNCTION tidings.capture_change()', tbl);
    PERFORM tidings.sync_enabled(tbl);
    PERFORM pg_catalog.pg_notify('tidings', '0:0');
END
$$;

CREATE OR REPLACE FUNCTION tidings.disable_changes(tbl regclass)
    RETURNS void
    LANGUAGE plpgsql
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                WHERE tgrelid = tbl AND tgname = 'tidings_changes') THEN
        EXECUTE format('DROP TRIGGER tidings_changes ON %s', tbl);
    END IF;
    PERFORM tidings.sync_enabled(tbl);
    PERFORM pg_catalog.pg_notify('tidings', '0:0');
END
$$;

-- Tables whose rows reach tidings.capture_change() (partitions are covered by their root).
CREATE OR REPLACE VIEW tidings.enabled_tables AS
SELECT n.nspname::text AS schema,
       c.relname::text AS name,
       c.relreplident = 'f' AS replica_full,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('name', a.attname, 'type', t.typname)
                                  ORDER BY a.attnum), '[]'::jsonb)
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_trigger tg
                WHERE tg.tgrelid = c.oid AND tg.tgparentid = 0
                  AND tg.tgfoid = 'tidings.capture_change()'::regprocedure)
 ORDER BY 1, 2;
