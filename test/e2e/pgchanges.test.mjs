// pgchanges.test.mjs: PostgreSQL into the gateway (PROTOCOL 5 and 6.5, the SQL contract of
// schema tidings) with the real supabase-js client and a real throwaway PostgreSQL.
// One server and one gateway for the file: `tidings sql install` first, then the test
// tables (enabled with tidings.enable_changes), then the gateway with --pg, row rules, a
// private-channel rule, the realtime compat schema and two forwarded NOTIFY channels.
// Covers typed INSERT/UPDATE/DELETE payloads, event and column filters with PostgreSQL type
// semantics, filter errors, tables not enabled, replica identity, rows larger than a NOTIFY,
// commit order, row rules, tidings.send / realtime.send / realtime.broadcast_changes,
// forwarded NOTIFYs (USERS.md's cache_invalidation trigger) and the `sql` subcommands.

import assert from 'node:assert/strict';

import { client, collect, never, sign, sleep, subscribe, test, uniq, waitFor } from './lib.mjs';
import { changeFrames, orderProblems, pgChannel, pgChannelOk, psql, tidings, usePgGateway } from './pglib.mjs';

const admin = sign({ role: 'admin', sub: 'admin-1' });
const partner1 = sign({ role: 'user', sub: 'partner-1', business_id: '1' }); // Cognito-style string claim
const partner2 = sign({ role: 'user', sub: 'partner-2', business_id: 2 }); // numeric claim
const nobody = sign({ role: 'user', sub: 'nobody' }); // no business_id: no row rule matches

const TABLES_SQL = `
SET client_min_messages = warning;
CREATE TABLE public.typed (id int8 PRIMARY KEY, i int4, f float8, num numeric, b bool, j jsonb,
    js json, t text, vc varchar(20), ts timestamptz, tsn timestamp, d date, u uuid, arr int4[],
    tarr text[], nul text);
CREATE TABLE public.ft (id bigserial PRIMARY KEY, tag text, n numeric, t text, b boolean,
    ts timestamptz, u uuid);
CREATE TABLE public.ev (id int PRIMARY KEY, v int);
CREATE TABLE public.rfull (id int PRIMARY KEY, a text, b int);
ALTER TABLE public.rfull REPLICA IDENTITY FULL;
CREATE TABLE public.rdef (id int PRIMARY KEY, a text, b int);
CREATE TABLE public.big (id int PRIMARY KEY, n int, body text);
CREATE TABLE public.seq (id int PRIMARY KEY);
CREATE TABLE public.t (id serial PRIMARY KEY, business_id int, v int);
CREATE TABLE public.notenabled (id int PRIMARY KEY);
SELECT tidings.enable_changes(x::regclass) FROM unnest(ARRAY['public.typed', 'public.ft',
    'public.ev', 'public.rfull', 'public.rdef', 'public.big', 'public.seq', 'public.t']) AS x;

-- USERS.md, verbatim: the users' existing cache invalidation trigger.
CREATE TABLE business_partners (id serial PRIMARY KEY, user_id uuid, business_id int,
    status text, created_at timestamptz DEFAULT now());
CREATE OR REPLACE FUNCTION notify_cache_invalidation() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('cache_invalidation', json_build_object(
        'table', TG_TABLE_NAME, 'operation', TG_OP,
        'record_id', COALESCE(NEW.id, OLD.id))::text);
    RETURN COALESCE(NEW, OLD);
END; $$ LANGUAGE plpgsql;
CREATE TRIGGER cache_invalidation_trigger AFTER INSERT OR UPDATE OR DELETE
    ON business_partners FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();

-- A Supabase-style broadcast trigger (realtime.* comes with --pg_realtime_compat yes).
CREATE TABLE public.bc (id serial PRIMARY KEY, name text);
CREATE OR REPLACE FUNCTION public.bc_broadcast() RETURNS trigger AS $$
BEGIN
    PERFORM realtime.broadcast_changes('bc-room', TG_OP, TG_OP, TG_TABLE_NAME, TG_TABLE_SCHEMA, NEW, OLD);
    RETURN NULL;
END; $$ LANGUAGE plpgsql;
CREATE TRIGGER bc_broadcast AFTER INSERT OR UPDATE OR DELETE ON public.bc
    FOR EACH ROW EXECUTE FUNCTION public.bc_broadcast();
`;

const h = usePgGateway({
    setup: async (pg) => {
        const r = await tidings(['sql', 'install', '--pg', pg.conninfo]);
        assert.equal(r.code, 0, `tidings sql install: ${r.stdout}${r.stderr}`);
        await pg.psql(TABLES_SQL);
    },
    args: () => [
        '--pg_realtime_compat', 'yes',
        '--notify_channel', 'cache_invalidation',
        '--notify_channel', 'rawchan rawtopic',
        '--row_rule', '* all role=admin|super_admin',
        '--row_rule', 'public.t business_id={business_id}',
        '--rule', 'allow private all * role=admin',
    ],
});

// Runs SQL in a session whose time zone is UTC (timestamptz values are rendered in it).
const sql = (text) => h.pg.psql(`SET TIME ZONE 'UTC';\n${text}`);
const pub = (table, extra = {}) => ({ event: '*', schema: 'public', table, ...extra });
const COMMIT_TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

test('P1 INSERT/UPDATE/DELETE arrive as typed postgres_changes (PROTOCOL 5.3, 5.4)', async () => {
    const sb = client(h.gw.url, admin);
    const { ch, got, system } = await pgChannel(sb, uniq('typed'), [pub('typed')]);
    assert.deepEqual(system, { extension: 'postgres_changes', status: 'ok', message: 'Subscribed to PostgreSQL', channel: ch.subTopic });
    await sql(`
INSERT INTO public.typed VALUES (1, 42, 1.5, 10.25, true, '{"a":1,"b":[1,"x",null]}', '{"x":"y"}',
  'hello', 'vc', '2025-05-01 12:34:56.123456+00', '2025-05-01 12:34:56', '2025-05-01',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,2,3}', '{a,"b c"}', NULL);
UPDATE public.typed SET i = 43, nul = 'now set' WHERE id = 1;
DELETE FROM public.typed WHERE id = 1;`);
    const rows = got[0];
    await waitFor(() => rows.length >= 3, 5000, '3 changes');
    const [ins, upd, del] = rows;
    const record = {
        id: 1, i: 42, f: 1.5, num: 10.25, b: true, j: { a: 1, b: [1, 'x', null] }, js: { x: 'y' },
        t: 'hello', vc: 'vc', ts: '2025-05-01T12:34:56.123456+00:00', tsn: '2025-05-01T12:34:56',
        d: '2025-05-01', u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', arr: [1, 2, 3], tarr: ['a', 'b c'], nul: null,
    };
    for (const [p, type] of [[ins, 'INSERT'], [upd, 'UPDATE'], [del, 'DELETE']]) {
        assert.equal(p.eventType, type);
        assert.equal(p.schema, 'public');
        assert.equal(p.table, 'typed');
        assert.match(p.commit_timestamp, COMMIT_TS);
        assert.equal(p.errors, null);
    }
    assert.deepEqual(ins.new, record);
    assert.deepEqual(ins.old, {});
    assert.deepEqual(upd.new, { ...record, i: 43, nul: 'now set' });
    assert.deepEqual(upd.old, { id: 1 });
    assert.deepEqual(del.new, {});
    assert.deepEqual(del.old, { id: 1 });
    assert.ok(Math.abs(Date.parse(ins.commit_timestamp) - Date.now()) < 60_000, `commit_timestamp ${ins.commit_timestamp}`);

    // On the wire the values are already typed (not strings converted by the client), and
    // columns lists {name, type} in attribute order.
    const frames = changeFrames(sb, ch.topic);
    assert.equal(frames.length, 3);
    const [jr, ref, topic, , body] = frames[0];
    assert.equal(jr, null);
    assert.equal(ref, null);
    assert.equal(topic, ch.topic);
    assert.ok(Array.isArray(body.ids) && body.ids.length === 1 && typeof body.ids[0] === 'number' && body.ids[0] !== 0, JSON.stringify(body.ids));
    assert.deepEqual(body.data.record, record);
    assert.deepEqual(body.data.columns, [
        { name: 'id', type: 'int8' }, { name: 'i', type: 'int4' }, { name: 'f', type: 'float8' },
        { name: 'num', type: 'numeric' }, { name: 'b', type: 'bool' }, { name: 'j', type: 'jsonb' },
        { name: 'js', type: 'json' }, { name: 't', type: 'text' }, { name: 'vc', type: 'varchar' },
        { name: 'ts', type: 'timestamptz' }, { name: 'tsn', type: 'timestamp' }, { name: 'd', type: 'date' },
        { name: 'u', type: 'uuid' }, { name: 'arr', type: '_int4' }, { name: 'tarr', type: '_text' },
        { name: 'nul', type: 'text' },
    ]);
    assert.equal(body.data.type, 'INSERT');
    assert.deepEqual(frames[1][4].data.old_record, { id: 1 });
    assert.equal(frames[2][4].data.record ?? null, null);
});

test('P2 event filters: an INSERT binding does not fire on UPDATE or DELETE (PROTOCOL 5.4)', async () => {
    const sb = client(h.gw.url, admin);
    const star = await pgChannel(sb, uniq('ev-all'), [pub('ev')]);
    const ins = await pgChannel(sb, uniq('ev-ins'), [pub('ev', { event: 'INSERT' })]);
    const upd = await pgChannel(sb, uniq('ev-upd'), [pub('ev', { event: 'UPDATE' })]);
    const del = await pgChannel(sb, uniq('ev-del'), [pub('ev', { event: 'DELETE' })]);
    await sql(`
INSERT INTO public.ev VALUES (1, 1);
UPDATE public.ev SET v = 2 WHERE id = 1;
DELETE FROM public.ev WHERE id = 1;
INSERT INTO public.ev VALUES (2, 1);`);
    await waitFor(() => star.got[0].length >= 4, 5000, '4 changes on the * channel');
    await waitFor(() => ins.got[0].length >= 2, 3000, '2 inserts');
    await sleep(300);
    assert.deepEqual(star.got[0].map((p) => p.eventType), ['INSERT', 'UPDATE', 'DELETE', 'INSERT']);
    assert.deepEqual(ins.got[0].map((p) => [p.eventType, p.new.id]), [['INSERT', 1], ['INSERT', 2]]);
    assert.deepEqual(upd.got[0].map((p) => [p.eventType, p.new.v, p.old.id]), [['UPDATE', 2, 1]]);
    assert.deepEqual(del.got[0].map((p) => [p.eventType, p.old.id]), [['DELETE', 1]]);
});

// Each filter with the rows it must (pos) and must not (neg) deliver, and the SQL condition
// that decides the truth for every row of public.ft. The positives and negatives are picked
// so that comparing the JSON text instead of the typed value gives a wrong answer.
const FILTERS = [
    { f: 'n=eq.10', where: 'n = 10', pos: ['n10'], neg: ['n100', 'n11'] },
    { f: 'n=neq.10', where: 'n <> 10', pos: ['n11', 'n100', 'n9'], neg: ['n10'] },
    { f: 'n=lt.10', where: 'n < 10', pos: ['n9', 'n2.5'], neg: ['n10', 'n100'] },
    { f: 'n=lte.10', where: 'n <= 10', pos: ['n10', 'n9'], neg: ['n11', 'n100'] },
    { f: 'n=gt.9', where: 'n > 9', pos: ['n10', 'n11', 'n100'], neg: ['n9', 'n2.5'] },
    { f: 'n=gte.10', where: 'n >= 10', pos: ['n10', 'n100'], neg: ['n9'] },
    { f: 'n=in.(9,2.5)', where: 'n IN (9, 2.5)', pos: ['n9', 'n2.5'], neg: ['n10', 'n100'] },
    { f: 'n=gte.9,n=lt.11', where: 'n >= 9 AND n < 11', pos: ['n9', 'n10'], neg: ['n11', 'n2.5'] },
    { f: 't=eq.hello', where: "t = 'hello'", pos: ['thello'], neg: ['tHello'] },
    { f: 't=neq.hello', where: "t <> 'hello'", pos: ['tHello', 'tb'], neg: ['thello'] },
    { f: 't=in.(b,c)', where: "t IN ('b', 'c')", pos: ['tb', 'tc'], neg: ['thello'] },
    { f: 't=lt.c', where: "t < 'c'", pos: ['tb'], neg: ['tc'] },
    { f: 't=gte.c', where: "t >= 'c'", pos: ['tc'], neg: ['tb'] },
    { f: 'b=eq.true', where: 'b = true', pos: ['btrue'], neg: ['bfalse'] },
    { f: 'b=neq.true', where: 'b <> true', pos: ['bfalse'], neg: ['btrue'] },
    { f: 'ts=gt.2024-01-01T01:00:00+02:00', where: "ts > '2024-01-01T01:00:00+02:00'", pos: ['ts2330'], neg: ['ts2200'] },
    { f: 'ts=lte.2023-12-31T22:00:00Z', where: "ts <= '2023-12-31T22:00:00Z'", pos: ['ts2200'], neg: ['ts2330'] },
    { f: 'ts=eq.2023-12-31 23:30:00+00', where: "ts = '2023-12-31 23:30:00+00'", pos: ['ts2330'], neg: ['ts2200'] },
    { f: 'u=eq.A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', where: "u = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", pos: ['ulow'], neg: ['uother'] },
    { f: 'u=neq.a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', where: "u <> 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", pos: ['uother'], neg: ['ulow'] },
    { f: 'u=in.(b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12)', where: "u = 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'", pos: ['uother'], neg: ['ulow'] },
];

const FT_ROWS = `
INSERT INTO public.ft (tag, n) VALUES ('n10', 10.0);
INSERT INTO public.ft (tag, n) VALUES ('n100', 100);
INSERT INTO public.ft (tag, n) VALUES ('n11', 11);
INSERT INTO public.ft (tag, n) VALUES ('n9', 9);
INSERT INTO public.ft (tag, n) VALUES ('n2.5', 2.50);
INSERT INTO public.ft (tag, t) VALUES ('thello', 'hello');
INSERT INTO public.ft (tag, t) VALUES ('tHello', 'Hello');
INSERT INTO public.ft (tag, t) VALUES ('tb', 'b');
INSERT INTO public.ft (tag, t) VALUES ('tc', 'c');
INSERT INTO public.ft (tag, b) VALUES ('btrue', true);
INSERT INTO public.ft (tag, b) VALUES ('bfalse', false);
INSERT INTO public.ft (tag, ts) VALUES ('ts2330', '2023-12-31T23:30:00Z');
INSERT INTO public.ft (tag, ts) VALUES ('ts2200', '2023-12-31T22:00:00Z');
INSERT INTO public.ft (tag, u) VALUES ('ulow', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
INSERT INTO public.ft (tag, u) VALUES ('uother', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12');
INSERT INTO public.ft (tag) VALUES ('barrier');`;

test('P3 filters eq neq lt lte gt gte in compare with the column type (PROTOCOL 5.2)', async () => {
    const sb = client(h.gw.url, admin);
    const subs = [];
    for (const spec of FILTERS) {
        // Binding 1 is the barrier: the last row, delivered after every earlier one.
        const s = await pgChannel(sb, uniq('ft'), [pub('ft', { filter: spec.f }), pub('ft', { event: 'INSERT', filter: 'tag=eq.barrier' })]);
        assert.equal(s.system.status, 'ok', `${spec.f}: ${JSON.stringify(s.system)}`);
        subs.push(s);
    }
    await sql(FT_ROWS);
    for (let i = 0; i < FILTERS.length; i++) {
        await waitFor(() => subs[i].got[1].length === 1, 8000, `barrier on ${FILTERS[i].f}`);
    }
    await sleep(200);
    for (let i = 0; i < FILTERS.length; i++) {
        const spec = FILTERS[i];
        const truth = (await sql(`SELECT tag FROM public.ft WHERE tag <> 'barrier' AND (${spec.where}) ORDER BY id`)).split('\n').filter(Boolean);
        for (const p of spec.pos) assert.ok(truth.includes(p), `test bug: ${spec.f} should match ${p} in SQL`);
        for (const p of spec.neg) assert.ok(!truth.includes(p), `test bug: ${spec.f} should not match ${p} in SQL`);
        const tags = subs[i].got[0].map((p) => p.new.tag);
        assert.deepEqual(tags, truth, `filter ${spec.f}`);
    }
});

test('P4 invalid filters and unknown columns get a postgres_changes system error (PROTOCOL 5.2)', async () => {
    const sb = client(h.gw.url, admin);
    const check = async (filter, prefix) => {
        const s = await pgChannel(sb, uniq('bad'), [pub('ft', { filter })]);
        assert.equal(s.system.extension, 'postgres_changes', filter);
        assert.equal(s.system.status, 'error', `${filter}: ${JSON.stringify(s.system)}`);
        assert.equal(s.system.channel, s.ch.subTopic);
        if (prefix) assert.ok(s.system.message.startsWith(prefix), `${filter}: ${s.system.message}`);
        return s;
    };
    // Syntax errors.
    for (const filter of ['id=foo.5', 'garbage', 'id=eq.1,']) await check(filter, 'Error parsing `filter` params');
    // `in` without a list: an error of either kind.
    await check('n=in.1', null);
    // Unknown column, uncastable values.
    for (const filter of ['nope=eq.1', 'n=eq.abc', 'u=eq.not-a-uuid']) {
        await check(filter, 'Unable to subscribe to changes with given parameters');
    }
    // The socket still serves: a valid binding on a new channel works.
    const ok = await pgChannel(sb, uniq('good'), [pub('ft', { filter: 'tag=eq.after-bad' })]);
    assert.equal(ok.system.status, 'ok');
    await sql("INSERT INTO public.ft (tag) VALUES ('after-bad');");
    await waitFor(() => ok.got[0].length === 1, 5000, 'change after bad filters');
});

test('P5 a table not enabled: system error naming enable_changes, the join still succeeds (PROTOCOL 5.1)', async () => {
    const sb = client(h.gw.url, admin);
    // pgChannel resolves only once the join reported SUBSCRIBED.
    const s = await pgChannel(sb, uniq('ne'), [pub('notenabled')]);
    assert.equal(s.system.extension, 'postgres_changes');
    assert.equal(s.system.status, 'error');
    assert.match(s.system.message, /enable_changes/);
    await sql('INSERT INTO public.notenabled VALUES (1);');
    await never(() => s.got[0].length > 0, 500, 'a change of a table not enabled');
    // After enable_changes a new join works (the gateway reloads its table list).
    await sql("SELECT tidings.enable_changes('public.notenabled');");
    const again = await pgChannelOk(sb, uniq('ne2'), [pub('notenabled')]);
    await sql('INSERT INTO public.notenabled VALUES (2);');
    await waitFor(() => again.got[0].length === 1, 5000, 'change after enable_changes');
    assert.equal(again.got[0][0].new.id, 2);
    await sql("SELECT tidings.disable_changes('public.notenabled');");
});

test('P6 REPLICA IDENTITY FULL sends the whole old row; DEFAULT only the key (PROTOCOL 5.3)', async () => {
    const sb = client(h.gw.url, admin);
    const full = await pgChannel(sb, uniq('rfull'), [pub('rfull')]);
    const def = await pgChannel(sb, uniq('rdef'), [pub('rdef')]);
    await sql(`
INSERT INTO public.rfull VALUES (1, 'a', 1);
UPDATE public.rfull SET b = 2 WHERE id = 1;
DELETE FROM public.rfull WHERE id = 1;
INSERT INTO public.rdef VALUES (1, 'a', 1);
UPDATE public.rdef SET b = 2 WHERE id = 1;
DELETE FROM public.rdef WHERE id = 1;`);
    await waitFor(() => full.got[0].length === 3 && def.got[0].length === 3, 5000, '3 + 3 changes');
    assert.deepEqual(full.got[0].map((p) => [p.eventType, p.new, p.old]), [
        ['INSERT', { id: 1, a: 'a', b: 1 }, {}],
        ['UPDATE', { id: 1, a: 'a', b: 2 }, { id: 1, a: 'a', b: 1 }],
        ['DELETE', {}, { id: 1, a: 'a', b: 2 }],
    ]);
    assert.deepEqual(def.got[0].map((p) => [p.eventType, p.new, p.old]), [
        ['INSERT', { id: 1, a: 'a', b: 1 }, {}],
        ['UPDATE', { id: 1, a: 'a', b: 2 }, { id: 1 }],
        ['DELETE', {}, { id: 1 }],
    ]);
});

test('P7 a row larger than a NOTIFY payload (> 8000 bytes) arrives whole', async () => {
    const sb = client(h.gw.url, admin);
    const s = await pgChannel(sb, uniq('big'), [pub('big')]);
    const body = `${'0123456789'.repeat(3000)}-END`;
    await sql(`
INSERT INTO public.big VALUES (1, 1, repeat('0123456789', 3000) || '-END');
UPDATE public.big SET n = 2 WHERE id = 1;
INSERT INTO public.big VALUES (2, 1, 'small');`);
    await waitFor(() => s.got[0].length === 3, 8000, '3 changes');
    const [ins, upd, small] = s.got[0];
    assert.equal(ins.eventType, 'INSERT');
    assert.equal(ins.new.body.length, body.length);
    assert.equal(ins.new.body, body);
    assert.equal(upd.eventType, 'UPDATE');
    assert.equal(upd.new.n, 2);
    assert.equal(upd.new.body, body);
    assert.deepEqual(small.new, { id: 2, n: 1, body: 'small' });
});

test('P8 100 rapid single-row commits arrive in commit order, once each', async () => {
    const sb = client(h.gw.url, admin);
    const s = await pgChannel(sb, uniq('seq'), [pub('seq')]);
    let script = '';
    for (let i = 1; i <= 100; i++) script += `INSERT INTO public.seq VALUES (${i});\n`;
    await sql(script);
    await waitFor(() => s.got[0].length >= 100, 10_000, '100 changes');
    await sleep(300);
    const ids = s.got[0].map((p) => p.new.id);
    assert.equal(ids.length, 100);
    assert.deepEqual(orderProblems(ids), []);
    assert.deepEqual(ids, Array.from({ length: 100 }, (_, i) => i + 1));
});

test('P9 row rules: admin sees every row, a partner only its business, no rule = system error', async () => {
    const sbA = client(h.gw.url, admin);
    const sb1 = client(h.gw.url, partner1);
    const sb2 = client(h.gw.url, partner2);
    const a = await pgChannel(sbA, uniq('t-admin'), [pub('t')]);
    const p1 = await pgChannel(sb1, uniq('t-p1'), [pub('t')]);
    const p2 = await pgChannel(sb2, uniq('t-p2'), [pub('t')]);
    for (const s of [a, p1, p2]) assert.equal(s.system.status, 'ok', JSON.stringify(s.system));

    // No matching row rule: public.t for a token without business_id, public.ft for a partner.
    const sbN = client(h.gw.url, nobody);
    const n = await pgChannel(sbN, uniq('t-nobody'), [pub('t')]);
    const p1ft = await pgChannel(sb1, uniq('ft-p1'), [pub('ft')]);
    for (const s of [n, p1ft]) {
        assert.equal(s.system.extension, 'postgres_changes');
        assert.equal(s.system.status, 'error', JSON.stringify(s.system));
    }

    await sql(`
INSERT INTO public.t (business_id, v) VALUES (1, 10);
INSERT INTO public.t (business_id, v) VALUES (2, 20);
INSERT INTO public.t (business_id, v) VALUES (3, 30);
INSERT INTO public.t (business_id, v) VALUES (1, 11);
UPDATE public.t SET v = 12 WHERE business_id = 1 AND v = 11;
UPDATE public.t SET v = 31 WHERE business_id = 3;
INSERT INTO public.t (business_id, v) VALUES (2, 29);
INSERT INTO public.t (business_id, v) VALUES (1, 19);
INSERT INTO public.ft (tag) VALUES ('seen-by-admins-only');`);
    const fmt = (p) => `${p.eventType} ${p.new.business_id}:${p.new.v}`;
    await waitFor(() => a.got[0].length === 8, 5000, 'admin: 8 changes');
    await waitFor(() => p1.got[0].some((p) => p.new.v === 19), 5000, 'partner 1: last row');
    await waitFor(() => p2.got[0].some((p) => p.new.v === 29), 5000, 'partner 2: last row');
    await sleep(300);
    assert.deepEqual(a.got[0].map(fmt), ['INSERT 1:10', 'INSERT 2:20', 'INSERT 3:30', 'INSERT 1:11', 'UPDATE 1:12', 'UPDATE 3:31', 'INSERT 2:29', 'INSERT 1:19']);
    assert.deepEqual(p1.got[0].map(fmt), ['INSERT 1:10', 'INSERT 1:11', 'UPDATE 1:12', 'INSERT 1:19']);
    assert.deepEqual(p2.got[0].map(fmt), ['INSERT 2:20', 'INSERT 2:29']);
    assert.equal(n.got[0].length, 0);
    assert.equal(p1ft.got[0].length, 0);
    // Nothing of another business even reached the partner sockets.
    for (const f of changeFrames(sb1)) assert.equal(f[4].data.record.business_id, 1, JSON.stringify(f));
    assert.deepEqual(changeFrames(sbN), []);
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

test('P10 tidings.send(..., false) reaches public subscribers with meta.id = the added payload.id (PROTOCOL 6.5)', async () => {
    const sb = client(h.gw.url, admin);
    const topic = uniq('sqlpub');
    const ch = sb.channel(topic);
    const got = collect(ch, 'broadcast', { event: 'ev1' });
    await subscribe(ch);
    await sql(`SELECT tidings.send('{"a":1}'::jsonb, 'ev1', '${topic}', false);
SELECT tidings.send('{"id":"my-own-id","a":2}'::jsonb, 'ev1', '${topic}', false);
SELECT tidings.send('{"a":3}'::jsonb, 'other-event', '${topic}', false);`);
    await waitFor(() => got.length >= 2, 5000, '2 broadcasts');
    await sleep(200);
    assert.equal(got.length, 2);
    const [m1, m2] = got;
    assert.equal(m1.type, 'broadcast');
    assert.equal(m1.event, 'ev1');
    assert.equal(m1.payload.a, 1);
    assert.match(m1.payload.id, UUID);
    assert.deepEqual(Object.keys(m1.payload).sort(), ['a', 'id']);
    assert.equal(m1.meta && m1.meta.id, m1.payload.id);
    // A payload that has an "id" keeps it; meta.id is still the message's own uuid.
    assert.deepEqual(m2.payload, { id: 'my-own-id', a: 2 });
    assert.match(m2.meta && m2.meta.id, UUID);
    assert.notEqual(m2.meta.id, m1.meta.id);
});

test('P11 tidings.send defaults to private: only private subscribers with broadcast.read get it (PROTOCOL 6.5)', async () => {
    const sb = client(h.gw.url, admin);
    const topic = uniq('sqlpriv');
    const priv = sb.channel(topic, { config: { private: true } });
    const gotPriv = collect(priv, 'broadcast', { event: '*' });
    await subscribe(priv);
    const sbPub = client(h.gw.url, admin);
    const pubCh = sbPub.channel(topic);
    const gotPub = collect(pubCh, 'broadcast', { event: '*' });
    await subscribe(pubCh);
    await sql(`SELECT tidings.send('{"b":1}'::jsonb, 'ev2', '${topic}');`);
    await waitFor(() => gotPriv.length === 1, 5000, 'private broadcast');
    assert.equal(gotPriv[0].event, 'ev2');
    assert.equal(gotPriv[0].payload.b, 1);
    assert.equal(gotPriv[0].meta && gotPriv[0].meta.id, gotPriv[0].payload.id);
    // A public send reaches only the public channel.
    await sql(`SELECT tidings.send('{"b":2}'::jsonb, 'ev3', '${topic}', false);`);
    await waitFor(() => gotPub.length === 1, 5000, 'public broadcast');
    assert.equal(gotPub[0].event, 'ev3');
    await sleep(300);
    assert.deepEqual(gotPub.map((m) => m.event), ['ev3']);
    assert.deepEqual(gotPriv.map((m) => m.event), ['ev2']);
});

test('P12 realtime.send and realtime.broadcast_changes with --pg_realtime_compat yes (PROTOCOL 6.5)', async () => {
    const sb = client(h.gw.url, admin);
    const topic = uniq('rt');
    const pubCh = sb.channel(topic);
    const gotPub = collect(pubCh, 'broadcast', { event: '*' });
    await subscribe(pubCh);
    // supabase-js keeps one channel per topic and client: the private one needs its own client.
    const sbPriv = client(h.gw.url, admin);
    const privCh = sbPriv.channel(topic, { config: { private: true } });
    const gotPriv = collect(privCh, 'broadcast', { event: '*' });
    await subscribe(privCh);
    await sql(`SELECT realtime.send('{"c":1}'::jsonb, 'rt-pub', '${topic}', false);
SELECT realtime.send('{"c":2}'::jsonb, 'rt-priv', '${topic}');`);
    await waitFor(() => gotPub.length === 1 && gotPriv.length === 1, 5000, 'realtime.send broadcasts');
    assert.equal(gotPub[0].event, 'rt-pub');
    assert.equal(gotPub[0].payload.c, 1);
    assert.match(gotPub[0].payload.id, UUID);
    assert.equal(gotPriv[0].event, 'rt-priv');
    assert.equal(gotPriv[0].meta && gotPriv[0].meta.id, gotPriv[0].payload.id);

    // A trigger calling realtime.broadcast_changes with TG_OP as the event (private topic).
    const bc = sb.channel('bc-room', { config: { private: true } });
    const inserts = collect(bc, 'broadcast', { event: 'INSERT' });
    const updates = collect(bc, 'broadcast', { event: 'UPDATE' });
    const deletes = collect(bc, 'broadcast', { event: 'DELETE' });
    await subscribe(bc);
    await sql(`INSERT INTO public.bc (name) VALUES ('x');
UPDATE public.bc SET name = 'y';
DELETE FROM public.bc;`);
    await waitFor(() => deletes.length === 1, 5000, 'broadcast_changes DELETE');
    await sleep(200);
    assert.equal(inserts.length, 1);
    assert.equal(updates.length, 1);
    const p = inserts[0].payload;
    assert.match(p.id, UUID);
    assert.deepEqual({ ...p, id: 'X' }, { old_record: null, record: { id: 1, name: 'x' }, operation: 'INSERT', table: 'bc', schema: 'public', id: 'X' });
    assert.deepEqual(updates[0].payload.old_record, { id: 1, name: 'x' });
    assert.deepEqual(updates[0].payload.record, { id: 1, name: 'y' });
    assert.equal(deletes[0].payload.record, null);
    assert.deepEqual(deletes[0].payload.old_record, { id: 1, name: 'y' });
    assert.equal(inserts[0].meta && inserts[0].meta.id, p.id);
});

test('P13 USERS.md cache_invalidation trigger is forwarded by --notify_channel, payload exactly as sent', async () => {
    const sb = client(h.gw.url, admin);
    const ch = sb.channel('cache_invalidation');
    const got = collect(ch, 'broadcast', { event: 'cache_invalidation' });
    await subscribe(ch);
    await sql(`INSERT INTO business_partners (user_id, business_id, status)
  VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 7, 'pending');
UPDATE business_partners SET status = 'active' WHERE business_id = 7;
DELETE FROM business_partners WHERE business_id = 7;`);
    await waitFor(() => got.length >= 3, 5000, '3 cache invalidations');
    await sleep(200);
    assert.deepEqual(got.map((m) => m.payload), [
        { table: 'business_partners', operation: 'INSERT', record_id: 1 },
        { table: 'business_partners', operation: 'UPDATE', record_id: 1 },
        { table: 'business_partners', operation: 'DELETE', record_id: 1 },
    ]);
    for (const m of got) assert.equal(m.event, 'cache_invalidation');
});

test('P14 a NOTIFY payload that is not JSON arrives as a string; CHANNEL TOPIC maps the topic', async () => {
    const sb = client(h.gw.url, admin);
    const ch = sb.channel('rawtopic');
    const got = collect(ch, 'broadcast', { event: '*' });
    await subscribe(ch);
    const wrong = sb.channel('rawchan');
    const gotWrong = collect(wrong, 'broadcast', { event: '*' });
    await subscribe(wrong);
    await sql(`NOTIFY rawchan, 'hello world';
SELECT pg_notify('rawchan', '{"k":[1,2]}');
SELECT pg_notify('rawchan', '{not json');
NOTIFY unconfigured_channel, 'ignored';`);
    await waitFor(() => got.length >= 3, 5000, '3 forwarded NOTIFYs');
    await sleep(300);
    assert.deepEqual(got.map((m) => [m.event, m.payload]), [
        ['rawchan', 'hello world'],
        ['rawchan', { k: [1, 2] }],
        ['rawchan', '{not json'],
    ]);
    assert.equal(gotWrong.length, 0);
});

test('P15 `tidings sql print` prints the schema; `tidings sql install` is idempotent', async () => {
    const p = await tidings(['sql', 'print']);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /CREATE SCHEMA (IF NOT EXISTS )?"?tidings"?/i);
    assert.match(p.stdout, /enable_changes/);
    for (let i = 0; i < 2; i++) {
        const r = await tidings(['sql', 'install', '--pg', h.pg.conninfo]);
        assert.equal(r.code, 0, `install #${i + 1}: ${r.stdout}${r.stderr}`);
    }
    assert.notEqual(await psql(h.pg.conninfo, "SELECT value FROM tidings.meta WHERE key = 'version'"), '');
    // Enabled tables survive a re-install, and changes still flow.
    const sb = client(h.gw.url, admin);
    const s = await pgChannel(sb, uniq('after-install'), [pub('ev')]);
    assert.equal(s.system.status, 'ok');
    await sql('INSERT INTO public.ev VALUES (100, 1);');
    await waitFor(() => s.got[0].length === 1, 5000, 'change after re-install');
    // A bad DSN fails with a non-zero exit code and a message.
    const bad = await tidings(['sql', 'install', '--pg', 'host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2']);
    assert.notEqual(bad.code, 0);
    assert.ok(bad.stderr.length > 0);
});
