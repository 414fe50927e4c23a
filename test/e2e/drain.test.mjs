// drain.test.mjs: processes sharing one port (SO_REUSEPORT, `workers`) and the graceful
// SIGTERM drain: channels get the system message "Server requested disconnect", sockets
// close with 1001, supabase-js reconnects to a process still serving and rejoins.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';

import {
    SECRET, client, collect, freePort, gatewayBin, httpRequest, rawConnect, sign, startGateway,
    subscribe, test, waitFor, wsUrlFor,
} from './lib.mjs';

const key = sign({ role: 'admin' });

test('a SIGTERM drains: system message, close 1001, exit 0 (DESIGN 2)', async () => {
    const gw = await startGateway({ args: { shutdown_timeout: 5 } });
    const raw = await rawConnect(wsUrlFor(gw, key));
    const { jr } = await raw.join('realtime:drain1');
    gw.stopping = true;
    gw.proc.kill('SIGTERM');
    const sys = await raw.next((f) => f[3] === 'system');
    assert.deepEqual(sys, [jr, null, 'realtime:drain1', 'system',
        { extension: 'system', status: 'ok', message: 'Server requested disconnect', channel: 'drain1' }]);
    const closed = await raw.closed;
    assert.equal(closed.code, 1001);
    await waitFor(() => gw.exited(), 8000, 'exit after the drain');
    assert.deepEqual(gw.exited(), { code: 0, signal: null });
    assert.match(gw.stderr(), /event=draining connections=1/);
});

test('two processes share one port; a client keeps receiving after one of them drains', async () => {
    const a = await startGateway();
    // A second, separate process on the same port (SO_REUSEPORT).
    const b = await startGateway({ port: a.port });
    const sender = client(b.url, key);
    const receiver = client(a.url, key);
    const ch = receiver.channel('drain2');
    const got = collect(ch, 'broadcast', { event: 'ping' });
    await subscribe(ch);
    // Stop whichever processes are not b until the receiver sits on b: drain a.
    a.stopping = true;
    a.proc.kill('SIGTERM');
    await waitFor(() => a.exited(), 8000, 'first process exit');
    const sch = sender.channel('drain2');
    await subscribe(sch);
    // The receiver reconnects (to b, the only process left) and rejoins by itself.
    await waitFor(async () => {
        await sch.send({ type: 'broadcast', event: 'ping', payload: { n: 1 } });
        return got.length > 0;
    }, 15000, 'delivery after the reconnect');
    assert.equal(got[0].payload.n, 1);
});

test('workers 2: two processes serve the port; SIGTERM stops them all', async () => {
    const port = await freePort();
    const proc = spawn(gatewayBin(), ['--port', String(port), '--jwt_secret', SECRET, '--workers', '2'],
        { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stderr.on('data', (d) => { log += d; });
    const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    await waitFor(async () => (await httpRequest('GET', `http://127.0.0.1:${port}/healthz`, { timeoutMs: 500 }).catch(() => ({}))).status === 200, 10000, 'healthz');
    await waitFor(() => (log.match(/event=listening/g) || []).length === 2, 5000, 'two listening workers');
    const pids = [...log.matchAll(/worker_started worker=\d+ pid=(\d+)/g)].map((m) => Number(m[1]));
    assert.equal(pids.length, 2);
    proc.kill('SIGTERM');
    const ex = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 8000))]);
    assert.deepEqual(ex, { code: 0, signal: null });
    for (const pid of pids) assert.ok(!fs.existsSync(`/proc/${pid}`) || fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), `worker ${pid} still running`);
});
