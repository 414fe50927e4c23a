-- tidings SQL, part 3: broadcast from the database (PROTOCOL.md 6.5).
--
-- tidings.send(payload, event, topic, private) is tidings' realtime.send: it stores
--   {"topic":<topic>,"event":<event>,"payload":<payload>,"private":<bool>,"id":"<uuid>"}
-- in tidings.outbox (kind 2) and sends NOTIFY tidings '2:<id>:<json>', or '2:<id>' when
-- that text would exceed 7999 bytes. The gateway delivers it as a broadcast to
-- `realtime:<topic>` subscribers whose channel privacy matches `private` (default true).
-- "id" is a fresh message uuid (the broadcast's meta.id); it is also added to the payload
-- object as "id" unless the payload already has an "id" (which is then left alone).
-- A NULL topic or event sends nothing and raises a WARNING, like Supabase's send, which
-- never aborts the caller's transaction for a bad message.
--
-- tidings.broadcast_changes(...) is the row-trigger helper with the argument order of
-- realtime.broadcast_changes: it sends
--   {"old_record":OLD|null,"record":NEW|null,"operation":..,"table":..,"schema":..,"id":..}
-- as a private broadcast, event event_name, on topic topic_name. Rows are rendered with
-- TimeZone = UTC, like tidings.capture_change().
--
-- Both are SECURITY DEFINER (they write the outbox as the schema owner); see 001 for who
-- may call them. Both return void, like Supabase's functions.

CREATE OR REPLACE FUNCTION tidings.send(payload jsonb, event text, topic text,
                                        private boolean DEFAULT true)
    RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    msg_id uuid := gen_random_uuid();         -- message id (meta.id)
    body jsonb := coalesce(payload, '{}'::jsonb); -- payload as delivered
    msg text;                                 -- the outbox payload, JSON text
    row_id bigint;                            -- outbox id
BEGIN
    IF topic IS NULL OR event IS NULL THEN
        RAISE WARNING 'ErrorSendingBroadcastMessage: topic and event must not be null';
        RETURN;
    END IF;
    IF jsonb_typeof(body) = 'object' AND NOT body ? 'id' THEN
        body := body || jsonb_build_object('id', msg_id);
    END IF;
    msg := jsonb_build_object('topic', topic, 'event', event, 'payload', body,
                              'private', coalesce(private, true), 'id', msg_id)::text;
    INSERT INTO tidings.outbox (kind, payload) VALUES (2, msg) RETURNING id INTO row_id;
    IF octet_length(msg) + length(row_id::text) + 3 <= 7999 THEN
        PERFORM pg_notify('tidings', '2:' || row_id || ':' || msg);
    ELSE
        PERFORM pg_notify('tidings', '2:' || row_id);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION tidings.broadcast_changes(topic_name text, event_name text,
                                                     operation text, table_name text,
                                                     table_schema text, new record,
                                                     old record, level text DEFAULT 'ROW')
    RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
AS $$
BEGIN
    IF level = 'STATEMENT' THEN
        RAISE EXCEPTION 'function can only be triggered for each row, not for each statement';
    END IF;
    IF operation IS NULL OR operation NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
        RAISE EXCEPTION 'Unexpected operation type: %', operation;
    END IF;
    PERFORM tidings.send(jsonb_build_object('old_record', old, 'record', new,
                                            'operation', operation, 'table', table_name,
                                            'schema', table_schema),
                         event_name, topic_name, true);
END
$$;
