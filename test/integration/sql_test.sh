#!/usr/bin/env bash
# Integration test of the SQL of tidings (listen/sql/*.sql and listen/sql/compat/*.sql)
# against a throwaway PostgreSQL (test/support/pgtmp.sh).
#   sql_test.sh SOURCE_DIR
# It installs the SQL as a non-superuser owner, twice (psql -f, then the whole text as one
# simple-query message like the C installer), with and without the compat file, then checks
# every object of the contract (listen/sql/*.sql headers) with exact expected values:
# change JSON and NOTIFY payloads, the 7999-byte NOTIFY boundary, 413 and 400 errors,
# enable/disable, enabled_tables, send/broadcast_changes, the realtime compat functions, a
# user's own pg_notify trigger next to ours, catchup, prune, and privileges. At the end it
# prints the time of 10,000 single-row INSERTs with and without the change trigger.
# Exits 1 with "FAIL: ..." at the first wrong value.
set -euo pipefail

src=$(cd "${1:?usage: sql_test.sh SOURCE_DIR}" && pwd)
sqldir=$src/listen/sql
export LC_ALL=C PGCLIENTENCODING=UTF8
# Sessions use a non-UTC zone: timestamptz values must still come out in UTC.
export PGTZ=America/New_York

tmp=$(mktemp -d)
chmod 755 "$tmp" # the server runs as user postgres when we are root
cleanup() {
    "$src/test/support/pgtmp.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# expect NAME EXPECTED ACTUAL
expect() {
    if [ "$2" != "$3" ]; then
        printf 'FAIL: %s\n  expected: %s\n  actual:   %s\n' "$1" "$2" "$3" >&2
        exit 1
    fi
    echo "ok - $1"
}

conn_base=$("$src/test/support/pgtmp.sh" start "$tmp/pg")
port=$(cat "$tmp/pg/port")
conn_as() { echo "host=127.0.0.1 port=$port dbname=${2:-tidings} user=$1"; }

# q [-u USER] [-d DB] SQL: runs SQL, prints unaligned tuples only.
q() {
    local user=postgres db=tidings
    while [ $# -gt 1 ]; do
        case $1 in
        -u) user=$2; shift 2 ;;
        -d) db=$2; shift 2 ;;
        *) break ;;
        esac
    done
    # On error, print a marker no expected value contains: a failing query inside "$(...)"
    # does not stop the script, but then its check fails.
    psql -X -q -At -v ON_ERROR_STOP=1 "$(conn_as "$user" "$db")" -c "$1" ||
        { echo "<query failed>"; return 1; }
}

# run [-u USER] [-d DB] SQL: like q, output discarded (for setup statements).
run() { q "$@" >/dev/null; }

# notifs USER SQL: runs "LISTEN tidings; LISTEN cache_invalidation;" then SQL in one
# session, prints the notifications received as "channel<TAB>payload" lines.
notifs() {
    psql -X -q -At -v ON_ERROR_STOP=1 "$(conn_as "$1")" \
        -c 'LISTEN tidings' -c 'LISTEN cache_invalidation' -f - <<<"$2" >"$tmp/notifs.out" ||
        fail "session failed: $2"
    sed -n 's/^Asynchronous notification "\([^"]*\)" with payload "\(.*\)" received from server process with PID [0-9]*\.$/\1\t\2/p' \
        "$tmp/notifs.out"
}

# Normalizes commit_timestamp so that change JSON can be compared as text.
norm_ts() { sed 's/"commit_timestamp":"[^"]*"/"commit_timestamp":"TS"/'; }

max_id() { q "SELECT coalesce(max(id), 0) FROM tidings.outbox"; }
payload_of() { q "SELECT payload FROM tidings.outbox WHERE id = $1"; }

# install CONNINFO [FILES...]: every listen/sql/*.sql (then FILES) in one transaction under
# the advisory lock, twice: with psql -f (statement by statement) and as one simple-query
# string (what PQexec of the concatenated text does).
install() {
    local conninfo=$1
    shift
    {
        echo "BEGIN;"
        echo "SELECT pg_advisory_xact_lock(hashtext('tidings'));"
        cat "$sqldir"/*.sql "$@"
        echo "COMMIT;"
    } >"$tmp/install.sql"
    psql -X -q -v ON_ERROR_STOP=1 -f "$tmp/install.sql" "$conninfo" >/dev/null 2>"$tmp/install.err" ||
        { cat "$tmp/install.err" >&2; fail "install with psql -f"; }
    psql -X -q -v ON_ERROR_STOP=1 -c "$(cat "$tmp/install.sql")" "$conninfo" >/dev/null 2>"$tmp/install.err" ||
        { cat "$tmp/install.err" >&2; fail "install as one query string"; }
}

echo "# PostgreSQL: $conn_base"

# ---------------------------------------------------------------- roles and install
run "CREATE ROLE tidings_owner LOGIN; GRANT CREATE ON DATABASE tidings TO tidings_owner;
   CREATE ROLE app_owner LOGIN; GRANT CREATE ON SCHEMA public TO app_owner;
   CREATE ROLE app_user LOGIN;
   ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES TO app_user;"
install "$(conn_as tidings_owner)"
install "$(conn_as tidings_owner)"
expect "meta version" "1" "$(q "SELECT value FROM tidings.meta WHERE key = 'version'")"
expect "objects owned by the non-superuser installer" "tidings_owner|tidings_owner|tidings_owner" \
    "$(q "SELECT n.nspowner::regrole, c.relowner::regrole, p.proowner::regrole
            FROM pg_namespace n, pg_class c, pg_proc p
           WHERE n.nspname = 'tidings' AND c.oid = 'tidings.outbox'::regclass
             AND p.oid = 'tidings.capture_change()'::regprocedure")"
expect "no realtime schema without compat" "0" \
    "$(q "SELECT count(*) FROM pg_namespace WHERE nspname = 'realtime'")"
install "$(conn_as tidings_owner)" "$sqldir"/compat/*.sql
install "$(conn_as tidings_owner)" "$sqldir"/compat/*.sql
expect "compat installed" "1" "$(q "SELECT count(*) FROM pg_namespace WHERE nspname = 'realtime'")"
expect "objects of the contract" \
    "tidings.broadcast_changes|tidings.capture_change|tidings.catchup|tidings.disable_changes|tidings.enable_changes|tidings.prune|tidings.send" \
    "$(q "SELECT string_agg(oid::regproc::text, '|' ORDER BY proname) FROM pg_proc
           WHERE pronamespace = 'tidings'::regnamespace
             AND proname NOT IN ('sync_enabled', 'trim_fields')")"
expect "tables of the contract" "cursor|enabled|enabled_tables|meta|outbox" \
    "$(q "SELECT string_agg(relname, '|' ORDER BY relname) FROM pg_class
           WHERE relnamespace = 'tidings'::regnamespace AND relkind IN ('r', 'v')")"
expect "outbox columns" "id bigint|kind smallint|payload text|created_at timestamp with time zone" \
    "$(q "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), '|' ORDER BY attnum)
            FROM pg_attribute WHERE attrelid = 'tidings.outbox'::regclass AND attnum > 0")"
expect "outbox index on created_at" "1" \
    "$(q "SELECT count(*) FROM pg_index WHERE indrelid = 'tidings.outbox'::regclass
           AND indkey::text = (SELECT attnum::text FROM pg_attribute
                                WHERE attrelid = 'tidings.outbox'::regclass AND attname = 'created_at')")"
expect "cursor columns" "name text|last_id bigint|gaps bigint[]|updated_at timestamp with time zone" \
    "$(q "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), '|' ORDER BY attnum)
            FROM pg_attribute WHERE attrelid = 'tidings.cursor'::regclass AND attnum > 0")"
expect "PUBLIC cannot read the outbox" "f|f|t" \
    "$(q "SELECT has_table_privilege('app_user', 'tidings.outbox', 'SELECT'),
                 has_table_privilege('app_user', 'tidings.cursor', 'SELECT'),
                 has_schema_privilege('app_user', 'tidings', 'USAGE')")"

# ---------------------------------------------------------------- row changes, all types
run "CREATE TABLE types (id int4 PRIMARY KEY, i8 int8, n numeric, f float8, b bool, tx text,
     vc varchar(20), u uuid, j json, jb jsonb, tz timestamptz, ts timestamp, d date, arr int4[])"
out=$(notifs postgres "SELECT tidings.enable_changes('types'); SELECT tidings.enable_changes('public.types');")
expect "enable_changes notifies 0:0 (each time)" "$(printf 'tidings\t0:0\ntidings\t0:0')" "$out"
expect "enable twice: one trigger" "1" \
    "$(q "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'types'::regclass AND NOT tgisinternal")"

cols='[{"name":"id","type":"int4"},{"name":"i8","type":"int8"},{"name":"n","type":"numeric"},{"name":"f","type":"float8"},{"name":"b","type":"bool"},{"name":"tx","type":"text"},{"name":"vc","type":"varchar"},{"name":"u","type":"uuid"},{"name":"j","type":"json"},{"name":"jb","type":"jsonb"},{"name":"tz","type":"timestamptz"},{"name":"ts","type":"timestamp"},{"name":"d","type":"date"},{"name":"arr","type":"_int4"}]'
rec1='{"id":1,"i8":9007199254740993,"n":12.50,"f":1.5,"b":true,"tx":"he said \"hi\"\nx","vc":"vé","u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","j":{"a": [1, 2]},"jb":{"b": 1},"tz":"2025-05-01T12:34:56.123456+00:00","ts":"2025-05-01T12:34:56.5","d":"2025-05-01","arr":[1,2,null]}'
rec1u=${rec1/\"b\":true/\"b\":false}
rec2='{"id":2,"i8":null,"n":null,"f":null,"b":null,"tx":null,"vc":null,"u":null,"j":null,"jb":null,"tz":null,"ts":null,"d":null,"arr":null}'
head='{"schema":"public","table":"types","commit_timestamp":"TS"'

before=$(max_id)
# DML by a role without any privilege on schema tidings' tables: the trigger is SECURITY DEFINER.
out=$(notifs app_user "INSERT INTO types VALUES (1, 9007199254740993, 12.50, 1.5, true, E'he said \"hi\"\nx', 'vé',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2]}', '{\"b\":1}',
        '2025-05-01 08:34:56.123456-04', '2025-05-01 12:34:56.5', '2025-05-01', '{1,2,NULL}');
    INSERT INTO types (id) VALUES (2);
    UPDATE types SET b = false WHERE id = 1;
    DELETE FROM types WHERE id = 1;")
expect "4 outbox rows of kind 1" "4|1" \
    "$(q "SELECT count(*), string_agg(DISTINCT kind::text, ',') FROM tidings.outbox WHERE id > $before")"
expect "INSERT change" "$head,\"type\":\"INSERT\",\"columns\":$cols,\"record\":$rec1,\"old_record\":null,\"errors\":null}" \
    "$(payload_of $((before + 1)) | norm_ts)"
expect "INSERT of NULLs" "$head,\"type\":\"INSERT\",\"columns\":$cols,\"record\":$rec2,\"old_record\":null,\"errors\":null}" \
    "$(payload_of $((before + 2)) | norm_ts)"
expect "UPDATE change: old_record is the primary key" \
    "$head,\"type\":\"UPDATE\",\"columns\":$cols,\"record\":$rec1u,\"old_record\":{\"id\": 1},\"errors\":null}" \
    "$(payload_of $((before + 3)) | norm_ts)"
expect "DELETE change: record null" \
    "$head,\"type\":\"DELETE\",\"columns\":$cols,\"record\":null,\"old_record\":{\"id\": 1},\"errors\":null}" \
    "$(payload_of $((before + 4)) | norm_ts)"
expect "NOTIFY payloads are 1:<id>:<json>" \
    "$(q "SELECT string_agg(E'tidings\t1:' || id || ':' || payload, E'\n' ORDER BY id)
            FROM tidings.outbox WHERE id > $before")" "$out"

# commit_timestamp: the transaction timestamp, UTC, milliseconds.
before=$(max_id)
ts=$(q "BEGIN; INSERT INTO types (id) VALUES (3);
        SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'); COMMIT;")
[[ $ts =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$ ]] || fail "timestamp format: $ts"
expect "commit_timestamp" "$ts" \
    "$(q "SELECT payload::json ->> 'commit_timestamp' FROM tidings.outbox WHERE id = $before + 1")"

# REPLICA IDENTITY FULL: the whole old row.
run "ALTER TABLE types REPLICA IDENTITY FULL"
before=$(max_id)
run "UPDATE types SET tx = 'x' WHERE id = 2; DELETE FROM types WHERE id = 2"
expect "FULL: UPDATE old_record is the whole row" \
    "$head,\"type\":\"UPDATE\",\"columns\":$cols,\"record\":${rec2/\"tx\":null/\"tx\":\"x\"},\"old_record\":$rec2,\"errors\":null}" \
    "$(payload_of $((before + 1)) | norm_ts)"
expect "FULL: DELETE old_record is the whole row" \
    "$head,\"type\":\"DELETE\",\"columns\":$cols,\"record\":null,\"old_record\":${rec2/\"tx\":null/\"tx\":\"x\"},\"errors\":null}" \
    "$(payload_of $((before + 2)) | norm_ts)"
# ... reduced to the primary key for a DELETE when the table has row-level security.
run "ALTER TABLE types ENABLE ROW LEVEL SECURITY"
before=$(max_id)
run "DELETE FROM types WHERE id = 3"
expect "FULL + RLS: DELETE old_record is the primary key" "{\"id\": 3}" \
    "$(q "SELECT payload::json -> 'old_record' FROM tidings.outbox WHERE id = $before + 1")"
run "ALTER TABLE types DISABLE ROW LEVEL SECURITY; ALTER TABLE types REPLICA IDENTITY DEFAULT"

# ALTER TABLE takes effect at the next row (nothing cached).
before=$(max_id)
run "ALTER TABLE types ADD COLUMN extra int2; ALTER TABLE types RENAME COLUMN id TO key;
   INSERT INTO types (key, extra) VALUES (4, 7); UPDATE types SET extra = 8;
   ALTER TABLE types DROP COLUMN extra; ALTER TABLE types RENAME COLUMN key TO id;"
expect "ALTER TABLE: new column and name in columns" \
    '{"name":"key","type":"int4"}|{"name":"extra","type":"int2"}|{"key": 4}' \
    "$(q "SELECT (payload::json -> 'columns' -> 0)::text || '|' || (payload::json -> 'columns' -> 14)::text
                 || '|' || (payload::json -> 'old_record')::text
            FROM tidings.outbox WHERE id = $before + 2")"

# REPLICA IDENTITY USING INDEX: the columns of that index.
run "CREATE TABLE ri (id int PRIMARY KEY, code text NOT NULL, v int);
   CREATE UNIQUE INDEX ri_code ON ri (code); ALTER TABLE ri REPLICA IDENTITY USING INDEX ri_code;
   SELECT tidings.enable_changes('ri'); INSERT INTO ri VALUES (1, 'c1', 0);"
before=$(max_id)
run "UPDATE ri SET v = 1"
expect "USING INDEX: old_record is the index columns" '{"code": "c1"}' \
    "$(q "SELECT payload::json -> 'old_record' FROM tidings.outbox WHERE id = $before + 1")"

# Names that need quoting, in a schema outside the search_path.
run "CREATE SCHEMA \"S p\"; CREATE TABLE \"S p\".\"Odd \"\"Name\"\"\" (\"Key\" int PRIMARY KEY);
     SELECT tidings.enable_changes('\"S p\".\"Odd \"\"Name\"\"\"');
     INSERT INTO \"S p\".\"Odd \"\"Name\"\"\" VALUES (1); DELETE FROM \"S p\".\"Odd \"\"Name\"\"\";"
expect "quoted names" '{"schema":"S p","table":"Odd \"Name\"","commit_timestamp":"TS","type":"DELETE","columns":[{"name":"Key","type":"int4"}],"record":null,"old_record":{"Key": 1},"errors":null}' \
    "$(payload_of "$(max_id)" | norm_ts)"
run "SELECT tidings.disable_changes('\"S p\".\"Odd \"\"Name\"\"\"')"

# ---------------------------------------------------------------- 7999-byte NOTIFY boundary
run "CREATE TABLE big (id int PRIMARY KEY, tx text); SELECT tidings.enable_changes('big')"
before=$(max_id)
run "INSERT INTO big VALUES (1, '')"
base=$(q "SELECT octet_length(payload) FROM tidings.outbox WHERE id = $before + 1")
# fill BYTES OUTBOX_ID: a text of 2-byte 'é' (plus one 'a' if odd) making the NOTIFY text
# '1:<id>:<json>' exactly BYTES long.
fill() {
    local need=$(($1 - 3 - ${#2} - base))
    echo "repeat('é', $((need / 2))) || repeat('a', $((need % 2)))"
}
id2=$((before + 2))
id3=$((before + 3))
out=$(notifs app_user "INSERT INTO big VALUES (2, $(fill 7999 $id2)); INSERT INTO big VALUES (3, $(fill 8000 $id3));")
line1=$(sed -n 1p <<<"$out")
line2=$(sed -n 2p <<<"$out")
expect "7999 bytes: NOTIFY carries the JSON" "$(printf 'tidings\t1:%s:%s' $id2 "$(payload_of $id2)")" "$line1"
expect "7999 bytes: length in bytes" "7999" "$(printf '%s' "${line1#*$'\t'}" | wc -c | tr -d ' ')"
expect "8000 bytes: NOTIFY carries the id only" "$(printf 'tidings\t1:%s' $id3)" "$line2"
expect "8000 bytes: the outbox holds the whole JSON" "$((8000 - 3 - ${#id3}))" \
    "$(q "SELECT octet_length(payload) FROM tidings.outbox WHERE id = $id3")"
expect "multi-byte text really used" "t" \
    "$(q "SELECT octet_length(tx) > length(tx) FROM big WHERE id = 3")"

# ---------------------------------------------------------------- 413: over 1 MiB
run "CREATE TABLE huge (id int PRIMARY KEY, s64 text, s65 text, blob text);
   SELECT tidings.enable_changes('huge')"
before=$(max_id)
out=$(notifs app_user "INSERT INTO huge VALUES (1, repeat('a', 62), repeat('b', 63), repeat('x', 1100000));
    UPDATE huge SET s64 = 'y';")
h413='{"schema":"public","table":"huge","commit_timestamp":"TS"'
c413='[{"name":"id","type":"int4"},{"name":"s64","type":"text"},{"name":"s65","type":"text"},{"name":"blob","type":"text"}]'
a62=$(printf 'a%.0s' $(seq 62))
expect "413 INSERT keeps the fields of at most 64 bytes" \
    "$h413,\"type\":\"INSERT\",\"columns\":$c413,\"record\":{\"id\":1,\"s64\":\"$a62\"},\"old_record\":null,\"errors\":[\"Error 413: Payload Too Large\"]}" \
    "$(payload_of $((before + 1)) | norm_ts)"
expect "413 UPDATE" \
    "$h413,\"type\":\"UPDATE\",\"columns\":$c413,\"record\":{\"id\":1,\"s64\":\"y\"},\"old_record\":{\"id\":1},\"errors\":[\"Error 413: Payload Too Large\"]}" \
    "$(payload_of $((before + 2)) | norm_ts)"
expect "413 NOTIFY carries the trimmed JSON" \
    "$(q "SELECT string_agg(E'tidings\t1:' || id || ':' || payload, E'\n' ORDER BY id)
            FROM tidings.outbox WHERE id > $before")" "$out"

# ---------------------------------------------------------------- table without primary key
run "CREATE TABLE nopk (a int, b text); SELECT tidings.enable_changes('nopk')"
before=$(max_id)
run "INSERT INTO nopk VALUES (1, 'x'); UPDATE nopk SET b = 'y'; DELETE FROM nopk"
hn='{"schema":"public","table":"nopk","commit_timestamp":"TS","type":'
cn='"columns":[{"name":"a","type":"int4"},{"name":"b","type":"text"}]'
e400='["Error 400: Bad Request, no primary key"]'
expect "no PK: INSERT is normal" "$hn\"INSERT\",$cn,\"record\":{\"a\":1,\"b\":\"x\"},\"old_record\":null,\"errors\":null}" \
    "$(payload_of $((before + 1)) | norm_ts)"
expect "no PK: UPDATE has record, no old_record, error 400" \
    "$hn\"UPDATE\",$cn,\"record\":{\"a\":1,\"b\":\"y\"},\"old_record\":null,\"errors\":$e400}" \
    "$(payload_of $((before + 2)) | norm_ts)"
expect "no PK: DELETE has error 400" "$hn\"DELETE\",$cn,\"record\":null,\"old_record\":null,\"errors\":$e400}" \
    "$(payload_of $((before + 3)) | norm_ts)"
run "ALTER TABLE nopk REPLICA IDENTITY FULL; INSERT INTO nopk VALUES (2, 'z')"
before=$(max_id)
run "DELETE FROM nopk"
expect "no PK + FULL: DELETE has the old row" "$hn\"DELETE\",$cn,\"record\":null,\"old_record\":{\"a\":2,\"b\":\"z\"},\"errors\":null}" \
    "$(payload_of $((before + 1)) | norm_ts)"

# ---------------------------------------------------------------- partitioned table
run "CREATE TABLE pt (id int, k int, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
   CREATE TABLE pt1 PARTITION OF pt FOR VALUES IN (1); SELECT tidings.enable_changes('pt');
   CREATE TABLE pt2 PARTITION OF pt FOR VALUES IN (2);"
before=$(max_id)
run "INSERT INTO pt VALUES (1, 1), (2, 2); DELETE FROM pt2"
expect "partitions report their root table" "pt|pt|pt|{\"k\": 2, \"id\": 2}" \
    "$(q "SELECT string_agg(payload::json ->> 'table', '|' ORDER BY id) || '|'
                 || (array_agg(payload::json ->> 'old_record' ORDER BY id))[3]
            FROM tidings.outbox WHERE id > $before")"

# ---------------------------------------------------------------- enabled_tables, disable
expect "enabled_tables" "public|big|f
public|huge|f
public|nopk|t
public|pt|f
public|ri|f
public|types|f" "$(q "SELECT schema, name, replica_full FROM tidings.enabled_tables")"
expect "enabled_tables columns" "$cols" \
    "$(q "SELECT columns FROM tidings.enabled_tables WHERE name = 'types'" | tr -d ' ')"
expect "enabled table bookkeeping" "big,huge,nopk,pt,ri,types" \
    "$(q "SELECT string_agg(rel::text, ',' ORDER BY rel::text) FROM tidings.enabled")"
out=$(notifs postgres "SELECT tidings.disable_changes('big'); SELECT tidings.disable_changes('big');")
expect "disable_changes notifies 0:0" "$(printf 'tidings\t0:0\ntidings\t0:0')" "$out"
before=$(max_id)
out=$(notifs postgres "INSERT INTO big VALUES (10, 'after disable')")
expect "disabled: no outbox row" "$before" "$(max_id)"
expect "disabled: no NOTIFY" "" "$out"
expect "disabled: trigger gone" "0" "$(q "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'big'::regclass")"
expect "disabled: not listed" "huge,nopk,pt,ri,types" \
    "$(q "SELECT string_agg(name, ',') FROM tidings.enabled_tables")"
run "DROP TABLE ri"
expect "dropped table: not listed" "huge,nopk,pt,types" \
    "$(q "SELECT string_agg(name, ',') FROM tidings.enabled_tables")"
run "CREATE VIEW v AS SELECT 1 AS x"
if run "SELECT tidings.enable_changes('v')" 2>/dev/null; then fail "enable_changes accepted a view"; fi
echo "ok - enable_changes refuses a view"

# ---------------------------------------------------------------- privileges of enable_changes
run -u app_owner "CREATE TABLE owned (id int PRIMARY KEY); SELECT tidings.enable_changes('owned')"
expect "a table owner (not superuser) can enable" "owned" \
    "$(q "SELECT name FROM tidings.enabled_tables WHERE name = 'owned'")"
if run -u app_user "SELECT tidings.disable_changes('owned')" 2>/dev/null; then
    fail "a role that does not own the table disabled its changes"
fi
echo "ok - a non-owner cannot disable"
if run -u app_user "SELECT count(*) FROM tidings.outbox" 2>/dev/null; then fail "app_user read the outbox"; fi
echo "ok - a plain role cannot read the outbox"

# ---------------------------------------------------------------- the users' own trigger
run "CREATE TABLE business_partners (id serial PRIMARY KEY, user_id uuid, business_id int,
     status text, created_at timestamptz DEFAULT now());
   CREATE OR REPLACE FUNCTION notify_cache_invalidation() RETURNS trigger AS \$\$
   BEGIN
       PERFORM pg_notify('cache_invalidation', json_build_object(
           'table', TG_TABLE_NAME, 'operation', TG_OP,
           'record_id', COALESCE(NEW.id, OLD.id))::text);
       RETURN COALESCE(NEW, OLD);
   END; \$\$ LANGUAGE plpgsql;
   CREATE TRIGGER cache_invalidation_trigger AFTER INSERT OR UPDATE OR DELETE
       ON business_partners FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();
   SELECT tidings.enable_changes('business_partners');"
before=$(max_id)
out=$(notifs postgres "INSERT INTO business_partners (user_id, business_id, status)
        VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 7, 'pending');
    UPDATE business_partners SET status = 'active';
    DELETE FROM business_partners;")
expect "cache_invalidation still fires" \
    "$(printf 'cache_invalidation\t{"table" : "business_partners", "operation" : "INSERT", "record_id" : 1}
cache_invalidation\t{"table" : "business_partners", "operation" : "UPDATE", "record_id" : 1}
cache_invalidation\t{"table" : "business_partners", "operation" : "DELETE", "record_id" : 1}')" \
    "$(grep '^cache_invalidation' <<<"$out")"
expect "tidings fires alongside" \
    "$(q "SELECT string_agg(E'tidings\t1:' || id || ':' || payload, E'\n' ORDER BY id)
            FROM tidings.outbox WHERE id > $before")" "$(grep '^tidings' <<<"$out")"
expect "tidings change types" "INSERT,UPDATE,DELETE" \
    "$(q "SELECT string_agg(payload::json ->> 'type', ',' ORDER BY id) FROM tidings.outbox WHERE id > $before")"

# ---------------------------------------------------------------- tidings.send
uuid_re='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
before=$(max_id)
out=$(notifs app_user "SELECT tidings.send('{\"a\": 1}', 'ev', 'room1');
    SELECT tidings.send('{\"id\": 7, \"b\": \"é\"}', 'ev2', 'room2', false);")
expect "send: kind 2 rows" "2,2" "$(q "SELECT string_agg(kind::text, ',' ORDER BY id) FROM tidings.outbox WHERE id > $before")"
id1=$(q "SELECT payload::json ->> 'id' FROM tidings.outbox WHERE id = $before + 1")
[[ $id1 =~ $uuid_re ]] || fail "send: id is not a uuid: $id1"
expect "send: payload shape, id added, private by default" \
    "{\"id\": \"$id1\", \"event\": \"ev\", \"topic\": \"room1\", \"payload\": {\"a\": 1, \"id\": \"$id1\"}, \"private\": true}" \
    "$(payload_of $((before + 1)))"
id2=$(q "SELECT payload::json ->> 'id' FROM tidings.outbox WHERE id = $before + 2")
[[ $id2 =~ $uuid_re ]] || fail "send: id is not a uuid: $id2"
expect "send: an existing payload id is kept, private false" \
    "{\"id\": \"$id2\", \"event\": \"ev2\", \"topic\": \"room2\", \"payload\": {\"b\": \"é\", \"id\": 7}, \"private\": false}" \
    "$(payload_of $((before + 2)))"
expect "send: NOTIFY 2:<id>:<json>" \
    "$(q "SELECT string_agg(E'tidings\t2:' || id || ':' || payload, E'\n' ORDER BY id)
            FROM tidings.outbox WHERE id > $before")" "$out"
before=$(max_id)
run "SELECT tidings.send('{}', NULL, 'room1')" 2>/dev/null
expect "send: a NULL event sends nothing" "$before" "$(max_id)"
out=$(notifs app_user "SELECT tidings.send(jsonb_build_object('s', repeat('x', 8000)), 'ev', 'room1')")
expect "send: a large broadcast NOTIFY carries the id only" "$(printf 'tidings\t2:%s' $((before + 1)))" "$out"

# ---------------------------------------------------------------- broadcast_changes and compat
run "CREATE TABLE bc (id int PRIMARY KEY, name text, at timestamptz);
   CREATE FUNCTION bc_trg() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN
       PERFORM tidings.broadcast_changes('bc:' || COALESCE(NEW.id, OLD.id), TG_OP, TG_OP,
                                         TG_TABLE_NAME, TG_TABLE_SCHEMA, NEW, OLD);
       RETURN NULL;
   END \$\$;
   CREATE TRIGGER bc_trg AFTER INSERT OR UPDATE OR DELETE ON bc
       FOR EACH ROW EXECUTE FUNCTION bc_trg();"
before=$(max_id)
run -u app_user "INSERT INTO bc VALUES (1, 'x', '2025-05-01 12:00:00+00'); UPDATE bc SET name = 'y'; DELETE FROM bc"
bid() { q "SELECT payload::json ->> 'id' FROM tidings.outbox WHERE id = $1"; }
# jsonb orders keys by length, then bytes.
r1='{"at": "2025-05-01T12:00:00+00:00", "id": 1, "name": "x"}'
r2='{"at": "2025-05-01T12:00:00+00:00", "id": 1, "name": "y"}'
b=$(bid $((before + 1)))
expect "broadcast_changes INSERT" \
    "{\"id\": \"$b\", \"event\": \"INSERT\", \"topic\": \"bc:1\", \"payload\": {\"id\": \"$b\", \"table\": \"bc\", \"record\": $r1, \"schema\": \"public\", \"operation\": \"INSERT\", \"old_record\": null}, \"private\": true}" \
    "$(payload_of $((before + 1)))"
b=$(bid $((before + 2)))
expect "broadcast_changes UPDATE" \
    "{\"id\": \"$b\", \"event\": \"UPDATE\", \"topic\": \"bc:1\", \"payload\": {\"id\": \"$b\", \"table\": \"bc\", \"record\": $r2, \"schema\": \"public\", \"operation\": \"UPDATE\", \"old_record\": $r1}, \"private\": true}" \
    "$(payload_of $((before + 2)))"
b=$(bid $((before + 3)))
expect "broadcast_changes DELETE" \
    "{\"id\": \"$b\", \"event\": \"DELETE\", \"topic\": \"bc:1\", \"payload\": {\"id\": \"$b\", \"table\": \"bc\", \"record\": null, \"schema\": \"public\", \"operation\": \"DELETE\", \"old_record\": $r2}, \"private\": true}" \
    "$(payload_of $((before + 3)))"
if run "SELECT tidings.broadcast_changes('t', 'e', 'INSERT', 'bc', 'public', NULL::bc, NULL::bc, 'STATEMENT')" 2>/dev/null; then
    fail "broadcast_changes accepted level STATEMENT"
fi
echo "ok - broadcast_changes refuses level STATEMENT"

expect "realtime.send signature" "payload jsonb, event text, topic text, private boolean DEFAULT true|void" \
    "$(q "SELECT pg_get_function_arguments('realtime.send'::regproc) || '|' || pg_get_function_result('realtime.send'::regproc)")"
expect "realtime.broadcast_changes signature" \
    "topic_name text, event_name text, operation text, table_name text, table_schema text, new record, old record, level text DEFAULT 'ROW'::text|void" \
    "$(q "SELECT pg_get_function_arguments('realtime.broadcast_changes'::regproc) || '|'
                 || pg_get_function_result('realtime.broadcast_changes'::regproc)")"
run "CREATE OR REPLACE FUNCTION bc_trg() RETURNS trigger LANGUAGE plpgsql AS \$\$
   BEGIN
       PERFORM realtime.broadcast_changes('bc:' || COALESCE(NEW.id, OLD.id), TG_OP, TG_OP,
                                          TG_TABLE_NAME, TG_TABLE_SCHEMA, NEW, OLD);
       RETURN NULL;
   END \$\$;"
before=$(max_id)
run -u app_user "SELECT realtime.send('{\"m\": 1}', 'hello', 'lobby');
               SELECT realtime.send(payload => '{}', event => 'e', topic => 't', private => false);
               INSERT INTO bc VALUES (5, 'z', NULL);"
expect "realtime.send and realtime.broadcast_changes write the outbox" \
    "2|lobby|hello|{\"m\": 1}|true
2|t|e|{}|false
2|bc:5|INSERT|{\"table\": \"bc\", \"record\": {\"at\": null, \"id\": 5, \"name\": \"z\"}, \"schema\": \"public\", \"operation\": \"INSERT\", \"old_record\": null}|true" \
    "$(q "SELECT kind, p ->> 'topic', p ->> 'event', (p -> 'payload') - 'id', p -> 'private'
            FROM (SELECT id, kind, payload::jsonb AS p FROM tidings.outbox WHERE id > $before) s ORDER BY id")"

# Compat over an existing schema realtime (e.g. restored from Supabase), in another database.
run "CREATE DATABASE pre"
run -d pre "CREATE SCHEMA realtime;
   CREATE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
       RETURNS void LANGUAGE plpgsql AS \$\$ BEGIN RAISE EXCEPTION 'old send'; END \$\$;"
install "$(conn_as postgres pre)" "$sqldir"/compat/*.sql
install "$(conn_as postgres pre)" "$sqldir"/compat/*.sql
run -d pre "SELECT realtime.send('{}', 'e', 't')"
expect "compat replaces an existing realtime.send" "1" "$(q -d pre "SELECT count(*) FROM tidings.outbox")"

# Re-installing over a database in use keeps the triggers working.
install "$(conn_as tidings_owner)" "$sqldir"/compat/*.sql
before=$(max_id)
run "INSERT INTO types (id) VALUES (9)"
expect "re-install: changes still captured" "INSERT" \
    "$(q "SELECT payload::json ->> 'type' FROM tidings.outbox WHERE id = $before + 1")"

# ---------------------------------------------------------------- catchup, prune, cursor
run "TRUNCATE tidings.outbox"
run "SELECT tidings.send('{}', 'e', 'c' || i) FROM generate_series(1, 6) i"
mapfile -t ids < <(q "SELECT id FROM tidings.outbox ORDER BY id")
[ ${#ids[@]} -eq 6 ] || fail "catchup setup: ${#ids[*]} rows"
cu() { q "SELECT string_agg(id::text || ':' || kind || ':' || (payload::json ->> 'topic'), ',') FROM tidings.catchup($1)"; }
expect "catchup after id + extra ids, in id order" \
    "${ids[0]}:2:c1,${ids[2]}:2:c3,${ids[4]}:2:c5,${ids[5]}:2:c6" "$(cu "${ids[3]}, ARRAY[${ids[2]}, ${ids[0]}, 999999], 10")"
expect "catchup max_rows" "${ids[0]}:2:c1,${ids[2]}:2:c3" "$(cu "${ids[3]}, ARRAY[${ids[2]}, ${ids[0]}], 2")"
expect "catchup: an extra id above after_id appears once" "${ids[4]}:2:c5,${ids[5]}:2:c6" \
    "$(cu "${ids[3]}, ARRAY[${ids[4]}], 10")"
expect "catchup: nothing after the last id" "" "$(cu "${ids[5]}, '{}', 10")"
expect "catchup: NULL extra ids" "${ids[5]}:2:c6" "$(cu "${ids[4]}, NULL, 10")"
run "UPDATE tidings.outbox SET created_at = clock_timestamp() - interval '2 hours' WHERE id <= ${ids[3]}"
expect "prune deletes the old rows and returns the count" "4" "$(q "SELECT tidings.prune(3600)")"
expect "prune left the recent rows" "${ids[4]},${ids[5]}" "$(q "SELECT string_agg(id::text, ',' ORDER BY id) FROM tidings.outbox")"
expect "prune again deletes nothing" "0" "$(q "SELECT tidings.prune(3600)")"
run "INSERT INTO tidings.cursor (name, last_id) VALUES ('gw', ${ids[5]})"
expect "cursor defaults" "gw|${ids[5]}|{}|t" \
    "$(q "SELECT name, last_id, gaps, updated_at IS NOT NULL FROM tidings.cursor")"

# ---------------------------------------------------------------- timing (informational)
run "CREATE TABLE perf_plain (id int PRIMARY KEY, i8 int8, n numeric, tx text, b bool, tz timestamptz);
   CREATE TABLE perf_changes (LIKE perf_plain INCLUDING ALL);
   SELECT tidings.enable_changes('perf_changes');"
for t in perf_plain perf_changes; do
    ms=$(q "DO \$\$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN
              FOR i IN 1..10000 LOOP
                  INSERT INTO $t VALUES (i, i, i * 1.5, 'row ' || i, true, now());
              END LOOP;
              PERFORM set_config('tidings_test.ms',
                  round(extract(epoch FROM clock_timestamp() - t0) * 1000)::text, false);
            END \$\$; SELECT current_setting('tidings_test.ms')")
    echo "# 10000 single-row INSERTs into $t: $ms ms"
done

echo "PASS: sql_test"
