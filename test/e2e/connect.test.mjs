// connect.test.mjs: connecting and joining (PROTOCOL 1, 3, 4.2, 4.3) with supabase-js over
// vsn 2.0.0 and 1.0.0, and the exact join-reply and heartbeat frames on a raw socket.

import assert from 'node:assert/strict';

import {
    client, rawConnect, sign, sleep, startGateway, subscribe, test, useGateway, waitFor, wsUrlFor,
} from './lib.mjs';

const gw = useGateway();
const gwSmall = useGateway({ args: { max_connections: 3, idle_timeout: 10 } });
const key = sign({ role: 'anon' });

test('A1 supabase-js (vsn 2.0.0) subscribes to room1 (PROTOCOL 4.2, 4.3)', async () => {
    const sb = client(gw.url, key);
    const ch = sb.channel('room1');
    assert.equal(await subscribe(ch), 'SUBSCRIBED');
    assert.equal(ch.state, 'joined');
    // The client really spoke vsn 2.0.0 on /realtime/v1/websocket with the apikey param.
    const url = new URL(sb.frames.sockets[0].url);
    assert.equal(url.pathname, '/realtime/v1/websocket');
    assert.equal(url.searchParams.get('vsn'), '2.0.0');
    assert.equal(url.searchParams.get('apikey'), key);
    // The join reply the client got is exactly the contract's.
    const join = sb.frames.sent.find((f) => Array.isArray(f) && f[3] === 'phx_join');
    const reply = sb.frames.recv.find((f) => Array.isArray(f) && f[3] === 'phx_reply' && f[1] === join[1]);
    assert.deepEqual(reply, [join[0], join[1], 'realtime:room1', 'phx_reply', { status: 'ok', response: { postgres_changes: [] } }]);
});

test('A2 raw join reply is exact and echoes the ref strings (PROTOCOL 4.3, 2)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key), { firstRef: 6 });
    const { jr, reply } = await raw.join('realtime:room1');
    assert.equal(jr, '6');
    assert.deepEqual(reply, ['6', '6', 'realtime:room1', 'phx_reply', { status: 'ok', response: { postgres_changes: [] } }]);
    // Non-numeric ref strings are echoed unchanged too.
    raw.send(['jr-x', 'ref-x', 'realtime:room2', 'phx_join', { config: { broadcast: { ack: false, self: false }, presence: { key: '', enabled: false }, postgres_changes: [], private: false } }]);
    const r2 = await raw.next((f) => f[3] === 'phx_reply' && f[1] === 'ref-x');
    assert.deepEqual(r2, ['jr-x', 'ref-x', 'realtime:room2', 'phx_reply', { status: 'ok', response: { postgres_changes: [] } }]);
});

test('A3 heartbeat reply is exact, also with no channel joined (PROTOCOL 3)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    raw.send([null, '10', 'phoenix', 'heartbeat', {}]);
    const reply = await raw.next((f) => f[2] === 'phoenix');
    assert.deepEqual(reply, [null, '10', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
    await raw.join('realtime:room1');
    raw.send([null, '11', 'phoenix', 'heartbeat', {}]);
    assert.deepEqual(await raw.next((f) => f[2] === 'phoenix'), [null, '11', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
});

test('A4 join with string booleans and unknown keys succeeds (PROTOCOL 4.2)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    raw.send(['2', '2', 'realtime:room-extra', 'phx_join', {
        config: { broadcast: { ack: 'true', self: 'false' }, presence: { key: 'k', enabled: 'false' }, private: false, whatever: 1 },
        version: 'realtime-js/2.119.1',
        access_token: key,
        unknown_key: { a: 1 },
    }]);
    const r2 = await raw.next((f) => f[3] === 'phx_reply' && f[1] === '2');
    assert.equal(r2[4].status, 'ok', JSON.stringify(r2));
    // ack given as the string "true" is honoured (PROTOCOL 4.2: booleans may be strings).
    raw.send(['2', '3', 'realtime:room-extra', 'broadcast', { type: 'broadcast', event: 'e', payload: {} }]);
    assert.deepEqual(await raw.next((f) => f[1] === '3'), ['2', '3', 'realtime:room-extra', 'phx_reply', { status: 'ok', response: {} }]);
});

test('A5 supabase-js with vsn 1.0.0 subscribes (PROTOCOL 1.4)', async () => {
    const sb = client(gw.url, key, { vsn: '1.0.0' });
    const ch = sb.channel('room1');
    assert.equal(await subscribe(ch), 'SUBSCRIBED');
    assert.equal(new URL(sb.frames.sockets[0].url).searchParams.get('vsn'), '1.0.0');
    const join = sb.frames.sent.find((f) => f.event === 'phx_join');
    const reply = sb.frames.recv.find((f) => f.event === 'phx_reply' && f.ref === join.ref);
    assert.deepEqual(reply, {
        topic: 'realtime:room1',
        event: 'phx_reply',
        payload: { status: 'ok', response: { postgres_changes: [] } },
        ref: join.ref,
        join_ref: join.join_ref,
    });
});

test('A6 raw vsn 1.0.0: object frames with all five keys (PROTOCOL 1.4, 3)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key, '1.0.0'));
    const hb = await raw.heartbeat();
    assert.deepEqual(hb, { topic: 'phoenix', event: 'phx_reply', payload: { status: 'ok', response: {} }, ref: hb.ref, join_ref: null });
    const { jr, reply } = await raw.join('realtime:room-v1');
    assert.deepEqual(reply, { topic: 'realtime:room-v1', event: 'phx_reply', payload: { status: 'ok', response: { postgres_changes: [] } }, ref: jr, join_ref: jr });
});

test('A7 two channels on one socket get distinct join refs and both join (PROTOCOL 2)', async () => {
    const sb = client(gw.url, key);
    const a = sb.channel('room-a');
    const b = sb.channel('room-b');
    await Promise.all([subscribe(a), subscribe(b)]);
    assert.equal(sb.frames.sockets.length, 1);
    const joins = sb.frames.sent.filter((f) => Array.isArray(f) && f[3] === 'phx_join');
    assert.equal(joins.length, 2);
    assert.notEqual(joins[0][0], joins[1][0]);
    await waitFor(() => sb.frames.recv.filter((f) => Array.isArray(f) && f[3] === 'phx_reply').length >= 2);
});

test('A8 an unsupported vsn is refused at the upgrade (PROTOCOL 1.1)', async () => {
    for (const vsn of ['3.0.0', 'x']) {
        const err = await rawConnect(wsUrlFor(gw, key, vsn)).then((r) => {
            r.close();
            return null;
        }, (e) => e);
        assert.ok(err && err.status >= 400 && err.status < 500, `vsn ${vsn}: ${err ? err.status : 'accepted'}`);
    }
});

test('A9 --max_connections: one more upgrade gets 429 "Too many connected users" (PROTOCOL 1.1, 9)', async () => {
    const open = [];
    for (let i = 0; i < 3; i++) open.push(await rawConnect(wsUrlFor(gwSmall, key)));
    const err = await rawConnect(wsUrlFor(gwSmall, key)).then(() => null, (e) => e);
    assert.ok(err, 'the fourth connection was accepted');
    assert.equal(err.status, 429);
    assert.deepEqual(JSON.parse(err.body), { error: 'Too many connected users' });
    open[0].close();
    await open[0].closed;
    const again = await waitFor(() => rawConnect(wsUrlFor(gwSmall, key)).catch(() => null), 3000, 'a free slot');
    await again.heartbeat();
    for (const r of [...open, again]) {
        r.close();
        await r.closed;
    }
    // Let the gateway see the closes before the next test uses this gateway.
    await sleep(300);
});

test('A10 --idle_timeout closes a silent socket; heartbeats keep a socket open (PROTOCOL 3)', async () => {
    const silent = await rawConnect(wsUrlFor(gwSmall, key));
    const beating = await rawConnect(wsUrlFor(gwSmall, key));
    const t0 = Date.now();
    let closedAt = 0;
    silent.closed.then(() => (closedAt = Date.now()));
    while (Date.now() - t0 < 14_000 && !closedAt) {
        await beating.heartbeat();
        await sleep(2000);
    }
    assert.ok(closedAt, 'the silent socket was not closed within 14 s (idle_timeout 10 s)');
    assert.ok(closedAt - t0 >= 9000, `closed after ${closedAt - t0} ms, before idle_timeout`);
    assert.ok(!beating.isClosed(), 'the socket that sent heartbeats was closed');
    await beating.heartbeat();
});

test('A11 --max_connections_per_ip: one more upgrade from the address gets 429, a freed slot is reused', async () => {
    const gwIp = await startGateway({ args: { max_connections_per_ip: 2 } });
    const open = [await rawConnect(wsUrlFor(gwIp, key)), await rawConnect(wsUrlFor(gwIp, key))];
    const err = await rawConnect(wsUrlFor(gwIp, key)).then(() => null, (e) => e);
    assert.ok(err, 'the third connection from 127.0.0.1 was accepted');
    assert.equal(err.status, 429);
    assert.deepEqual(JSON.parse(err.body), { error: 'Too many connections from this address' });
    open[0].close();
    await open[0].closed;
    const again = await waitFor(() => rawConnect(wsUrlFor(gwIp, key)).catch(() => null), 3000, 'a free slot');
    await again.heartbeat();
    for (const r of [open[1], again]) {
        r.close();
        await r.closed;
    }
    await gwIp.stop();
});
