// broadcast.test.mjs: client broadcasts (PROTOCOL 1.3, 6.1, 6.2) between supabase-js clients
// over vsn 2.0.0 (binary kind 3 pushes) and vsn 1.0.0 (JSON pushes): delivery shape, self,
// ack, binary payloads, public/private separation, wildcard and case-insensitive events.

import assert from 'node:assert/strict';

import {
    asBroadcast,
    client,
    collect,
    encodeKind3,
    never,
    rawConnect,
    sign,
    subscribe,
    test,
    uniq,
    useGateway,
    waitFor,
    wsUrlFor,
} from './lib.mjs';

const gw = useGateway({ args: { rule: 'allow private all * role=authenticated', max_payload_bytes: 65536 } });
const key = sign({ role: 'authenticated' });

// Two subscribed clients on one channel name; opts per side: {vsn, config}.
async function pair(name, aOpts = {}, bOpts = {}) {
    const a = client(gw.url, key, { vsn: aOpts.vsn });
    const b = client(gw.url, key, { vsn: bOpts.vsn });
    const cha = a.channel(name, { config: aOpts.config || {} });
    const chb = b.channel(name, { config: bOpts.config || {} });
    const gotA = collect(cha, 'broadcast', { event: aOpts.event || 'cursor' });
    const gotB = collect(chb, 'broadcast', { event: bOpts.event || 'cursor' });
    await Promise.all([subscribe(cha), subscribe(chb)]);
    return { a, b, cha, chb, gotA, gotB };
}

const PAYLOAD = { x: 'é', emoji: '😀', n: 1, nested: { arr: [1, 'two', null, true] } };

test('B1 vsn 2.0.0 send() goes as binary kind 3 and reaches the other client (PROTOCOL 1.3, 6.2)', async () => {
    const { a, cha, gotB } = await pair(uniq('b1'));
    assert.equal(await cha.send({ type: 'broadcast', event: 'cursor', payload: PAYLOAD }), 'ok');
    const sent = a.frames.sent.find((f) => f.binary === 3);
    assert.ok(sent, 'supabase-js sent a kind 3 frame');
    assert.equal(sent.event, 'cursor');
    await waitFor(() => gotB.length === 1, 3000, 'broadcast at B');
    assert.deepEqual(gotB[0], { type: 'broadcast', event: 'cursor', payload: PAYLOAD });
});

test('B2 vsn 1.0.0 send() (JSON push) reaches vsn 1.0.0 and vsn 2.0.0 clients (PROTOCOL 1.4, 6.1)', async () => {
    const name = uniq('b2');
    const { a, b, cha, gotB } = await pair(name, { vsn: '1.0.0' }, { vsn: '1.0.0' });
    const c = client(gw.url, key);
    const chc = c.channel(name);
    const gotC = collect(chc, 'broadcast', { event: 'cursor' });
    await subscribe(chc);
    assert.equal(await cha.send({ type: 'broadcast', event: 'cursor', payload: PAYLOAD }), 'ok');
    assert.ok(a.frames.sent.some((f) => f.event === 'broadcast' && f.payload.event === 'cursor'), 'sent as JSON');
    await waitFor(() => gotB.length === 1 && gotC.length === 1, 3000, 'broadcast at B and C');
    assert.deepEqual(gotB[0], { type: 'broadcast', event: 'cursor', payload: PAYLOAD });
    assert.deepEqual(gotC[0], { type: 'broadcast', event: 'cursor', payload: PAYLOAD });
    // The vsn 1 receiver got a JSON object with all five keys.
    const frame = b.frames.recv.find((f) => f.event === 'broadcast');
    assert.deepEqual(Object.keys(frame).sort(), ['event', 'join_ref', 'payload', 'ref', 'topic']);
    assert.equal(frame.topic, `realtime:${name}`);
    assert.equal(frame.ref, null);
});

test('B3 self:false does not echo to the sender, self:true does (PROTOCOL 6.1)', async () => {
    const off = await pair(uniq('b3'));
    await off.cha.send({ type: 'broadcast', event: 'cursor', payload: { i: 1 } });
    await waitFor(() => off.gotB.length === 1, 3000, 'broadcast at B');
    await never(() => off.gotA.length > 0, 400, 'echo to sender with self:false');

    const on = await pair(uniq('b3s'), { config: { broadcast: { self: true } } });
    await on.cha.send({ type: 'broadcast', event: 'cursor', payload: { i: 2 } });
    await waitFor(() => on.gotA.length === 1 && on.gotB.length === 1, 3000, 'echo and delivery');
    assert.deepEqual(on.gotA[0], { type: 'broadcast', event: 'cursor', payload: { i: 2 } });
    await never(() => on.gotA.length > 1 || on.gotB.length > 1, 300, 'duplicate delivery');
});

test('B4 ack:true: send() resolves ok from the server reply; no reply without ack (PROTOCOL 6.1)', async () => {
    const name = uniq('b4');
    const { a, cha, gotB } = await pair(name, { config: { broadcast: { ack: true } } });
    assert.equal(await cha.send({ type: 'broadcast', event: 'cursor', payload: { i: 1 } }, { timeout: 3000 }), 'ok');
    const push = a.frames.sent.find((f) => f.binary === 3);
    const reply = a.frames.recv.find((f) => Array.isArray(f) && f[3] === 'phx_reply' && f[1] === push.ref);
    assert.deepEqual(reply, [push.joinRef, push.ref, `realtime:${name}`, 'phx_reply', { status: 'ok', response: {} }]);
    await waitFor(() => gotB.length === 1);

    // Raw, without ack: no reply to the push.
    const raw = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('b4raw')}`;
    const { jr } = await raw.join(topic, { broadcast: { self: true } });
    const ref = raw.broadcast(jr, topic, 'e', { a: 1 });
    await raw.next((f) => asBroadcast(f, topic));
    await raw.none((f) => Array.isArray(f) && f[1] === ref, 300, 'reply to a push without ack');
});

test('B5 ArrayBuffer payload: arrives as ArrayBuffer at vsn 2, never at vsn 1 (PROTOCOL 1.3, 1.4)', async () => {
    const name = uniq('b5');
    const { cha, gotB } = await pair(name);
    const v1 = client(gw.url, key, { vsn: '1.0.0' });
    const chv1 = v1.channel(name);
    const gotV1 = collect(chv1, 'broadcast', { event: '*' });
    await subscribe(chv1);
    const bytes = new Uint8Array([0, 1, 2, 250, 255, 0x7b]);
    assert.equal(await cha.send({ type: 'broadcast', event: 'cursor', payload: bytes.buffer }), 'ok');
    await waitFor(() => gotB.length === 1, 3000, 'binary broadcast at B');
    assert.equal(gotB[0].type, 'broadcast');
    assert.equal(gotB[0].event, 'cursor');
    assert.ok(gotB[0].payload instanceof ArrayBuffer, `payload is ${Object.prototype.toString.call(gotB[0].payload)}`);
    assert.deepEqual([...new Uint8Array(gotB[0].payload)], [...bytes]);
    // A JSON message sent after it reaches the vsn 1 client; the binary one never does.
    await cha.send({ type: 'broadcast', event: 'after', payload: { ok: 1 } });
    await waitFor(() => gotV1.some((m) => m.event === 'after'), 3000, 'JSON broadcast at the vsn 1 client');
    assert.deepEqual(gotV1.map((m) => m.event), ['after']);
});

test('B6 public and private channels of one name are separate (PROTOCOL 4.1, 6.2)', async () => {
    const name = uniq('b6');
    const pub = await pair(name);
    const priv = await pair(name, { config: { private: true } }, { config: { private: true } });
    await pub.cha.send({ type: 'broadcast', event: 'cursor', payload: { from: 'public' } });
    await priv.cha.send({ type: 'broadcast', event: 'cursor', payload: { from: 'private' } });
    await waitFor(() => pub.gotB.length >= 1 && priv.gotB.length >= 1, 3000, 'both deliveries');
    await never(() => pub.gotB.length > 1 || priv.gotB.length > 1, 400, 'cross delivery');
    assert.deepEqual(pub.gotB[0].payload, { from: 'public' });
    assert.deepEqual(priv.gotB[0].payload, { from: 'private' });
    assert.equal(pub.gotA.length + priv.gotA.length, 0);
});

test("B7 event '*' receives every event; event names match case-insensitively (PROTOCOL 6.2)", async () => {
    const name = uniq('b7');
    const a = client(gw.url, key);
    const b = client(gw.url, key);
    const cha = a.channel(name);
    const chb = b.channel(name);
    const all = collect(chb, 'broadcast', { event: '*' });
    const upper = collect(chb, 'broadcast', { event: 'CURSOR' });
    await Promise.all([subscribe(cha), subscribe(chb)]);
    await cha.send({ type: 'broadcast', event: 'cursor', payload: { i: 1 } });
    await cha.send({ type: 'broadcast', event: 'typing', payload: { i: 2 } });
    await cha.send({ type: 'broadcast', event: 'Cursor', payload: { i: 3 } });
    await waitFor(() => all.length === 3, 3000, 'three broadcasts on *');
    assert.deepEqual(all.map((m) => m.event), ['cursor', 'typing', 'Cursor']);
    await waitFor(() => upper.length === 2, 1000, 'two cursor broadcasts on CURSOR');
    assert.deepEqual(upper.map((m) => m.payload.i), [1, 3]);
});

test('B8 messages from one sender arrive in order (PROTOCOL 6.2)', async () => {
    const { cha, gotB } = await pair(uniq('b8'));
    for (let i = 0; i < 50; i++) await cha.send({ type: 'broadcast', event: 'cursor', payload: { i } });
    await waitFor(() => gotB.length === 50, 5000, '50 broadcasts');
    assert.deepEqual(gotB.map((m) => m.payload.i), [...Array(50).keys()]);
});

test('B9 oversized broadcast with ack gets payload_size_exceeded and is not delivered (PROTOCOL 6.1)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const other = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('b9')}`;
    const { jr } = await raw.join(topic, { broadcast: { ack: true, self: false } });
    await other.join(topic);
    const ref = raw.broadcast(jr, topic, 'big', { blob: 'x'.repeat(70_000) });
    const reply = await raw.next(isReplyTo(ref));
    assert.deepEqual(reply, [jr, ref, topic, 'phx_reply', { status: 'error', response: { reason: 'payload_size_exceeded' } }]);
    const ref2 = raw.broadcast(jr, topic, 'small', { ok: true });
    assert.equal((await raw.next(isReplyTo(ref2)))[4].status, 'ok');
    await other.next((f) => asBroadcast(f, topic)?.event === 'small');
    assert.ok(!other.frames.some((f) => asBroadcast(f, topic)?.event === 'big'), 'oversized message delivered');
});
function isReplyTo(ref) {
    return (f) => Array.isArray(f) && f[3] === 'phx_reply' && f[1] === ref;
}

test('B10 kind 3 from a raw socket is delivered as JSON or kind 4 with the same content (PROTOCOL 1.3)', async () => {
    const sender = await rawConnect(wsUrlFor(gw, key));
    const rcv = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('b10')}`;
    const { jr } = await sender.join(topic, { broadcast: { ack: true } });
    await rcv.join(topic);
    sender.send(encodeKind3({ joinRef: jr, ref: '77', topic, event: 'cursor', meta: '{}', payload: { x: 'é' } }));
    assert.equal((await sender.next(isReplyTo('77')))[4].status, 'ok');
    const got = asBroadcast(await rcv.next((f) => asBroadcast(f, topic)), topic);
    assert.equal(got.event, 'cursor');
    assert.deepEqual(got.payload, { x: 'é' });
    assert.equal(got.meta, undefined);
    sender.send(encodeKind3({ joinRef: jr, ref: '78', topic, event: 'bin', payload: Buffer.from([1, 2, 3]) }));
    assert.equal((await sender.next(isReplyTo('78')))[4].status, 'ok');
    const bin = await rcv.next((f) => f.binary === 4 && f.event === 'bin');
    assert.equal(bin.encoding, 0);
    assert.deepEqual([...bin.payload], [1, 2, 3]);
});
