-- tidings SQL, part 4: catch-up and retention of tidings.outbox.
--
-- The listener remembers the highest outbox id it processed (tidings.cursor.last_id) and
-- the lower ids that were still uncommitted when it saw a higher one (gaps: ids are taken
-- at INSERT time, so they may commit out of order). After a reconnect it calls
--   tidings.catchup(last_id, gaps, batch)
-- which returns the rows with id > after_id, plus the rows whose id is in extra_ids, in id
-- order, at most max_rows of them (two index scans on the primary key, merged).
-- A NULL after_id means 0 (everything); a NULL max_rows means no limit.
--
-- tidings.prune(window_s) deletes the rows older than window_s seconds (by created_at,
-- indexed) and returns how many it deleted. The gateway calls it periodically with its
-- catch-up window. A negative window counts as 0.
--
-- Both run with the caller's rights (SELECT/DELETE on tidings.outbox needed).

CREATE OR REPLACE FUNCTION tidings.catchup(after_id bigint, extra_ids bigint[], max_rows int)
    RETURNS TABLE (id bigint, kind smallint, payload text)
    LANGUAGE sql
    STABLE
AS $$
    SELECT r.id, r.kind, r.payload
      FROM ((SELECT o.id, o.kind, o.payload
               FROM tidings.outbox o
              WHERE o.id > coalesce(after_id, 0)
              ORDER BY o.id
              LIMIT max_rows)
            UNION ALL
            (SELECT o.id, o.kind, o.payload
               FROM tidings.outbox o
              WHERE o.id = ANY (extra_ids) AND o.id <= coalesce(after_id, 0))) AS r
     ORDER BY r.id
     LIMIT max_rows
$$;

CREATE OR REPLACE FUNCTION tidings.prune(window_s int)
    RETURNS bigint
    LANGUAGE sql
AS $$
    WITH gone AS (
        DELETE FROM tidings.outbox
         WHERE created_at < clock_timestamp() - make_interval(secs => greatest(window_s, 0))
        RETURNING 1
    )
    SELECT count(*) FROM gone
$$;
