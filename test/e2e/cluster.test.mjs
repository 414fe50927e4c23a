// cluster.test.mjs: several gateway processes sharing one Redis (DESIGN 2, 4): broadcasts
// (WebSocket and REST) cross processes, a process subscribes on the bus only while it has
// local subscribers, Redis outages do not stop local delivery and are reported by /readyz
// and /metrics, and `workers N` processes form one cluster.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

import {
    SECRET, client, collect, freePort, gatewayBin, httpRequest, metrics, metricValue, restBroadcast,
    sign, sleep, startGateway, subscribe, test, uniq, waitFor,
} from './lib.mjs';

const key = sign({ role: 'admin' });
const redisDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidings-redis-'));
let redis = null;
let redisPort = 0;

function startRedis(port) {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
        '--appendonly', 'no', '--dir', redisDir], { stdio: 'ignore' });
    return proc;
}

async function redisUp(port) {
    await waitFor(() => {
        try {
            return execFileSync('redis-cli', ['-p', String(port), 'ping']).toString().trim() === 'PONG';
        } catch {
            return false;
        }
    }, 10000, 'redis up');
}

function pubsubChannels() {
    return execFileSync('redis-cli', ['-p', String(redisPort), 'pubsub', 'channels', '*']).toString()
        .split('\n').map((s) => s.trim()).filter(Boolean);
}

after(() => {
    if (redis) redis.kill('SIGKILL');
    fs.rmSync(redisDir, { recursive: true, force: true });
});

async function cluster(n) {
    if (!redis) {
        redisPort = await freePort();
        redis = startRedis(redisPort);
        await redisUp(redisPort);
    }
    const gws = [];
    for (let i = 0; i < n; i++) gws.push(await startGateway({ args: { redis: `redis://127.0.0.1:${redisPort}` } }));
    return gws;
}

test('a broadcast sent on process A reaches subscribers on B and C (WebSocket and REST)', async () => {
    const [a, b, c] = await cluster(3);
    const topic = uniq('x');
    const chB = client(b.url, key).channel(topic);
    const chC = client(c.url, key).channel(topic);
    const gotB = collect(chB, 'broadcast', { event: '*' });
    const gotC = collect(chC, 'broadcast', { event: '*' });
    await subscribe(chB);
    await subscribe(chC);
    const chA = client(a.url, key).channel(topic);
    await subscribe(chA);
    await chA.send({ type: 'broadcast', event: 'ws', payload: { n: 1 } });
    const r = await restBroadcast(a, [{ topic, event: 'rest', payload: { n: 2 } }], { apikey: key });
    assert.equal(r.status, 202);
    await waitFor(() => gotB.length === 2 && gotC.length === 2, 5000, 'deliveries on B and C');
    assert.deepEqual(gotB.map((m) => m.event), ['ws', 'rest']);
    assert.deepEqual(gotC.map((m) => m.payload.n), [1, 2]);
    await sleep(300);
    assert.equal(gotB.length, 2, 'exactly once');
    assert.ok(metricValue(await metrics(b), 'tidings_redis_received_total') >= 2);
});

test('a process subscribes on the bus only while it has local subscribers', async () => {
    const [a] = await cluster(1);
    const topic = uniq('sub');
    const ch = client(a.url, key).channel(topic);
    await subscribe(ch);
    await waitFor(() => pubsubChannels().some((c) => c.endsWith(topic)), 3000, 'SUBSCRIBE');
    await ch.unsubscribe();
    await waitFor(() => !pubsubChannels().some((c) => c.endsWith(topic)), 3000, 'UNSUBSCRIBE');
});

test('Redis restarted: local delivery continues, /readyz reports it, the bus resumes', async () => {
    const [a, b] = await cluster(2);
    const topic = uniq('outage');
    const chA = client(a.url, key).channel(topic);
    const gotA = collect(chA, 'broadcast', { event: '*' });
    const chB = client(b.url, key).channel(topic);
    const gotB = collect(chB, 'broadcast', { event: '*' });
    await subscribe(chA);
    await subscribe(chB);
    redis.kill('SIGKILL');
    await new Promise((r) => redis.once('exit', r));
    await waitFor(async () => (await httpRequest('GET', `${a.url}/readyz`)).status === 503, 10000, 'readyz 503');
    const ready = JSON.parse((await httpRequest('GET', `${a.url}/readyz`)).body);
    assert.match(ready.redis, /127\.0\.0\.1/);
    assert.equal(metricValue(await metrics(a), 'tidings_redis_up'), 0);
    // Local delivery on A still works while Redis is down.
    await restBroadcast(a, [{ topic, event: 'local', payload: {} }], { apikey: key });
    await waitFor(() => gotA.some((m) => m.event === 'local'), 3000, 'local delivery during the outage');
    redis = startRedis(redisPort);
    await redisUp(redisPort);
    await waitFor(async () => (await httpRequest('GET', `${a.url}/readyz`)).status === 200 &&
        (await httpRequest('GET', `${b.url}/readyz`)).status === 200, 15000, 'readyz 200 again');
    // Subscriptions were restored: A -> B crosses again.
    await waitFor(async () => {
        await restBroadcast(a, [{ topic, event: 'again', payload: {} }], { apikey: key });
        await sleep(200);
        return gotB.some((m) => m.event === 'again');
    }, 10000, 'cross-process delivery after the restart');
});

test('workers 2 with redis: clients on different workers see each other', async () => {
    if (!redis) await cluster(0);
    const port = await freePort();
    const proc = spawn(gatewayBin(),
        ['--port', String(port), '--jwt_secret', SECRET, '--workers', '2',
            '--redis', `redis://127.0.0.1:${redisPort}`], { stdio: 'ignore' });
    try {
        await waitFor(async () => (await httpRequest('GET', `http://127.0.0.1:${port}/healthz`, { timeoutMs: 500 }).catch(() => ({}))).status === 200, 10000, 'healthz');
        const url = `http://127.0.0.1:${port}`;
        const topic = uniq('w');
        // Enough clients that both workers get some (SO_REUSEPORT spreads by hash).
        const receivers = [];
        for (let i = 0; i < 8; i++) {
            const ch = client(url, key).channel(topic);
            receivers.push(collect(ch, 'broadcast', { event: 'all' }));
            await subscribe(ch);
        }
        const r = await restBroadcast({ url }, [{ topic, event: 'all', payload: {} }], { apikey: key });
        assert.equal(r.status, 202);
        await waitFor(() => receivers.every((g) => g.length === 1), 5000, 'every client, whatever its worker');
    } finally {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('exit', r));
    }
});

test('presence is cluster-wide; a SIGKILLed process\'s members leave within presence_timeout', async () => {
    if (!redis) await cluster(0);
    const args = { redis: `redis://127.0.0.1:${redisPort}`, presence_timeout: 3 };
    const a = await startGateway({ args });
    const b = await startGateway({ args });
    const name = uniq('pres');
    const member = async (gw, k) => {
        const ch = client(gw.url, key).channel(name, { config: { presence: { key: k } } });
        const ev = { leaves: [] };
        ch.on('presence', { event: 'sync' }, () => {});
        ch.on('presence', { event: 'leave' }, (e) => ev.leaves.push(e));
        await subscribe(ch);
        return { ch, ev, keys: () => Object.keys(ch.presenceState()).sort().join() };
    };
    const ma = await member(a, 'alice');
    const mb = await member(b, 'bob');
    assert.equal(await ma.ch.track({ user: 'alice' }), 'ok');
    assert.equal(await mb.ch.track({ user: 'bob' }), 'ok');
    await waitFor(() => ma.keys() === 'alice,bob' && mb.keys() === 'alice,bob', 5000, 'both keys on both');
    // A client joining later on B gets A's member in its presence_state (read from Redis).
    const late = await member(b, 'carol');
    await waitFor(() => late.keys() === 'alice,bob', 5000, 'state of a late joiner on B lists alice');
    assert.equal(late.ch.presenceState().alice[0].user, 'alice');
    a.stopping = true; // killed on purpose
    a.proc.kill('SIGKILL');
    const t0 = Date.now();
    await waitFor(() => mb.keys() === 'bob' && late.keys() === 'bob', 10000, 'alice gone on B');
    assert.ok(Date.now() - t0 < 3000 + 5000, 'within presence_timeout + a few seconds');
    assert.equal(mb.ev.leaves.filter((l) => l.key === 'alice').length, 1, 'one leave event for alice');
    assert.equal(mb.ev.leaves[0].leftPresences[0].user, 'alice');
    await sleep(2000);
    assert.equal(mb.ev.leaves.filter((l) => l.key === 'alice').length, 1, 'exactly once');
    // A new joiner on B no longer sees alice.
    const later = await member(b, 'dave');
    await waitFor(() => later.keys() === 'bob', 5000, 'state without alice');
});

test('cluster_messages_per_second: one user is limited across processes, others are not', async () => {
    if (!redis) {
        redisPort = await freePort();
        redis = startRedis(redisPort);
        await redisUp(redisPort);
    }
    const args = {
        redis: `redis://127.0.0.1:${redisPort}`, cluster_messages_per_second: 5, max_events_per_second: 10000,
    };
    const a = await startGateway({ args });
    const b = await startGateway({ args });
    await waitFor(async () => (await httpRequest('GET', `${a.url}/readyz`)).status === 200 &&
        (await httpRequest('GET', `${b.url}/readyz`)).status === 200, 10000, 'both ready');
    const topic = uniq('rl');
    const watcher = client(a.url, sign({ role: 'admin', sub: uniq('watcher') })).channel(topic);
    const got = collect(watcher, 'broadcast', { event: '*' });
    await subscribe(watcher);
    const user = sign({ role: 'admin', sub: uniq('sender') });
    const before = metricValue(await metrics(a), 'tidings_rate_limited_total') +
        metricValue(await metrics(b), 'tidings_rate_limited_total');
    const statuses = [];
    for (let i = 0; i < 30; i++) {
        const r = await restBroadcast(i % 2 ? b : a, [{ topic, event: 'm', payload: { i } }], { apikey: user });
        statuses.push(r.status);
        if (r.status === 429) assert.equal(JSON.parse(r.body).message, 'You have exceeded your rate limit');
        await sleep(5);
    }
    const accepted = statuses.filter((s) => s === 202).length;
    assert.ok(statuses.includes(429), `some 429s: ${statuses.join(',')}`);
    assert.ok(accepted >= 5 && accepted <= 15, `accepted ${accepted} of 30`);
    await sleep(300);
    assert.equal(got.length, accepted, 'deliveries match the accepted requests');
    assert.ok(got.length < 30);
    const after_ = metricValue(await metrics(a), 'tidings_rate_limited_total') +
        metricValue(await metrics(b), 'tidings_rate_limited_total');
    assert.equal(after_ - before, 30 - accepted);
    // Another user is unaffected.
    const other = sign({ role: 'admin', sub: uniq('other') });
    for (const gw of [a, b]) {
        const r = await restBroadcast(gw, [{ topic, event: 'o', payload: {} }], { apikey: other });
        assert.equal(r.status, 202);
    }
    await waitFor(() => got.filter((m) => m.event === 'o').length === 2, 3000, 'other user delivered');
});

test('replay (PROTOCOL 6.6): a private join with replay gets the persisted messages, then live ones, once', async () => {
    await cluster(0);
    const gw = await startGateway({ args: { redis: `redis://127.0.0.1:${redisPort}`, rule: 'allow private all * role=admin' } });
    const topic = uniq('replay');
    const t0 = Date.now() - 1000;
    const post = (event, body, persist = true) => httpRequest('POST',
        `${gw.url}/realtime/v1/api/broadcast/${topic}/events/${event}?private=true${persist ? '&persist=true' : ''}`,
        { headers: { apikey: key, 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    for (let i = 1; i <= 3; i++) assert.equal((await post('stored', { n: i })).status, 202);
    assert.equal((await post('notstored', { n: 9 }, false)).status, 202);
    const ch = client(gw.url, key).channel(topic, {
        config: { private: true, broadcast: { replay: { since: t0, limit: 10 } } },
    });
    const got = collect(ch, 'broadcast', { event: '*' });
    await subscribe(ch);
    await waitFor(() => got.length === 3, 5000, 'three replayed messages');
    assert.deepEqual(got.map((m) => m.payload.n), [1, 2, 3]);
    assert.ok(got.every((m) => m.meta && m.meta.replayed === true && typeof m.meta.id === 'string'));
    assert.equal((await post('live', { n: 4 })).status, 202);
    await waitFor(() => got.length === 4, 5000, 'the live message');
    assert.equal(got[3].payload.n, 4);
    assert.ok(!got[3].meta || !got[3].meta.replayed, 'live message not marked replayed');
    // limit is respected, and since excludes older messages.
    const ch2 = client(gw.url, key).channel(topic, {
        config: { private: true, broadcast: { replay: { since: t0, limit: 2 } } },
    });
    const got2 = collect(ch2, 'broadcast', { event: '*' });
    await subscribe(ch2);
    await waitFor(() => got2.length === 2, 5000, 'two replayed messages');
    await sleep(300);
    assert.equal(got2.length, 2);
    const ch3 = client(gw.url, key).channel(topic, {
        config: { private: true, broadcast: { replay: { since: Date.now() + 60000, limit: 10 } } },
    });
    const got3 = collect(ch3, 'broadcast', { event: '*' });
    await subscribe(ch3);
    await sleep(500);
    assert.equal(got3.length, 0);
});
