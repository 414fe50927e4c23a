// rules.test.mjs: declarative authorization (PROTOCOL 8.4, DESIGN 5) with supabase-js. A
// partner may join only partner:<its business_id>, read but not write there; admins may do
// everything; private channels need an allowing rule; --private_only and --public_default.

import assert from 'node:assert/strict';

import {
    asBroadcast,
    client,
    collect,
    never,
    rawConnect,
    sign,
    subscribe,
    subscribeStatus,
    test,
    uniq,
    useGateway,
    waitFor,
    wsUrlFor,
} from './lib.mjs';

const RULES = [
    'allow any all * role=admin|super_admin',
    'allow any join,broadcast.read,presence.* partner:{business_id} role=user',
    'deny any all partner:*',
];
const gw = useGateway({ args: { rule: RULES, public_default: 'yes' } });
const gwPrivOnly = useGateway({ args: { private_only: 'yes', rule: 'allow private all * role=authenticated' } });
const gwClosed = useGateway({ args: { public_default: 'no', rule: 'allow public all open-* role=*' } });

const user42 = sign({ role: 'user', sub: 'u42', business_id: '42' });
const admin = sign({ role: 'admin', sub: 'a1' });
const superAdmin = sign({ role: 'super_admin', sub: 's1' });
const denied = (name) => `Unauthorized: You do not have permissions to read from this Channel topic: ${name}`;

async function join(g, key, name, config = {}) {
    const sb = client(g.url, key);
    const ch = sb.channel(name, { config });
    const got = collect(ch, 'broadcast', { event: '*' });
    const res = await subscribeStatus(ch);
    // Stop the client's rejoin loop after an error.
    if (res.status !== 'SUBSCRIBED') await sb.removeChannel(ch);
    return { sb, ch, got, ...res };
}

test('F1 user with business_id 42 joins partner:42 but not partner:43 (PROTOCOL 8.4)', async () => {
    const ok = await join(gw, user42, 'partner:42');
    assert.equal(ok.status, 'SUBSCRIBED');
    const no = await join(gw, user42, 'partner:43');
    assert.equal(no.status, 'CHANNEL_ERROR');
    assert.equal(no.error.message, denied('partner:43'));
    // Exact join error frame on a raw socket.
    const raw = await rawConnect(wsUrlFor(gw, user42));
    const { jr, reply } = await raw.join('realtime:partner:43');
    assert.deepEqual(reply, [jr, jr, 'realtime:partner:43', 'phx_reply', { status: 'error', response: { reason: denied('partner:43') } }]);
});

test('F2 admin and super_admin join any partner topic (PROTOCOL 8.4)', async () => {
    assert.equal((await join(gw, admin, 'partner:43')).status, 'SUBSCRIBED');
    assert.equal((await join(gw, superAdmin, 'partner:44')).status, 'SUBSCRIBED');
    assert.equal((await join(gw, admin, 'partner:42', { private: true })).status, 'SUBSCRIBED');
});

test('F3 private channel without an allowing rule -> CHANNEL_ERROR Unauthorized (PROTOCOL 8.4)', async () => {
    const name = uniq('secret');
    const no = await join(gw, user42, name, { private: true });
    assert.equal(no.status, 'CHANNEL_ERROR');
    assert.equal(no.error.message, denied(name));
    const anon = await join(gw, sign({ role: 'anon' }), name, { private: true });
    assert.equal(anon.status, 'CHANNEL_ERROR');
    // The same name as a public topic is allowed by the public default.
    assert.equal((await join(gw, user42, name)).status, 'SUBSCRIBED');
    assert.equal((await join(gw, admin, name, { private: true })).status, 'SUBSCRIBED');
});

test('F4 a user on partner:42 reads but cannot broadcast; an admin can (PROTOCOL 6.1, 8.4)', async () => {
    const user = await join(gw, user42, 'partner:42');
    const adm = await join(gw, admin, 'partner:42');
    assert.equal(user.status, 'SUBSCRIBED');
    assert.equal(adm.status, 'SUBSCRIBED');
    await user.ch.send({ type: 'broadcast', event: 'from-user', payload: {} });
    await never(() => adm.got.length > 0, 500, 'delivery of the user broadcast to the admin');
    const adm2 = await join(gw, admin, 'partner:42');
    await adm2.ch.send({ type: 'broadcast', event: 'from-admin', payload: { n: 1 } });
    await waitFor(() => user.got.length === 1 && adm.got.length === 1, 3000, 'admin broadcast at user and admin');
    assert.deepEqual(user.got[0], { type: 'broadcast', event: 'from-admin', payload: { n: 1 } });
    // REST: the user's token cannot write either (public topic, deny rule).
    await user.ch.httpSend('rest-user', {}).catch(() => {});
    await never(() => adm.got.some((m) => m.event === 'rest-user'), 400, 'REST delivery of the user message');
});

test('F5 presence on partner:42 is allowed for the user (presence.*) (PROTOCOL 7, 8.4)', async () => {
    const user = await join(gw, user42, 'partner:42', { presence: { key: 'u42' } });
    const adm = await join(gw, admin, 'partner:42', { presence: { key: 'a1', enabled: true } });
    assert.equal(await user.ch.track({ who: 'user' }), 'ok');
    await waitFor(() => adm.ch.presenceState().u42?.[0]?.who === 'user', 3000, 'user presence at admin');
});

test('F6 access_token that loses the permission closes the channel (PROTOCOL 8.2)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, admin));
    const { jr, reply } = await raw.join('realtime:partner:77', {}, { access_token: admin });
    assert.equal(reply[4].status, 'ok');
    raw.send([jr, raw.ref(), 'realtime:partner:77', 'access_token', { access_token: user42 }]);
    const sys = await raw.next((f) => f[3] === 'system');
    assert.deepEqual(sys, [jr, null, 'realtime:partner:77', 'system', {
        extension: 'system',
        status: 'error',
        message: 'You no longer have permission to read from this Channel topic: partner:77',
        channel: 'partner:77',
    }]);
    assert.deepEqual(await raw.next((f) => f[3] === 'phx_close'), [jr, jr, 'realtime:partner:77', 'phx_close', {}]);
});

test('F7 --private_only yes rejects public joins with PrivateOnly (PROTOCOL 8.4)', async () => {
    const key = sign({ role: 'authenticated' });
    const pub = await join(gwPrivOnly, key, uniq('f7'));
    assert.equal(pub.status, 'CHANNEL_ERROR');
    assert.equal(pub.error.message, 'PrivateOnly: This project only allows private channels');
    const priv = await join(gwPrivOnly, key, uniq('f7'), { private: true });
    assert.equal(priv.status, 'SUBSCRIBED');
});

test('F8 --public_default no: public topics need a rule (PROTOCOL 8.4)', async () => {
    const key = sign({ role: 'authenticated' });
    const name = uniq('closed');
    const no = await join(gwClosed, key, name);
    assert.equal(no.status, 'CHANNEL_ERROR');
    assert.equal(no.error.message, denied(name));
    const ok = await join(gwClosed, key, uniq('open'));
    assert.equal(ok.status, 'SUBSCRIBED');
    const raw = await rawConnect(wsUrlFor(gwClosed, key));
    const t = `realtime:${uniq('open')}`;
    const { jr } = await raw.join(t, { broadcast: { self: true } });
    raw.broadcast(jr, t, 'e', {});
    await raw.next((f) => asBroadcast(f, t));
});
