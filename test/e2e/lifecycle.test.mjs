// lifecycle.test.mjs: channel lifecycle (PROTOCOL 4.1, 4.4, 6.6): unsubscribe and phx_leave
// (reply, phx_close, no more deliveries), duplicate joins, the empty topic, replay on a
// public channel, and a rejoin after leaving.

import assert from 'node:assert/strict';

import {
    asBroadcast,
    client,
    collect,
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

const gw = useGateway();
const key = sign({ role: 'authenticated' });

test('G1 unsubscribe() -> CLOSED and no more deliveries (PROTOCOL 4.4)', async () => {
    const name = uniq('g1');
    const a = client(gw.url, key);
    const b = client(gw.url, key);
    const cha = a.channel(name);
    const chb = b.channel(name);
    const gotA = collect(cha, 'broadcast', { event: '*' });
    await Promise.all([subscribe(cha), subscribe(chb)]);
    await chb.send({ type: 'broadcast', event: 'before', payload: {} });
    await waitFor(() => gotA.length === 1, 3000, 'delivery before unsubscribe');
    assert.equal(await cha.unsubscribe(), 'ok');
    await waitFor(() => cha.statuses.includes('CLOSED'), 3000, 'CLOSED');
    // The leave got an ok reply and a phx_close from the server.
    const leave = a.frames.sent.find((f) => Array.isArray(f) && f[3] === 'phx_leave');
    assert.ok(leave, 'phx_leave sent');
    await waitFor(() => a.frames.recv.some((f) => Array.isArray(f) && f[1] === leave[1] && f[3] === 'phx_reply'), 3000, 'leave reply');
    await chb.send({ type: 'broadcast', event: 'after', payload: {} });
    await never(() => a.frames.recv.some((f) => asBroadcast(f)?.event === 'after'), 500, 'delivery on the socket after unsubscribe');
    assert.equal(gotA.length, 1);
});

test('G2 raw phx_leave: ok reply, then phx_close, then nothing (PROTOCOL 4.4)', async () => {
    const topic = `realtime:${uniq('g2')}`;
    const raw = await rawConnect(wsUrlFor(gw, key));
    const sender = await rawConnect(wsUrlFor(gw, key));
    const witness = await rawConnect(wsUrlFor(gw, key));
    const { jr } = await raw.join(topic);
    const { jr: sj } = await sender.join(topic);
    await witness.join(topic);
    const lref = raw.ref();
    raw.send([jr, lref, topic, 'phx_leave', {}]);
    const reply = await raw.next((f) => f[1] === lref);
    assert.deepEqual(reply, [jr, lref, topic, 'phx_reply', { status: 'ok', response: {} }]);
    const close = await raw.next((f) => f[3] === 'phx_close');
    assert.deepEqual(close, [jr, jr, topic, 'phx_close', {}]);
    assert.ok(close.seq > reply.seq, 'phx_close after the reply');
    // A broadcast after the leave: the witness gets it; the left socket does not.
    sender.broadcast(sj, topic, 'after-leave', {});
    await witness.next((f) => asBroadcast(f, topic)?.event === 'after-leave');
    await raw.heartbeat();
    assert.ok(!raw.frames.some((f) => asBroadcast(f, topic)), 'broadcast delivered after phx_leave');
    // A push on the left topic is now unmatched.
    const pref = raw.broadcast(jr, topic, 'x', {});
    const um = await raw.next((f) => f[1] === pref);
    assert.equal(um[4].status, 'error');
    assert.deepEqual(um[4].response, { reason: 'unmatched topic' });
    // Leaving an unknown topic also gets ok.
    const uref = raw.ref();
    raw.send(['99', uref, 'realtime:never-joined', 'phx_leave', {}]);
    const ur = await raw.next((f) => f[1] === uref);
    assert.equal(ur[3], 'phx_reply');
    assert.equal(ur[4].status, 'ok');
});

test('G3 duplicate join: phx_close for the old join_ref, then ok for the new (PROTOCOL 4.4)', async () => {
    const topic = `realtime:${uniq('g3')}`;
    const raw = await rawConnect(wsUrlFor(gw, key));
    const { jr: old } = await raw.join(topic, { broadcast: { self: true } });
    const nj = raw.ref();
    raw.send([nj, nj, topic, 'phx_join', { config: { broadcast: { self: true }, presence: { key: '', enabled: false }, postgres_changes: [], private: false } }]);
    const close = await raw.next((f) => f[3] === 'phx_close');
    assert.deepEqual(close, [old, old, topic, 'phx_close', {}]);
    const reply = await raw.next((f) => f[3] === 'phx_reply' && f[1] === nj);
    assert.deepEqual(reply, [nj, nj, topic, 'phx_reply', { status: 'ok', response: { postgres_changes: [] } }]);
    assert.ok(close.seq < reply.seq, 'phx_close before the new reply');
    // Exactly one subscription remains: a broadcast arrives once.
    raw.broadcast(nj, topic, 'once', {});
    await raw.next((f) => asBroadcast(f, topic)?.event === 'once');
    await raw.none((f) => asBroadcast(f, topic)?.event === 'once', 400, 'second copy of the broadcast');
    // A push with the old join_ref is not routed to the new join as if it were current:
    // whatever the gateway does, the socket still works.
    await raw.heartbeat();
});

test('G4 supabase-js: re-subscribing the same name after removeChannel works (PROTOCOL 4.4)', async () => {
    const name = uniq('g4');
    const a = client(gw.url, key);
    const b = client(gw.url, key);
    const chb = b.channel(name);
    await subscribe(chb);
    const ch1 = a.channel(name);
    await subscribe(ch1);
    await a.removeChannel(ch1);
    const ch2 = a.channel(name);
    const got = collect(ch2, 'broadcast', { event: '*' });
    await subscribe(ch2);
    await chb.send({ type: 'broadcast', event: 'again', payload: { n: 2 } });
    await waitFor(() => got.length === 1, 3000, 'delivery to the new channel');
    await never(() => got.length > 1, 300, 'duplicate delivery');
});

test('G5 empty topic "realtime:" -> TopicNameRequired (PROTOCOL 4.1)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const { jr, reply } = await raw.join('realtime:');
    assert.deepEqual(reply, [jr, jr, 'realtime:', 'phx_reply', { status: 'error', response: { reason: 'TopicNameRequired: You must provide a topic name' } }]);
    await raw.heartbeat();
});

test('G6 replay on a public channel -> UnableToReplayMessages (PROTOCOL 6.6)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('g6')}`;
    const { jr, reply } = await raw.join(topic, { broadcast: { ack: false, self: false, replay: { since: Date.now() - 60_000, limit: 10 } } });
    assert.deepEqual(reply, [jr, jr, topic, 'phx_reply', { status: 'error', response: { reason: 'UnableToReplayMessages: Replay is not allowed for public channels' } }]);
});

test('G7 a join error does not leave a half-joined channel behind (PROTOCOL 4.3)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('g7')}`;
    const { reply } = await raw.join(topic, { broadcast: { replay: { since: 1 } } });
    assert.equal(reply[4].status, 'error');
    // Pushing there is unmatched, and a correct join afterwards succeeds.
    const pref = raw.broadcast('1', topic, 'x', {});
    assert.deepEqual((await raw.next((f) => f[1] === pref))[4], { status: 'error', response: { reason: 'unmatched topic' } });
    const { reply: ok } = await raw.join(topic);
    assert.equal(ok[4].status, 'ok');
});
