// presence.test.mjs: presence (PROTOCOL 7) with supabase-js (track, untrack, state, sync /
// join / leave callbacks, configured and server-generated keys, updates, leave on
// unsubscribe and on disconnect) and on a raw socket (exact replies, presence_state after the
// join reply, presence_diff shape and phx_ref / phx_ref_prev).

import assert from 'node:assert/strict';

import { client, never, rawConnect, sign, subscribe, test, uniq, useGateway, waitFor, wsUrlFor } from './lib.mjs';

const gw = useGateway({ args: { max_presence_calls: 50 } });
const key = sign({ role: 'authenticated' });

// A subscribed presence channel. Records every sync/join/leave callback.
async function member(name, presenceKey) {
    const sb = client(gw.url, key);
    const config = presenceKey === undefined ? {} : { presence: { key: presenceKey } };
    const ch = sb.channel(name, { config });
    const ev = { syncs: 0, joins: [], leaves: [] };
    ch.on('presence', { event: 'sync' }, () => ev.syncs++);
    ch.on('presence', { event: 'join' }, (e) => ev.joins.push(e));
    ch.on('presence', { event: 'leave' }, (e) => ev.leaves.push(e));
    await subscribe(ch);
    return { sb, ch, ev, state: () => ch.presenceState() };
}

const keysOf = (state) => Object.keys(state).sort();

test('D1 track() -> join event with the payload; both states list both keys (PROTOCOL 7.1, 7.2)', async () => {
    const name = uniq('d1');
    const a = await member(name, 'alice');
    const b = await member(name, 'bob');
    await waitFor(() => a.ev.syncs > 0 && b.ev.syncs > 0, 3000, 'initial sync on both (presence_state)');
    assert.equal(await a.ch.track({ user: 'alice' }), 'ok');
    await waitFor(() => b.ev.joins.some((j) => j.key === 'alice'), 3000, 'join of alice at B');
    const j = b.ev.joins.find((x) => x.key === 'alice');
    assert.equal(j.newPresences.length, 1);
    assert.equal(j.newPresences[0].user, 'alice');
    assert.equal(typeof j.newPresences[0].presence_ref, 'string');
    // The tracker gets its own diff too.
    await waitFor(() => a.ev.joins.some((x) => x.key === 'alice'), 3000, 'join of alice at A');
    assert.equal(await b.ch.track({ user: 'bob' }), 'ok');
    await waitFor(() => keysOf(a.state()).join() === 'alice,bob' && keysOf(b.state()).join() === 'alice,bob', 3000, 'both keys on both');
    assert.equal(b.state().alice[0].user, 'alice');
    assert.equal(a.state().bob[0].user, 'bob');
    assert.notEqual(a.state().alice[0].presence_ref, a.state().bob[0].presence_ref);
});

test('D2 empty presence key -> unique server-generated keys (PROTOCOL 4.2, 7.1)', async () => {
    const name = uniq('d2');
    const a = await member(name);
    const b = await member(name);
    await a.ch.track({ n: 1 });
    await b.ch.track({ n: 2 });
    await waitFor(() => keysOf(a.state()).length === 2 && keysOf(b.state()).length === 2, 3000, 'two keys on both');
    const keys = keysOf(a.state());
    assert.deepEqual(keys, keysOf(b.state()));
    assert.ok(keys.every((k) => k.length > 0), `keys ${JSON.stringify(keys)}`);
    assert.notEqual(keys[0], keys[1]);
    // The joiner that tracks later sees the earlier member in its initial presence_state.
    const c = await member(name, 'carol');
    await waitFor(() => keysOf(c.state()).length === 2, 3000, 'state of the late joiner');
});

test('D3 re-track with a different payload updates; the same payload is a no-op (PROTOCOL 7.1, 7.2)', async () => {
    const name = uniq('d3');
    const a = await member(name, 'alice');
    const b = await member(name, 'bob');
    await a.ch.track({ status: 'online' });
    await waitFor(() => b.state().alice?.[0]?.status === 'online', 3000, 'online');
    assert.equal(await a.ch.track({ status: 'away' }), 'ok');
    await waitFor(() => b.state().alice?.[0]?.status === 'away', 3000, 'away');
    assert.equal(b.state().alice.length, 1, JSON.stringify(b.state()));
    assert.equal(a.state().alice.length, 1, JSON.stringify(a.state()));
    const joinsBefore = b.ev.joins.length;
    assert.equal(await a.ch.track({ status: 'away' }), 'ok');
    await never(() => b.ev.joins.length !== joinsBefore, 400, 'a diff for a same-payload re-track');
});

test('D4 untrack() -> leave on the other client (PROTOCOL 7.1)', async () => {
    const name = uniq('d4');
    const a = await member(name, 'alice');
    const b = await member(name, 'bob');
    await a.ch.track({ user: 'alice' });
    await waitFor(() => b.state().alice, 3000, 'alice present');
    assert.equal(await a.ch.untrack(), 'ok');
    await waitFor(() => b.ev.leaves.some((l) => l.key === 'alice'), 3000, 'leave of alice');
    assert.equal(b.ev.leaves.find((l) => l.key === 'alice').leftPresences[0].user, 'alice');
    assert.equal(b.state().alice, undefined);
});

test('D5 disconnect or unsubscribe of a tracking client -> leave on the other (PROTOCOL 4.4, 7.1)', async () => {
    const name = uniq('d5');
    const a = await member(name, 'alice');
    const c = await member(name, 'carol');
    const b = await member(name, 'bob');
    await a.ch.track({ user: 'alice' });
    await c.ch.track({ user: 'carol' });
    await waitFor(() => b.state().alice && b.state().carol, 3000, 'alice and carol present');
    a.sb.realtime.disconnect();
    await waitFor(() => b.ev.leaves.some((l) => l.key === 'alice'), 5000, 'leave of alice after disconnect');
    await c.sb.removeChannel(c.ch);
    await waitFor(() => b.ev.leaves.some((l) => l.key === 'carol'), 5000, 'leave of carol after unsubscribe');
    assert.deepEqual(keysOf(b.state()), []);
});

test('D6 raw: track replies ok; a non-object payload gets the map error (PROTOCOL 7.1)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('d6')}`;
    const { jr } = await raw.join(topic, { presence: { key: 'k1', enabled: true } });
    for (const bad of ['a string', 42, [1, 2], true]) {
        const ref = raw.ref();
        raw.send([jr, ref, topic, 'presence', { type: 'presence', event: 'track', payload: bad }]);
        const reply = await raw.next((f) => f[3] === 'phx_reply' && f[1] === ref);
        assert.deepEqual(reply, [jr, ref, topic, 'phx_reply', { status: 'error', response: { reason: 'Presence track payload must be a map' } }], JSON.stringify(bad));
    }
    const ok = raw.ref();
    raw.send([jr, ok, topic, 'presence', { type: 'presence', event: 'track' }]); // missing payload = {}
    assert.deepEqual(await raw.next((f) => f[3] === 'phx_reply' && f[1] === ok), [jr, ok, topic, 'phx_reply', { status: 'ok', response: {} }]);
    const up = raw.ref();
    raw.send([jr, up, topic, 'presence', { type: 'presence', event: 'UNTRACK' }]); // case-insensitive event
    assert.deepEqual(await raw.next((f) => f[3] === 'phx_reply' && f[1] === up), [jr, up, topic, 'phx_reply', { status: 'ok', response: {} }]);
});

test('D7 raw: presence_state follows the join reply; diffs carry phx_ref and phx_ref_prev (PROTOCOL 7.2)', async () => {
    const topic = `realtime:${uniq('d7')}`;
    const a = await rawConnect(wsUrlFor(gw, key));
    const { jr: ja, reply } = await a.join(topic, { presence: { key: 'ka', enabled: true } });
    assert.equal(reply[4].status, 'ok');
    const st = await a.next((f) => f[3] === 'presence_state');
    assert.ok(st.seq > reply.seq, 'presence_state after the join reply');
    assert.deepEqual(st, [ja, null, topic, 'presence_state', {}]);

    const tref = a.ref();
    a.send([ja, tref, topic, 'presence', { type: 'presence', event: 'track', payload: { user: 'a' } }]);
    await a.next((f) => f[3] === 'phx_reply' && f[1] === tref);
    const d1 = await a.next((f) => f[3] === 'presence_diff');
    assert.equal(d1[1], null);
    assert.ok(d1[0] === null || d1[0] === ja, `diff join_ref ${d1[0]}`);
    assert.deepEqual(Object.keys(d1[4]).sort(), ['joins', 'leaves']);
    assert.deepEqual(d1[4].leaves, {});
    const meta1 = d1[4].joins.ka.metas[0];
    assert.equal(d1[4].joins.ka.metas.length, 1);
    assert.equal(typeof meta1.phx_ref, 'string');
    assert.ok(meta1.phx_ref.length > 0);
    assert.equal(meta1.user, 'a');
    assert.equal(d1[4].ids, undefined);

    // A later joiner gets the member in its presence_state.
    const b = await rawConnect(wsUrlFor(gw, key));
    const { jr: jb } = await b.join(topic, { presence: { key: 'kb', enabled: true } });
    const stb = await b.next((f) => f[3] === 'presence_state');
    assert.deepEqual(stb, [jb, null, topic, 'presence_state', { ka: { metas: [{ phx_ref: meta1.phx_ref, user: 'a' }] } }]);

    // Update: one diff with the new meta in joins (phx_ref_prev = old ref) and the old in leaves.
    const uref = a.ref();
    a.send([ja, uref, topic, 'presence', { type: 'presence', event: 'track', payload: { user: 'a2' } }]);
    const d2 = await b.next((f) => f[3] === 'presence_diff');
    const newMeta = d2[4].joins.ka.metas[0];
    assert.equal(newMeta.user, 'a2');
    assert.equal(newMeta.phx_ref_prev, meta1.phx_ref);
    assert.notEqual(newMeta.phx_ref, meta1.phx_ref);
    assert.deepEqual(d2[4].leaves, { ka: { metas: [{ phx_ref: meta1.phx_ref, user: 'a' }] } });

    // Leave by socket close: a leave diff at b.
    a.close();
    const d3 = await b.next((f) => f[3] === 'presence_diff' && Object.keys(f[4].leaves).length > 0);
    assert.deepEqual(Object.keys(d3[4].leaves), ['ka']);
    assert.equal(d3[4].leaves.ka.metas[0].phx_ref, newMeta.phx_ref);
    assert.deepEqual(d3[4].joins, {});
});

test('D8 a track enables presence on a join with enabled:false (PROTOCOL 7.1)', async () => {
    const topic = `realtime:${uniq('d8')}`;
    const a = await rawConnect(wsUrlFor(gw, key));
    const { jr } = await a.join(topic, { presence: { key: 'quiet', enabled: false } });
    const ref = a.ref();
    a.send([jr, ref, topic, 'presence', { type: 'presence', event: 'track', payload: { q: 1 } }]);
    assert.equal((await a.next((f) => f[3] === 'phx_reply' && f[1] === ref))[4].status, 'ok');
    const b = await member(topic.slice('realtime:'.length), 'watcher');
    await waitFor(() => b.state().quiet?.[0]?.q === 1, 3000, 'the member tracked from a presence-disabled join');
});
