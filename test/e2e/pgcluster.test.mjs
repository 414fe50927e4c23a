// pgcluster.test.mjs: PostgreSQL in a cluster (docs/REDIS.md, "Leases"). Two gateways
// share one PostgreSQL and one Redis; exactly one holds the lease "pg" and the LISTEN
// connection (it logs `event=pg_lease state=held`, the other `state=standby`), and the
// other one receives the changes over the bus. Then the holder is SIGKILLed while a writer
// commits 300 rows one by one: the other process takes over within seconds and its
// subscriber receives every committed row exactly once, in commit order.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

import { client, freePort, sign, sleep, startGateway, test, uniq, waitFor } from './lib.mjs';
import { orderProblems, pgChannelOk, psqlSpawn, readyz, tidings, usePg } from './pglib.mjs';

const admin = sign({ role: 'admin', sub: 'admin-1' });
const pg = usePg();
const ROWS = 300;

const redisDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidings-pgc-redis-'));
let redis = null;
let redisPort = 0;

after(() => {
    if (redis) redis.kill('SIGKILL');
    fs.rmSync(redisDir, { recursive: true, force: true });
});

async function startRedis() {
    redisPort = await freePort();
    redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '',
        '--appendonly', 'no', '--dir', redisDir], { stdio: 'ignore' });
    await waitFor(() => {
        try {
            return execFileSync('redis-cli', ['-p', String(redisPort), 'ping']).toString().trim() === 'PONG';
        } catch {
            return false;
        }
    }, 10000, 'redis up');
}

const gwArgs = () => ['--pg', pg.conninfo, '--row_rule', '* all', '--redis', `redis://127.0.0.1:${redisPort}`];
const leaseState = (gw) => {
    const m = [...gw.stderr().matchAll(/event=pg_lease state=(held|standby)/g)];
    return m.length ? m[m.length - 1][1] : null;
};

// psql in the background committing rows first..last, one per transaction.
function writer(table, first, last, sleepS) {
    return psqlSpawn(pg.conninfo, `DO $$ BEGIN
  FOR i IN ${first}..${last} LOOP
    INSERT INTO public.${table} (n) VALUES (i);
    COMMIT;
    PERFORM pg_sleep(${sleepS});
  END LOOP;
END $$;`);
}

test('P1 one lease holder; the standby delivers; SIGKILL of the holder under load loses nothing, duplicates nothing', async () => {
    const r = await tidings(['sql', 'install', '--pg', pg.conninfo]);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
    await pg.psql(`SET client_min_messages = warning;
CREATE TABLE public.pc (n int PRIMARY KEY);
SELECT tidings.enable_changes('public.pc');`);
    await startRedis();
    const a = await startGateway({ args: gwArgs() });
    const b = await startGateway({ args: gwArgs() });
    try {
        await waitFor(() => leaseState(a) === 'held' || leaseState(b) === 'held', 10000, 'a lease holder');
        await sleep(500);
        const [holder, standby] = leaseState(a) === 'held' ? [a, b] : [b, a];
        assert.equal(leaseState(standby), 'standby', 'exactly one holder');
        assert.equal(holder.stderr().match(/event=postgres /g)?.length > 0, true, 'holder connects to PostgreSQL');
        assert.equal(/event=postgres /.test(standby.stderr()), false, 'the standby has no listener');
        await waitFor(async () => (await readyz(holder)).status === 200, 15000, 'holder ready');
        const sr = await readyz(standby);
        assert.equal(sr.status, 200, JSON.stringify(sr.body));
        assert.match(sr.body.postgres, /^standby/);

        const sb = client(standby.url, admin);
        const s = await pgChannelOk(sb, uniq('pc'), [{ event: 'INSERT', schema: 'public', table: 'pc' }]);
        const rowsOf = () => s.got[0].map((p) => p.new.n);
        await pg.psql(Array.from({ length: 5 }, (_, i) => `INSERT INTO public.pc (n) VALUES (${i + 1});`).join('\n'));
        await waitFor(() => rowsOf().length === 5, 5000, 'first 5 rows on the standby');

        const w = writer('pc', 6, 5 + ROWS, 0.03);
        await waitFor(() => rowsOf().length >= 60, 15000, 'rows flowing before the kill');
        holder.stopping = true;
        holder.proc.kill('SIGKILL');
        const killedAt = Date.now();
        await waitFor(() => holder.exited(), 5000, 'holder to die');
        await waitFor(() => leaseState(standby) === 'held', 10000, 'the standby takes the lease');
        const takeoverMs = Date.now() - killedAt;
        assert.ok(takeoverMs < 9000, `takeover took ${takeoverMs} ms`);
        const res = await w.done;
        assert.equal(res.code, 0, res.stderr);
        const expected = Array.from({ length: 5 + ROWS }, (_, i) => i + 1);
        try {
            await waitFor(() => rowsOf().length >= expected.length, 20000, 'every row on the survivor');
        } finally {
            const got = rowsOf();
            const missing = expected.filter((n) => !got.includes(n));
            if (missing.length) console.error(`missing ${missing.length} rows, first ${missing.slice(0, 20)}\n${standby.stderr().slice(-4000)}`);
        }
        await sleep(1000);
        const got = rowsOf();
        assert.deepEqual(orderProblems(got), [], 'order / duplicates');
        assert.deepEqual(got, expected);
        const ready = await readyz(standby);
        assert.equal(ready.status, 200, JSON.stringify(ready.body));
        assert.equal(ready.body.postgres, 'ready');
        // The survivor stops cleanly (exit code 0; also catches sanitizer reports).
        const ex = await standby.stop();
        assert.equal(ex.code, 0, `${JSON.stringify(ex)}\n${standby.stderr().slice(-4000)}`);
    } finally {
        await a.stop();
        await b.stop();
    }
});
