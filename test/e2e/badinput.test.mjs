// badinput.test.mjs: hostile and malformed input on raw sockets (PROTOCOL 1.2, 1.3, 4.1,
// 4.3, 9; DESIGN 5). After each case the same socket still answers a heartbeat (unless the
// contract closes it) and a separate client can still join and receive a broadcast; the
// gateway never dies. Limits: frame size (close 1009), topic length, channels per socket,
// joins per second, events per second, presence calls.

import assert from 'node:assert/strict';
import net from 'node:net';

import {
    assertServes,
    asBroadcast,
    encodeKind3,
    httpRequest,
    rawConnect,
    sign,
    test,
    uniq,
    useGateway,
    wsUrlFor,
} from './lib.mjs';

const gw = useGateway({
    args: {
        max_frame_bytes: 65536,
        max_topic_bytes: 100,
        max_channels_per_socket: 5,
        max_joins_per_second: 50,
        max_events_per_second: 20,
        max_presence_calls: 3,
    },
});
const gwJoins = useGateway({ args: { max_joins_per_second: 5, max_channels_per_socket: 100 } });
const key = sign({ role: 'authenticated' });

// The socket answers a heartbeat, and a separate client still works.
async function stillFine(raw, g = gw) {
    const hb = await raw.heartbeat();
    assert.equal(hb[4].status, 'ok');
    await assertServes(g, key);
}

test('H1 malformed JSON text frames are dropped; socket and gateway fine (PROTOCOL 1.2)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    for (const junk of ['[', 'not json', '', '{"a":', '\u0000\u0001', '[null,"1","phoenix","heartbeat",{}', '"just a string"', '42', 'null']) {
        raw.send(junk);
    }
    await stillFine(raw);
});

test('H2 a JSON object on a vsn 2.0.0 socket is not a frame; socket fine (PROTOCOL 1.2)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    raw.send({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '1', join_ref: null });
    raw.send({ topic: 'realtime:x', event: 'phx_join', payload: {}, ref: '2', join_ref: '2' });
    await stillFine(raw);
    assert.ok(!raw.frames.some((f) => Array.isArray(f) && f[3] === 'phx_reply' && f[1] === '2' && f[4].status === 'ok'), 'an object frame joined a channel');
});

test('H3 wrong element types and shapes never crash (PROTOCOL 1.2)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const cases = [
        [null, 5, 'phoenix', 'heartbeat', {}],
        [1, 2, 3, 4, 5],
        ['1', '1', null, 'phx_join', {}],
        ['1', '1', 'realtime:x', 'phx_join', 'payload is a string'],
        ['1', '1', 'realtime:x', 'phx_join', { config: 'not an object' }],
        ['1', '1', 'realtime:x', 'phx_join', { config: { broadcast: 7, presence: [], postgres_changes: 'x', private: 'maybe' } }],
        ['1', '1', 'realtime:x', null, {}],
        ['1', '1', 'realtime:x', 42, {}],
        [],
        ['1'],
        ['1', '2', 'realtime:y'],
        [{}, [], {}, [], {}],
        ['1', '1', 'realtime:z', 'phx_join', { config: { presence: { key: { deep: 1 } } }, access_token: 42 }],
        [null, '9', 'phoenix', 'heartbeat', {}, 'extra', 'elements'],
        ['x'.repeat(300), 'y'.repeat(300), `realtime:${'t'.repeat(50)}`, 'phx_join', {}],
    ];
    for (const c of cases) raw.send(c);
    // Deeply nested JSON (beyond any sane depth limit).
    raw.send(`${'['.repeat(20000)}${']'.repeat(20000)}`);
    raw.send(`[null,"8","phoenix","heartbeat",${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}]`);
    await stillFine(raw);
    // When topic and ref are readable, a reply (if any) echoes the ref as given.
    for (const f of raw.frames) {
        if (Array.isArray(f) && f[3] === 'phx_reply' && f[2] === 'phoenix' && f[1] === '9') assert.equal(f[4].status, 'ok');
    }
});

test('H4 unknown event on a joined topic -> error reply naming the event (PROTOCOL 1.2)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('h4')}`;
    const { jr } = await raw.join(topic);
    const ref = raw.ref();
    raw.send([jr, ref, topic, 'foo_event', { a: 1 }]);
    const reply = await raw.next((f) => f[1] === ref);
    assert.equal(reply[3], 'phx_reply');
    assert.equal(reply[0], jr);
    assert.equal(reply[2], topic);
    assert.equal(reply[4].status, 'error');
    assert.match(JSON.stringify(reply[4].response), /foo_event/);
    await stillFine(raw);
});

test('H5 push to an unjoined topic -> exact "unmatched topic" reply (PROTOCOL 4.1)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    raw.send([null, '11', 'realtime:nojoin', 'broadcast', { type: 'broadcast', event: 'e', payload: {} }]);
    assert.deepEqual(await raw.next((f) => f[1] === '11'), [null, '11', 'realtime:nojoin', 'phx_reply', { status: 'error', response: { reason: 'unmatched topic' } }]);
    raw.send(['77', '12', 'realtime:nojoin', 'presence', { type: 'presence', event: 'track', payload: {} }]);
    const r = await raw.next((f) => f[1] === '12');
    assert.equal(r[2], 'realtime:nojoin');
    assert.deepEqual(r[4], { status: 'error', response: { reason: 'unmatched topic' } });
    raw.send(['77', '13', 'realtime:nojoin', 'access_token', { access_token: key }]);
    await stillFine(raw);
});

test('H6 bad binary frames (unknown kind, lengths past the end) are ignored (PROTOCOL 1.3)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('h6')}`;
    const { jr } = await raw.join(topic, { broadcast: { self: true } });
    raw.send(Buffer.from([9, 1, 2, 3, 4, 5, 6, 7]));
    raw.send(Buffer.from([0, 0, 0]));
    raw.send(Buffer.from([1]));
    raw.send(Buffer.from([2, 255, 255]));
    raw.send(Buffer.from([4, 3, 3, 3, 1, 0x61, 0x62]));
    raw.send(Buffer.alloc(0));
    raw.send(Buffer.from([3]));
    raw.send(encodeKind3({ joinRef: jr, ref: '5', topic, event: 'bad', lens: { topic: 250 } }));
    raw.send(encodeKind3({ joinRef: jr, ref: '6', topic, event: 'bad', lens: { meta: 200 } }));
    raw.send(encodeKind3({ joinRef: jr, ref: '7', topic, event: 'bad', meta: '{not json', payload: {} }));
    raw.send(encodeKind3({ joinRef: jr, ref: '8', topic, event: 'bad', payload: Buffer.from('{"x":') , lens: { encoding: 1 } }));
    raw.send(encodeKind3({ joinRef: jr, ref: '9', topic, event: 'bad', lens: { encoding: 7 } }));
    raw.send(encodeKind3({ joinRef: jr, ref: '10', topic: 'realtime:not-joined', event: 'bad' }));
    await stillFine(raw);
    // A valid kind 3 still works on the same socket; none of the bad ones was delivered as "bad"
    // with a broken topic.
    raw.send(encodeKind3({ joinRef: jr, ref: '11', topic, event: 'good', payload: { ok: 1 } }));
    const got = asBroadcast(await raw.next((f) => asBroadcast(f, topic)?.event === 'good'), topic);
    assert.deepEqual(got.payload, { ok: 1 });
    for (const f of raw.frames) {
        const b = asBroadcast(f);
        if (b && b.event === 'bad') assert.equal(f.binary === 4 ? f.topic : f[2], topic);
    }
});

test('H7 a frame larger than --max_frame_bytes closes the socket with 1009 (DESIGN 5)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('h7')}`;
    const { jr } = await raw.join(topic);
    raw.broadcast(jr, topic, 'big', { s: 'x'.repeat(70_000) });
    const closed = await Promise.race([raw.closed, new Promise((r) => setTimeout(() => r(null), 3000))]);
    assert.ok(closed, 'socket not closed');
    assert.equal(closed.code, 1009);
    await assertServes(gw, key);
    // Just under the limit is fine.
    const raw2 = await rawConnect(wsUrlFor(gw, key));
    raw2.send(`[null,"1","phoenix","heartbeat",{"pad":"${'x'.repeat(60_000)}"}]`);
    assert.equal((await raw2.next((f) => f[1] === '1'))[4].status, 'ok');
});

test('H8 topic longer than --max_topic_bytes -> join error; at the limit -> ok (PROTOCOL 4.3)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const atLimit = `realtime:${'a'.repeat(100 - 9)}`;
    const over = `realtime:${'b'.repeat(101 - 9)}`;
    const { reply: ok } = await raw.join(atLimit);
    assert.equal(ok[4].status, 'ok', JSON.stringify(ok));
    const { jr, reply } = await raw.join(over);
    assert.equal(reply[0], jr);
    assert.equal(reply[2], over);
    assert.equal(reply[4].status, 'error');
    assert.equal(typeof reply[4].response.reason, 'string');
    const { reply: huge } = await raw.join(`realtime:${'c'.repeat(20_000)}`);
    assert.equal(huge[4].status, 'error');
    await stillFine(raw);
});

test('H9 more channels than --max_channels_per_socket -> ChannelRateLimitReached (PROTOCOL 4.3, 9)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    for (let i = 0; i < 5; i++) {
        const { reply } = await raw.join(`realtime:${uniq('h9')}`);
        assert.equal(reply[4].status, 'ok', `join ${i}: ${JSON.stringify(reply)}`);
    }
    const { jr, reply } = await raw.join(`realtime:${uniq('h9')}`);
    assert.deepEqual(reply[4], { status: 'error', response: { reason: 'ChannelRateLimitReached: Too many channels' } });
    assert.equal(reply[0], jr);
    await stillFine(raw);
});

test('H10 join flood beyond --max_joins_per_second -> ClientJoinRateLimitReached, socket closed (PROTOCOL 9)', async () => {
    const raw = await rawConnect(wsUrlFor(gwJoins, key));
    const refs = [];
    for (let i = 0; i < 30; i++) {
        const jr = raw.ref();
        refs.push(jr);
        raw.send([jr, jr, `realtime:${uniq('h10')}`, 'phx_join', { config: { broadcast: { ack: false, self: false }, presence: { key: '', enabled: false }, postgres_changes: [], private: false } }]);
    }
    const err = await raw.next((f) => Array.isArray(f) && f[3] === 'phx_reply' && f[4].status === 'error', 4000, 'join rate error');
    assert.deepEqual(err[4], { status: 'error', response: { reason: 'ClientJoinRateLimitReached: Too many joins per second' } });
    const closed = await Promise.race([raw.closed, new Promise((r) => setTimeout(() => r(null), 4000))]);
    assert.ok(closed, 'socket still open after the join flood');
    const oks = raw.frames.filter((f) => Array.isArray(f) && f[3] === 'phx_reply' && f[4].status === 'ok').length;
    assert.ok(oks >= 1 && oks <= 10, `${oks} joins succeeded with a limit of 5 per second`);
    await assertServes(gwJoins, key);
});

test('H11 broadcast flood beyond --max_events_per_second -> system error + phx_close (PROTOCOL 9)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('h11')}`;
    const { jr } = await raw.join(topic);
    for (let i = 0; i < 100; i++) raw.broadcast(jr, topic, 'flood', { i });
    const sys = await raw.next((f) => f[3] === 'system', 4000, 'system error');
    assert.deepEqual(sys, [jr, null, topic, 'system', { extension: 'system', status: 'error', message: 'Too many messages per second', channel: topic.slice(9) }]);
    const close = await raw.next((f) => f[3] === 'phx_close');
    assert.deepEqual(close, [jr, jr, topic, 'phx_close', {}]);
    assert.ok(close.seq > sys.seq);
    await stillFine(raw);
});

test('H12 more than --max_presence_calls track calls -> "Client presence rate limit exceeded" (PROTOCOL 7.1, 9)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('h12')}`;
    const { jr } = await raw.join(topic, { presence: { key: 'p', enabled: true } });
    const refs = [];
    for (let i = 0; i < 3; i++) {
        const ref = raw.ref();
        refs.push(ref);
        raw.send([jr, ref, topic, 'presence', { type: 'presence', event: 'track', payload: { i } }]);
        assert.equal((await raw.next((f) => f[1] === ref))[4].status, 'ok', `track ${i}`);
    }
    raw.send([jr, raw.ref(), topic, 'presence', { type: 'presence', event: 'track', payload: { i: 3 } }]);
    const sys = await raw.next((f) => f[3] === 'system', 3000, 'system error');
    assert.deepEqual(sys, [jr, null, topic, 'system', { extension: 'system', status: 'error', message: 'Client presence rate limit exceeded', channel: topic.slice(9) }]);
    assert.deepEqual(await raw.next((f) => f[3] === 'phx_close'), [jr, jr, topic, 'phx_close', {}]);
    await stillFine(raw);
});

test('H13 text on a vsn 1.0.0 socket that is an array, and binary on vsn 1.0.0, are dropped (PROTOCOL 1.4)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key, '1.0.0'));
    raw.send([null, '1', 'phoenix', 'heartbeat', {}]);
    raw.send(encodeKind3({ joinRef: '1', ref: '2', topic: 'realtime:x', event: 'e' }));
    raw.send('{"topic":');
    const hb = await raw.heartbeat();
    assert.equal(hb.payload.status, 'ok');
    await assertServes(gw, key);
});

test('H14 many sockets opened and dropped abruptly mid-join leave the gateway healthy', async () => {
    for (let i = 0; i < 20; i++) {
        const raw = await rawConnect(wsUrlFor(gw, key));
        raw.send(['1', '1', `realtime:${uniq('h14')}`, 'phx_join', { config: { presence: { key: 'x', enabled: true } } }]);
        raw.send(['1', '2', `realtime:${uniq('h14')}`, 'presence', { type: 'presence', event: 'track', payload: {} }]);
        raw.close();
    }
    await assertServes(gw, key);
});

// Sends raw bytes on a fresh TCP connection; resolves with what came back (or '' on reset).
function rawHttp(g, bytes, waitMs = 1500) {
    return new Promise((resolve) => {
        const sock = net.connect(g.port, '127.0.0.1');
        let out = '';
        const done = () => {
            sock.destroy();
            resolve(out);
        };
        const timer = setTimeout(done, waitMs);
        sock.on('data', (d) => (out += d.toString('latin1')));
        sock.on('error', () => {});
        sock.on('close', () => {
            clearTimeout(timer);
            resolve(out);
        });
        sock.write(bytes);
    });
}

test('H15 odd HTTP requests get an HTTP error or a close, never a crash (DESIGN 5)', async () => {
    const paths = ['/nope%00x', '/%', '/%zz', '/realtime/v1/websocket%00?apikey=x', `/${'a'.repeat(10_000)}`, '/realtime/v1/api/broadcast/%00/events/%00', '/healthz%00'];
    for (const p of paths) {
        const r = await httpRequest('GET', `${gw.url}/`, { rawPath: p }).catch((e) => ({ status: 'reset', body: String(e) }));
        assert.ok(r.status === 'reset' || r.status >= 400, `${p.slice(0, 60)}: HTTP ${r.status}`);
        assert.equal(gw.exited(), null, `gateway died on GET ${p.slice(0, 60)}`);
    }
    const junk = [
        'GARBAGE\r\n\r\n',
        'GET / HTTP/9.9\r\n\r\n',
        'GET /healthz HTTP/1.0\r\n\r\n',
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(20_000)}\r\n\r\n`,
        'POST /realtime/v1/api/broadcast HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}',
        'POST /realtime/v1/api/broadcast HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}',
        'GET /realtime/v1/websocket?apikey=x&vsn=2.0.0 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
        '\x00\x01\x02\x03\xff\xfe\r\n\r\n',
    ];
    for (const j of junk) {
        await rawHttp(gw, Buffer.from(j, 'latin1'));
        assert.equal(gw.exited(), null, `gateway died on ${JSON.stringify(j.slice(0, 60))}`);
    }
    const h = await httpRequest('GET', `${gw.url}/healthz`);
    assert.equal(h.status, 200);
    await assertServes(gw, key);
});
