// rest.test.mjs: the REST broadcast endpoints (PROTOCOL 6.3 batch, 6.4 single) with
// supabase-js httpSend()/send() fallback and crafted HTTP requests: delivery, meta.id,
// status codes and error bodies, limits, and private-channel write permission.

import assert from 'node:assert/strict';

import {
    client,
    collect,
    httpRequest,
    never,
    restBroadcast,
    sign,
    subscribe,
    test,
    uniq,
    useGateway,
    waitFor,
} from './lib.mjs';

const gw = useGateway({
    args: {
        max_rest_body_bytes: 20000,
        max_rest_batch: 10,
        max_payload_bytes: 4000,
        rule: ['allow any all * role=admin', 'allow private join,broadcast.read,presence.* * role=authenticated'],
    },
});
const key = sign({ role: 'authenticated' });
const admin = sign({ role: 'admin', sub: 'admin-1' });

// A subscribed listener on `name`; returns the list of received broadcasts.
async function listener(name, opts = {}) {
    const sb = client(gw.url, opts.key || key, { vsn: opts.vsn });
    const ch = sb.channel(name, { config: { private: !!opts.private } });
    const got = collect(ch, 'broadcast', { event: '*' });
    await subscribe(ch);
    return got;
}

test('C1 httpSend() answers 202 and subscribers get {type,event,payload} without meta (PROTOCOL 6.4)', async () => {
    const name = uniq('c1');
    const got = await listener(name);
    const gotV1 = await listener(name, { vsn: '1.0.0' });
    const sender = client(gw.url, key);
    const ch = sender.channel(name);
    // Not subscribed: no Authorization header, only the apikey header.
    assert.deepEqual(await ch.httpSend('evt', { a: 1, s: 'é' }), { success: true });
    await waitFor(() => got.length === 1 && gotV1.length === 1, 3000, 'delivery');
    assert.deepEqual(got[0], { type: 'broadcast', event: 'evt', payload: { a: 1, s: 'é' } });
    assert.deepEqual(gotV1[0], { type: 'broadcast', event: 'evt', payload: { a: 1, s: 'é' } });
    // Subscribed: with Authorization: Bearer.
    await subscribe(ch);
    assert.deepEqual(await ch.httpSend('evt2', { b: 2 }), { success: true });
    await waitFor(() => got.length === 2, 3000, 'second delivery');
    assert.deepEqual(got[1], { type: 'broadcast', event: 'evt2', payload: { b: 2 } });
});

test('C2 POST /realtime/v1/api/broadcast: 202, empty body, delivered in order (PROTOCOL 6.3)', async () => {
    const n1 = uniq('c2a');
    const n2 = uniq('c2b');
    const got1 = await listener(n1);
    const got2 = await listener(n2);
    const r = await restBroadcast(gw, [
        { topic: n1, event: 'e', payload: { i: 1 }, private: false },
        { topic: n2, event: 'e', payload: { i: 2 }, private: false },
        { topic: n1, event: 'f', payload: { i: 3 } },
    ], { apikey: key, bearer: key });
    assert.equal(r.status, 202, r.body);
    assert.equal(r.body, '');
    await waitFor(() => got1.length === 2 && got2.length === 1, 3000, 'deliveries');
    assert.deepEqual(got1, [
        { type: 'broadcast', event: 'e', payload: { i: 1 } },
        { type: 'broadcast', event: 'f', payload: { i: 3 } },
    ]);
    assert.deepEqual(got2, [{ type: 'broadcast', event: 'e', payload: { i: 2 } }]);
    // Only the apikey header, and extra query params (the client keeps ?apikey=..&vsn=..).
    const r2 = await httpRequest('POST', `${gw.url}/realtime/v1/api/broadcast?apikey=${key}&vsn=2.0.0`, {
        headers: { apikey: key, 'Content-Type': 'application/json' },
        body: JSON.stringify({ messages: [{ topic: n2, event: 'q', payload: {}, private: false }] }),
    });
    assert.equal(r2.status, 202, r2.body);
    await waitFor(() => got2.length === 2, 3000, 'delivery with query params');
});

test('C3 a message "id" is delivered as meta.id (PROTOCOL 6.3, 6.2)', async () => {
    const name = uniq('c3');
    const got = await listener(name);
    const id = 'c4b1a3a2-0d6e-4c1b-9a57-2f0c3b1f9e11';
    const r = await restBroadcast(gw, [{ topic: name, event: 'e', payload: { x: 1 }, private: false, id }], { apikey: key });
    assert.equal(r.status, 202, r.body);
    await waitFor(() => got.length === 1, 3000, 'delivery');
    assert.deepEqual(got[0], { type: 'broadcast', event: 'e', payload: { x: 1 }, meta: { id } });
});

test('C4 unauthorized requests get 401 {"message":"Unauthorized"} (PROTOCOL 6.3)', async () => {
    const name = uniq('c4');
    const got = await listener(name);
    const msgs = [{ topic: name, event: 'e', payload: {}, private: false }];
    const cases = {
        'no key': {},
        'apikey with a bad signature': { apikey: sign({}, { secret: 'wrong-secret-wrong-secret-wrong-secret' }) },
        'expired apikey': { apikey: sign({ exp: Math.floor(Date.now() / 1000) - 600 }) },
        'malformed apikey': { apikey: 'not.a.jwt' },
        'bad bearer over a good apikey': { apikey: key, bearer: sign({}, { secret: 'wrong-secret-wrong-secret-wrong-secret' }) },
    };
    for (const [what, auth] of Object.entries(cases)) {
        const r = await restBroadcast(gw, msgs, auth);
        assert.equal(r.status, 401, `${what}: ${r.status} ${r.body}`);
        assert.deepEqual(r.json(), { message: 'Unauthorized' }, what);
    }
    const single = await httpRequest('POST', `${gw.url}/realtime/v1/api/broadcast/${name}/events/e`, {
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
    });
    assert.equal(single.status, 401, single.body);
    await never(() => got.length > 0, 300, 'delivery of an unauthorized message');
});

test('C5 invalid JSON body gets 400 (PROTOCOL 6.3)', async () => {
    for (const body of ['{"messages":[', 'not json', '']) {
        const r = await restBroadcast(gw, null, { apikey: key, body });
        assert.equal(r.status, 400, `body ${JSON.stringify(body)}: ${r.status} ${r.body}`);
    }
    const r = await httpRequest('POST', `${gw.url}/realtime/v1/api/broadcast/${uniq('c5')}/events/e`, {
        headers: { apikey: key, 'Content-Type': 'application/json' },
        body: '{"a":',
    });
    assert.equal(r.status, 400, r.body);
});

test('C6 body larger than --max_rest_body_bytes gets 413', async () => {
    const name = uniq('c6');
    const big = JSON.stringify({ messages: [{ topic: name, event: 'e', payload: { s: 'x'.repeat(25_000) }, private: false }] });
    const r = await restBroadcast(gw, null, { apikey: key, body: big });
    assert.equal(r.status, 413, r.body);
    // The gateway still serves REST afterwards.
    const ok = await restBroadcast(gw, [{ topic: name, event: 'e', payload: {}, private: false }], { apikey: key });
    assert.equal(ok.status, 202, ok.body);
});

test('C7 batch larger than --max_rest_batch gets 429 with the reference text (PROTOCOL 6.3)', async () => {
    const name = uniq('c7');
    const got = await listener(name);
    const msgs = Array.from({ length: 11 }, (_, i) => ({ topic: name, event: 'e', payload: { i }, private: false }));
    const r = await restBroadcast(gw, msgs, { apikey: key });
    assert.equal(r.status, 429, r.body);
    assert.equal(r.json().message, 'Too many messages to broadcast, please reduce the batch size');
    const r10 = await restBroadcast(gw, msgs.slice(0, 10), { apikey: key });
    assert.equal(r10.status, 202, r10.body);
    await waitFor(() => got.length === 10, 3000, 'the 10 messages of the allowed batch');
    assert.deepEqual(got.map((m) => m.payload.i), [...Array(10).keys()]);
});

test('C8 payload over --max_payload_bytes gets 422 "Payload size exceeds tenant limit" (PROTOCOL 6.3)', async () => {
    const name = uniq('c8');
    const got = await listener(name);
    const r = await restBroadcast(gw, [{ topic: name, event: 'e', payload: { s: 'x'.repeat(5000) }, private: false }], { apikey: key });
    assert.equal(r.status, 422, r.body);
    assert.equal(r.json().message, 'Payload size exceeds tenant limit');
    await never(() => got.length > 0, 300, 'delivery of the oversized payload');
});

test('C9 unknown paths get 404', async () => {
    for (const [method, p] of [['GET', '/nope'], ['POST', '/realtime/v1/api/nope'], ['GET', '/realtime/v1/nope']]) {
        const r = await httpRequest(method, `${gw.url}${p}`, { headers: { apikey: key } });
        assert.equal(r.status, 404, `${method} ${p}: ${r.status}`);
    }
});

test('C10 private REST messages need broadcast.write: skipped in a batch (202), 403 from httpSend (PROTOCOL 6.3, 6.4, 8.4)', async () => {
    const name = uniq('c10');
    const got = await listener(name, { private: true });
    const r = await restBroadcast(gw, [
        { topic: name, event: 'denied', payload: {}, private: true },
        { topic: name, event: 'public-twin', payload: {}, private: false },
    ], { apikey: key, bearer: key });
    assert.equal(r.status, 202, r.body);
    const ra = await restBroadcast(gw, [{ topic: name, event: 'allowed', payload: { by: 'admin' }, private: true }], { apikey: key, bearer: admin });
    assert.equal(ra.status, 202, ra.body);
    await waitFor(() => got.length >= 1, 3000, 'the admin message');
    await never(() => got.length > 1, 300, 'a second message');
    assert.deepEqual(got[0], { type: 'broadcast', event: 'allowed', payload: { by: 'admin' } });

    const sb = client(gw.url, key);
    const ch = sb.channel(name, { config: { private: true } });
    await assert.rejects(ch.httpSend('denied', { a: 1 }), /Unauthorized/);
    const raw = await httpRequest('POST', `${gw.url}/realtime/v1/api/broadcast/${name}/events/denied?private=true`, {
        headers: { apikey: key, Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: '{}',
    });
    assert.equal(raw.status, 403, raw.body);
    const sbAdmin = client(gw.url, admin);
    assert.deepEqual(await sbAdmin.channel(name, { config: { private: true } }).httpSend('allowed2', { a: 2 }), { success: true });
    await waitFor(() => got.length === 2, 3000, 'the admin httpSend');
    assert.equal(got[1].event, 'allowed2');
});

test('C11 single endpoint with application/octet-stream delivers an ArrayBuffer (PROTOCOL 6.4)', async () => {
    const name = uniq('c11');
    const got = await listener(name);
    const sb = client(gw.url, key);
    const bytes = new Uint8Array([9, 8, 7, 0, 255]);
    assert.deepEqual(await sb.channel(name).httpSend('bin', bytes.buffer), { success: true });
    await waitFor(() => got.length === 1, 3000, 'binary delivery');
    assert.equal(got[0].event, 'bin');
    assert.ok(got[0].payload instanceof ArrayBuffer);
    assert.deepEqual([...new Uint8Array(got[0].payload)], [...bytes]);
});

test('C12 send() on a channel that is not joined falls back to REST (PROTOCOL 6.1, 6.3)', async () => {
    const name = uniq('c12');
    const got = await listener(name);
    const sb = client(gw.url, key);
    const origWarn = console.warn;
    console.warn = () => {};
    try {
        assert.equal(await sb.channel(name).send({ type: 'broadcast', event: 'fallback', payload: { r: 1 } }), 'ok');
    } finally {
        console.warn = origWarn;
    }
    await waitFor(() => got.length === 1, 3000, 'delivery via REST fallback');
    assert.deepEqual(got[0], { type: 'broadcast', event: 'fallback', payload: { r: 1 } });
});

test('C13 URL-encoded topic and event names in the single endpoint (PROTOCOL 6.4)', async () => {
    const name = `café room ${uniq('c13')}`;
    const got = await listener(name);
    const sb = client(gw.url, key);
    assert.deepEqual(await sb.channel(name).httpSend('my évent', { ok: true }), { success: true });
    await waitFor(() => got.length === 1, 3000, 'delivery');
    assert.deepEqual(got[0], { type: 'broadcast', event: 'my évent', payload: { ok: true } });
});

test('C14 a chunked request body is answered (202, or 411/400), never left hanging (HTTP/1.1)', async () => {
    const name = uniq('c14');
    const got = await listener(name);
    const r = await httpRequest('POST', `${gw.url}/realtime/v1/api/broadcast`, {
        headers: { apikey: key, 'Content-Type': 'application/json' },
        body: JSON.stringify({ messages: [{ topic: name, event: 'chunked', payload: { c: 1 }, private: false }] }),
        chunked: true,
    });
    assert.ok([202, 400, 411].includes(r.status), `HTTP ${r.status} ${r.body}`);
    if (r.status === 202) await waitFor(() => got.length === 1, 3000, 'delivery of the chunked request');
});
