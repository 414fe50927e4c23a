// adminstats.test.mjs: GET /admin/stats, the registry of connections and subscriptions:
// its authentication (admin_secret, or a token of role admin / super_admin), its shape and
// counts on one in-memory gateway, and the cluster-wide view of two gateways sharing Redis
// (each node's blob in the registry, subscribers of a shared topic summed).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

import {
    client, freePort, httpRequest, sign, startGateway, subscribe, test, uniq, waitFor,
} from './lib.mjs';

const ADMIN_SECRET = 'admin-secret-0123456789';
const adminKey = sign({ role: 'admin' });
const userKey = sign({ role: 'authenticated' });
const redisDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidings-redis-'));
let redis = null;
const started = [];

// Every gateway must stop cleanly (exit 0 or the SIGTERM itself): a sanitizer report or a
// crash at shutdown fails the file.
after(async () => {
    const exits = await Promise.all(started.map((g) => g.stop()));
    if (redis) redis.kill('SIGKILL');
    fs.rmSync(redisDir, { recursive: true, force: true });
    exits.forEach((ex, i) => {
        if (!(ex.code === 0 || (ex.code === null && ex.signal === 'SIGTERM'))) {
            throw new Error(`gateway :${started[i].port} did not stop cleanly: ${JSON.stringify(ex)}\n${started[i].stderr().slice(-6000)}`);
        }
    });
});

async function gateway(args = {}) {
    const gw = await startGateway({ args });
    started.push(gw);
    return gw;
}

async function stats(gw, bearer) {
    const headers = bearer ? { authorization: `Bearer ${bearer}` } : {};
    const r = await httpRequest('GET', `${gw.url}/admin/stats`, { headers });
    return { status: r.status, body: r.body ? JSON.parse(r.body) : null };
}

const topicOf = (s, name) => s.topics.find((t) => t.topic === name && !t.private);

test('401 without a token, with a user token or a wrong secret; 200 for admins', async () => {
    const plain = await gateway();
    assert.equal((await stats(plain)).status, 401);
    assert.deepEqual((await stats(plain)).body, { message: 'Unauthorized' });
    assert.equal((await stats(plain, userKey)).status, 401);
    assert.equal((await stats(plain, 'garbage')).status, 401);
    assert.equal((await stats(plain, ADMIN_SECRET)).status, 401, 'no admin_secret configured');
    assert.equal((await stats(plain, adminKey)).status, 200);
    assert.equal((await stats(plain, sign({ role: 'super_admin' }))).status, 200);

    const withSecret = await gateway({ admin_secret: ADMIN_SECRET });
    assert.equal((await stats(withSecret, ADMIN_SECRET)).status, 200);
    assert.equal((await stats(withSecret, `${ADMIN_SECRET}x`)).status, 401);
    assert.equal((await stats(withSecret, userKey)).status, 401);
    assert.equal((await stats(withSecret, adminKey)).status, 200);
});

test('in memory: one node; connections, channels and subscribers per topic', async () => {
    const gw = await gateway();
    const t1 = uniq('room'), t2 = uniq('room');
    const a = client(gw.url, userKey), b = client(gw.url, userKey);
    await subscribe(a.channel(t1));
    await subscribe(b.channel(t1));
    await subscribe(b.channel(t2, { config: { presence: { key: 'bob' } } }));
    const s = (await stats(gw, adminKey)).body;
    assert.equal(s.nodes.length, 1);
    assert.equal(s.totals.nodes, 1);
    assert.equal(s.totals.connections, 2);
    assert.equal(s.totals.channels, 3);
    const node = s.nodes[0];
    assert.equal(typeof node.node, 'string');
    assert.equal(node.pid, gw.pid);
    assert.equal(node.connections, 2);
    assert.ok(Math.abs(node.started_at - Date.now() / 1000) < 120);
    assert.deepEqual(topicOf(s, t1), { topic: t1, private: false, subscribers: 2, presence: 0 });
    assert.equal(topicOf(s, t2).subscribers, 1);
    assert.equal(s.topics[0].topic, t1, 'sorted by subscribers');
    assert.deepEqual(topicOf(node, t1), topicOf(s, t1));
    const tracked = b.channel(t2);
    assert.equal(await tracked.track({ on: true }), 'ok');
    await waitFor(async () => topicOf((await stats(gw, adminKey)).body, t2).presence === 1, 3000, 'presence 1');
    await a.removeAllChannels();
    await waitFor(async () => topicOf((await stats(gw, adminKey)).body, t1).subscribers === 1, 3000,
        'one subscriber left');
});

function startRedis(port) {
    return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
        '--appendonly', 'no', '--dir', redisDir], { stdio: 'ignore' });
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

test('with Redis: every node lists both nodes and the cluster-wide subscribers', async () => {
    const port = await freePort();
    redis = startRedis(port);
    await redisUp(port);
    const args = { redis: `redis://127.0.0.1:${port}`, admin_secret: ADMIN_SECRET };
    const [ga, gb] = [await gateway(args), await gateway(args)];
    const shared = uniq('shared'), onlyA = uniq('onlya');
    const ca = client(ga.url, userKey), cb = client(gb.url, userKey), cb2 = client(gb.url, userKey);
    await subscribe(ca.channel(shared));
    await subscribe(ca.channel(onlyA));
    await subscribe(cb.channel(shared));
    await subscribe(cb2.channel(shared));
    for (const gw of [ga, gb]) {
        const s = await waitFor(async () => {
            const r = await stats(gw, ADMIN_SECRET);
            if (r.status !== 200) return null;
            const t = topicOf(r.body, shared);
            return r.body.totals.nodes === 2 && t && t.subscribers === 3 && r.body.totals.connections === 3
                ? r.body : null;
        }, 8000, `cluster view on :${gw.port}`);
        assert.deepEqual(s.nodes.map((n) => n.pid).sort(), [ga.pid, gb.pid].sort());
        assert.equal(s.totals.channels, 4);
        assert.equal(topicOf(s, onlyA).subscribers, 1);
        const nodeB = s.nodes.find((n) => n.pid === gb.pid);
        assert.equal(topicOf(nodeB, shared).subscribers, 2);
        assert.equal(topicOf(nodeB, onlyA), undefined);
    }
    const keys = execFileSync('redis-cli', ['-p', String(port), 'keys', 'tidings:stats*']).toString();
    assert.match(keys, /tidings:stats:/);
});
