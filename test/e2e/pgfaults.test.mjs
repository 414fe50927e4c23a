// pgfaults.test.mjs: PostgreSQL faults under load, seen by a real supabase-js subscriber.
// A writer commits rows one by one (psql running a DO loop with COMMIT and pg_sleep)
// while the gateway's listener connection is terminated, PostgreSQL restarts, or the
// gateway itself is killed and replaced: the subscriber must receive every committed row
// exactly once and in commit order. Also: a DSN where nothing listens (/readyz 503
// "retrying: ...", broadcast unaffected, the retrying state logged once, not per retry),
// and PostgreSQL coming up after the gateway (/readyz 200 within 15 s, changes flow).

import assert from 'node:assert/strict';
import fs from 'node:fs';

import { client, collect, freePort, sign, sleep, startGateway, subscribe, test, uniq, waitFor } from './lib.mjs';
import { orderProblems, pgChannel, pgChannelOk, psqlSpawn, readyz, startGatewayAt, startPg, tidings, usePg, waitReady } from './pglib.mjs';

const admin = sign({ role: 'admin', sub: 'admin-1' });
const pg = usePg();
const ROWS = 300;

// The gateway options of this file (everyone sees every row).
const pgArgs = (conninfo) => ['--pg', conninfo, '--row_rule', '* all'];

async function setupTable(table) {
    await pg.psql(`SET client_min_messages = warning;
CREATE TABLE public.${table} (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
SELECT tidings.enable_changes('public.${table}');`);
}

// psql in the background committing rows first..last of table, one per transaction.
function writer(conninfo, table, first, last, sleepS = 0.01) {
    return psqlSpawn(conninfo, `DO $$ BEGIN
  FOR i IN ${first}..${last} LOOP
    INSERT INTO public.${table} (n) VALUES (i);
    COMMIT;
    PERFORM pg_sleep(${sleepS});
  END LOOP;
END $$;`);
}

// Starts a gateway on pg and a subscriber of table's inserts. Returns {gw, sb, s, rowsOf}:
// rowsOf() is the list of received `new.n`, in arrival order.
async function gatewayWithSubscriber(table) {
    const gw = await startGateway({ args: pgArgs(pg.conninfo) });
    await waitReady(gw);
    const sb = client(gw.url, admin);
    const s = await pgChannelOk(sb, uniq(table), [{ event: 'INSERT', schema: 'public', table }]);
    return { gw, sb, s, rowsOf: () => s.got[0].map((p) => p.new.n) };
}

async function committed(table) {
    const out = await pg.psql(`SELECT n FROM public.${table} ORDER BY n`);
    return out.split('\n').filter(Boolean).map(Number);
}

// Waits until the subscriber has received exactly the expected rows, then a bit longer to
// catch late duplicates.
async function expectExactly(rowsOf, expected, timeoutMs, what) {
    try {
        await waitFor(() => rowsOf().length >= expected.length, timeoutMs, what);
    } finally {
        const got = rowsOf();
        const missing = expected.filter((n) => !got.includes(n));
        if (missing.length) console.error(`${what}: missing ${missing.length} rows, first ${missing.slice(0, 20)}`);
    }
    await sleep(1000);
    const got = rowsOf();
    assert.deepEqual(orderProblems(got), [], `${what}: order/duplicates`);
    assert.equal(got.length, expected.length, `${what}: count`);
    assert.deepEqual(got, expected, what);
}

const stopClean = async (gw) => {
    const ex = await gw.stop();
    assert.ok(ex.code === 0 || (ex.code === null && ex.signal === 'SIGTERM'), `gateway :${gw.port} did not stop cleanly: ${JSON.stringify(ex)}\n${gw.stderr().slice(-4000)}`);
};

test('X0 setup: schema tidings installed with `tidings sql install`', async () => {
    const r = await tidings(['sql', 'install', '--pg', pg.conninfo]);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    for (const t of ['wa', 'wb', 'we', 'wf']) await setupTable(t);
});

test('X1 listener connection terminated while a writer commits: every row once, in order', async () => {
    const { gw, rowsOf } = await gatewayWithSubscriber('wa');
    try {
        const w = writer(pg.conninfo, 'wa', 1, ROWS);
        await waitFor(() => rowsOf().length >= 50, 15_000, 'first 50 rows');
        assert.equal(w.proc.exitCode, null, 'the writer finished before the fault');
        const killed = await pg.psql(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
  WHERE pid <> pg_backend_pid() AND (application_name = 'tidings' OR query LIKE 'LISTEN%')) AS k`);
        assert.ok(Number(killed) >= 1, `no listener backend found to terminate (${killed})`);
        const res = await w.done;
        assert.equal(res.code, 0, `writer: ${res.stderr}`);
        await expectExactly(rowsOf, Array.from({ length: ROWS }, (_, i) => i + 1), 20_000, 'rows after pg_terminate_backend');
        await waitReady(gw, 15_000);
    } finally {
        await stopClean(gw);
    }
});

test('X2 PostgreSQL restarted while a writer commits: every committed row once, in order', async () => {
    const { gw, rowsOf } = await gatewayWithSubscriber('wb');
    try {
        const w = writer(pg.conninfo, 'wb', 1, ROWS);
        await waitFor(() => rowsOf().length >= 50, 15_000, 'first 50 rows');
        assert.equal(w.proc.exitCode, null, 'the writer finished before the fault');
        await pg.restart();
        const res = await w.done; // usually killed by the restart
        const rows = await committed('wb');
        assert.ok(rows.length >= 50, `committed ${rows.length} rows`);
        if (res.code === 0) assert.equal(rows.length, ROWS);
        await expectExactly(rowsOf, rows, 20_000, 'rows after a PostgreSQL restart');
        // Changes keep flowing afterwards.
        await waitReady(gw, 15_000);
        await pg.psql('INSERT INTO public.wb (n) VALUES (100000);');
        await expectExactly(rowsOf, [...rows, 100000], 10_000, 'a row after the restart');
    } finally {
        await stopClean(gw);
    }
});

test('X3 wrong DSN: /readyz 503 retrying, broadcast still works, retrying logged once', async () => {
    const started = Date.now();
    const port = await freePort();
    const gw = await startGateway({ args: pgArgs(`host=127.0.0.1 port=${port} dbname=nothing user=nobody connect_timeout=2`) });
    try {
        const r = await waitFor(async () => {
            const x = await readyz(gw);
            return x.status === 503 && typeof x.body === 'object' && /^retrying: /.test(x.body.postgres || '') ? x : null;
        }, 5000, '/readyz 503 retrying');
        assert.equal(r.body.status, 'degraded');
        assert.match(r.body.postgres, /^retrying: .+/);

        // Broadcast between two clients is not affected.
        const topic = uniq('room');
        const sbA = client(gw.url, admin);
        const chA = sbA.channel(topic);
        const got = collect(chA, 'broadcast', { event: 'hello' });
        await subscribe(chA);
        const sbB = client(gw.url, admin);
        const chB = sbB.channel(topic);
        await subscribe(chB);
        assert.equal(await chB.send({ type: 'broadcast', event: 'hello', payload: { x: 1 } }), 'ok');
        await waitFor(() => got.length === 1, 3000, 'broadcast while postgres is down');
        assert.deepEqual(got[0].payload, { x: 1 });

        // At least 5 s of retrying: the state change is logged, not every retry.
        await sleep(Math.max(0, 5500 - (Date.now() - started)));
        assert.equal((await readyz(gw)).status, 503);
        const lines = gw.stderr().split('\n').filter((l) => /event=postgres\b/.test(l) && /\bstate=retrying\b/.test(l));
        assert.ok(lines.length >= 1, `no "event=postgres state=retrying" line:\n${gw.stderr().slice(-3000)}`);
        assert.ok(lines.length <= 3, `${lines.length} retrying lines in 5 s:\n${lines.join('\n')}`);
    } finally {
        await stopClean(gw);
    }
});

test('X4 PostgreSQL down at gateway start, up later on that port: /readyz 200 within 15 s, changes flow', async () => {
    const pg2 = await startPg();
    try {
        await pg2.stop();
        const gw = await startGateway({ args: pgArgs(pg2.conninfo) });
        try {
            await sleep(500);
            const down = await readyz(gw);
            assert.equal(down.status, 503);
            assert.match(down.body.postgres, /^retrying: /);
            await pg2.start();
            const t0 = Date.now();
            await waitReady(gw, 15_000);
            const up = await readyz(gw);
            assert.equal(up.body.status, 'ready');
            assert.equal(up.body.postgres, 'ready');
            console.error(`# ready ${Date.now() - t0} ms after PostgreSQL started`);

            // The gateway installed schema tidings itself (pg_install_sql defaults to yes).
            await pg2.psql(`CREATE TABLE public.late (id int PRIMARY KEY);
SELECT tidings.enable_changes('public.late');`);
            const sb = client(gw.url, admin);
            const s = await pgChannelOk(sb, uniq('late'), [{ event: '*', schema: 'public', table: 'late' }]);
            await pg2.psql('INSERT INTO public.late VALUES (1), (2);');
            await waitFor(() => s.got[0].length === 2, 5000, 'changes after a late start');
            assert.deepEqual(s.got[0].map((p) => p.new.id), [1, 2]);
        } finally {
            await stopClean(gw);
        }
    } finally {
        await pg2.stop();
        fs.rmSync(pg2.base, { recursive: true, force: true });
    }
});

// Gateway A serves a subscriber and delivers 5 rows; A dies (signal) settleMs after that;
// 20 rows are committed while no gateway runs; gateway B starts on A's port and database.
// The client reconnects and rejoins by itself and must end with rows 1..25 exactly once.
async function restartScenario(table, signal, settleMs) {
    const a = await startGateway({ args: pgArgs(pg.conninfo) });
    let b = null;
    try {
        await waitReady(a);
        const sb = client(a.url, admin);
        const s = await pgChannelOk(sb, uniq(table), [{ event: '*', schema: 'public', table }]);
        const rowsOf = () => s.got[0].map((p) => p.new.n);
        await pg.psql(Array.from({ length: 5 }, (_, i) => `INSERT INTO public.${table} (n) VALUES (${i + 1});`).join('\n'));
        await waitFor(() => rowsOf().length === 5, 5000, 'first 5 rows via gateway A');
        await sleep(settleMs);

        a.stopping = true;
        a.proc.kill(signal);
        await waitFor(() => a.exited(), 5000, 'gateway A to exit');
        await pg.psql(Array.from({ length: 20 }, (_, i) => `INSERT INTO public.${table} (n) VALUES (${i + 6});`).join('\n'));

        b = await startGatewayAt(a.port, { args: pgArgs(pg.conninfo), keep: true });
        await expectExactly(rowsOf, Array.from({ length: 25 }, (_, i) => i + 1), 25_000, 'rows across a gateway restart');
        // And live rows through B.
        await pg.psql(`INSERT INTO public.${table} (n) VALUES (26);`);
        await expectExactly(rowsOf, Array.from({ length: 26 }, (_, i) => i + 1), 5000, 'a live row via gateway B');
    } catch (e) {
        if (b) console.error(`----- gateway B :${b.port} -----\n${b.stderr().slice(-8000)}`);
        throw e;
    } finally {
        if (b) await stopClean(b);
    }
}

// The cursor is saved every second: wait for that before the crash.
test('X5 gateway SIGKILLed and restarted on the same port: the client rejoins and gets the missed rows once', async () => {
    await restartScenario('we', 'SIGKILL', 1500);
});

// A graceful stop right after a delivery: the replacement must not deliver those rows again.
test('X6 gateway stopped (SIGTERM) right after a delivery and replaced: no row twice, none lost', async () => {
    await restartScenario('wf', 'SIGTERM', 0);
});

// A crash less than a second after the gateway started, on a database where no gateway
// saved a position yet: what is committed while no gateway runs must still arrive (USERS.md:
// "a gateway restart must lose nothing"). Rows 1..5, delivered before the crash, may come
// twice here; rows 6..25 must all come, in order.
test('X7 gateway SIGKILLed within a second of its first start: the rows committed meanwhile are not lost', async () => {
    const pg3 = await startPg();
    let a = null;
    let b = null;
    try {
        const r = await tidings(['sql', 'install', '--pg', pg3.conninfo]);
        assert.equal(r.code, 0, r.stderr);
        await pg3.psql(`CREATE TABLE public.wx (n int PRIMARY KEY);
SELECT tidings.enable_changes('public.wx');`);
        a = await startGateway({ args: pgArgs(pg3.conninfo) });
        await waitReady(a);
        const sb = client(a.url, admin);
        const s = await pgChannelOk(sb, uniq('wx'), [{ event: '*', schema: 'public', table: 'wx' }]);
        const rowsOf = () => s.got[0].map((p) => p.new.n);
        await pg3.psql(Array.from({ length: 5 }, (_, i) => `INSERT INTO public.wx (n) VALUES (${i + 1});`).join('\n'));
        await waitFor(() => rowsOf().length === 5, 5000, 'first 5 rows via gateway A');
        a.stopping = true;
        a.proc.kill('SIGKILL');
        await waitFor(() => a.exited(), 5000, 'gateway A to die');
        await pg3.psql(Array.from({ length: 20 }, (_, i) => `INSERT INTO public.wx (n) VALUES (${i + 6});`).join('\n'));
        b = await startGatewayAt(a.port, { args: pgArgs(pg3.conninfo), keep: true });
        const later = () => rowsOf().filter((n) => n > 5);
        try {
            await waitFor(() => later().length >= 20, 25_000, 'rows 6..25 after the crash');
        } finally {
            console.error(`# received: ${rowsOf().join(',')}`);
        }
        assert.deepEqual(later(), Array.from({ length: 20 }, (_, i) => i + 6));
    } catch (e) {
        if (b) console.error(`----- gateway B :${b.port} -----\n${b.stderr().slice(-8000)}`);
        throw e;
    } finally {
        if (b) await stopClean(b);
        await pg3.stop();
        fs.rmSync(pg3.base, { recursive: true, force: true });
    }
});
