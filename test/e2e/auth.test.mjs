// auth.test.mjs: authentication (PROTOCOL 1.1, 4.3, 8.1-8.3). Upgrade refusals with their
// HTTP bodies, the opaque anon key, RS256 via a PEM public key and RS256/ES256 via a JWKS
// file, algorithm confusion, join errors for bad access tokens, access_token refresh on a
// live channel (setAuth) and channel close at token expiry.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
    SECRET,
    asBroadcast,
    client,
    collect,
    nowS,
    rawConnect,
    sign,
    sleep,
    subscribe,
    subscribeStatus,
    test,
    uniq,
    useGateway,
    waitFor,
    wsUrlFor,
} from './lib.mjs';

// Keys and files for the public-key gateways, made before the gateways start.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidings-e2e-auth-'));
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaOther = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
const pemFile = path.join(dir, 'public.pem');
fs.writeFileSync(pemFile, rsaPem);
const jwksFile = path.join(dir, 'jwks.json');
fs.writeFileSync(jwksFile, JSON.stringify({
    keys: [
        { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa1', alg: 'RS256', use: 'sig' },
        { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec1', alg: 'ES256', use: 'sig' },
    ],
}));

const gw = useGateway({ args: { anon_key: 'sb_publishable_test', jwt_leeway: 0 } });
const gwPem = useGateway({ secret: null, args: { jwt_public_key: pemFile, jwt_leeway: 0 } });
const gwJwks = useGateway({ secret: null, args: { jwks_file: jwksFile, jwt_leeway: 0 } });

const key = sign({ role: 'anon' });
const hs = (claims, opts) => sign(claims, opts);
const WRONG = 'a-completely-different-secret-0123456789-xyz';
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
// A correctly HS256-signed token whose payload is the given text (not necessarily JSON).
function signRaw(payloadText) {
    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${Buffer.from(payloadText).toString('base64url')}`;
    return `${input}.${crypto.createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

const BAD = {
    expired: { token: hs({ exp: nowS() - 120 }), error: /^Token has expired \d+ seconds ago$|^Token has expired$/, join: /^InvalidJWTToken: Token has expired \d+ seconds ago$/ },
    'missing role': { token: hs({ role: undefined }), error: /^Fields `role` and `exp` are required in JWT$/, join: /^InvalidJWTToken: Fields `role` and `exp` are required in JWT$/ },
    'missing exp': { token: hs({ exp: undefined }), error: /^Fields `role` and `exp` are required in JWT$/, join: /^InvalidJWTToken: Fields `role` and `exp` are required in JWT$/ },
    'exp as a string': { token: hs({ exp: String(nowS() + 3600) }), error: /./, join: /^(InvalidJWTToken|MalformedJWT): / },
    'wrong secret': { token: hs({}, { secret: WRONG }), error: /^Failed to validate JWT signature$/, join: /^JwtSignatureError: Failed to validate JWT signature$/ },
    'not a JWT': { token: 'garbage', error: /^The token provided is not a valid JWT$/, join: /^MalformedJWT: The token provided is not a valid JWT$/ },
    'bad base64 and JSON': { token: 'eyJ!!!.%%%.abc', error: /^The token provided is not a valid JWT$/, join: /^MalformedJWT: The token provided is not a valid JWT$/ },
    'payload not JSON (signed)': { token: signRaw('{nope'), error: /^The token provided is not a valid JWT$/, join: /^MalformedJWT: The token provided is not a valid JWT$/ },
    'payload a JSON array (signed)': { token: signRaw('[1,2]'), error: /^The token provided is not a valid JWT$/, join: /^MalformedJWT: The token provided is not a valid JWT$/ },
    'alg none': { token: `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ role: 'anon', exp: nowS() + 3600 })}.`, error: /^(The token provided is not a valid JWT|Failed to validate JWT signature)$/, join: /^(MalformedJWT|JwtSignatureError): / },
    'RS256 on an HS256-only gateway': { token: hs({}, { alg: 'RS256', key: rsa.privateKey }), error: /^(The token provided is not a valid JWT|Failed to validate JWT signature)$/, join: /^(MalformedJWT|JwtSignatureError): / },
};

async function refused(g, apikey) {
    try {
        const raw = await rawConnect(wsUrlFor(g, apikey));
        raw.close();
    } catch (e) {
        if (e.status) return e;
        throw e;
    }
    throw new Error(`upgrade with apikey ${String(apikey).slice(0, 40)}... was accepted`);
}

test('E1 upgrade without apikey -> 401 {"error":"API key is missing"} (PROTOCOL 1.1)', async () => {
    const e = await refused(gw, null);
    assert.equal(e.status, 401);
    assert.deepEqual(JSON.parse(e.body), { error: 'API key is missing' });
    const e2 = await refused(gw, '');
    assert.equal(e2.status, 401);
});

test('E2 bad apikeys -> 401 before the upgrade, with the reference texts (PROTOCOL 1.1)', async () => {
    for (const [what, { token, error }] of Object.entries(BAD)) {
        const e = await refused(gw, token);
        assert.equal(e.status, 401, `${what}: HTTP ${e.status} ${e.body}`);
        let body;
        assert.doesNotThrow(() => (body = JSON.parse(e.body)), `${what}: body ${e.body}`);
        assert.match(body.error, error, what);
    }
});

test('E3 the opaque --anon_key is accepted as apikey and as access token (PROTOCOL 4.2, 8.1)', async () => {
    const sb = client(gw.url, 'sb_publishable_test');
    const ch = sb.channel(uniq('e3'));
    const got = collect(ch, 'broadcast', { event: '*' });
    assert.equal(await subscribe(ch), 'SUBSCRIBED');
    assert.deepEqual(await ch.httpSend('e', { a: 1 }), { success: true });
    await waitFor(() => got.length === 1, 3000, 'delivery of httpSend with the anon key');
    const e = await refused(gw, 'sb_publishable_wrong');
    assert.equal(e.status, 401);
});

test('E4 RS256 through --jwt_public_key; alg confusion and foreign keys refused (PROTOCOL 8.1)', async () => {
    const good = sign({ role: 'authenticated' }, { alg: 'RS256', key: rsa.privateKey });
    const sb = client(gwPem.url, good);
    assert.equal(await subscribe(sb.channel(uniq('e4'))), 'SUBSCRIBED');
    const confusion = sign({ role: 'authenticated' }, { alg: 'HS256', secret: rsaPem });
    assert.equal((await refused(gwPem, confusion)).status, 401, 'HS256 signed with the public PEM');
    assert.equal((await refused(gwPem, sign({}, { secret: SECRET }))).status, 401, 'HS256 with no secret configured');
    const other = await refused(gwPem, sign({}, { alg: 'RS256', key: rsaOther.privateKey }));
    assert.equal(other.status, 401);
    assert.equal(JSON.parse(other.body).error, 'Failed to validate JWT signature');
    assert.equal((await refused(gwPem, `${b64({ alg: 'none' })}.${b64({ role: 'anon', exp: nowS() + 60 })}.`)).status, 401, 'alg none');
    const expired = await refused(gwPem, sign({ exp: nowS() - 100 }, { alg: 'RS256', key: rsa.privateKey }));
    assert.equal(expired.status, 401);
    assert.match(JSON.parse(expired.body).error, /^Token has expired/);
});

test('E5 RS256 and ES256 through --jwks_file, selected by kid (PROTOCOL 8.1)', async () => {
    const rsTok = sign({ role: 'authenticated' }, { alg: 'RS256', key: rsa.privateKey, kid: 'rsa1' });
    const esTok = sign({ role: 'authenticated' }, { alg: 'ES256', key: ec.privateKey, kid: 'ec1' });
    for (const tok of [rsTok, esTok]) {
        const sb = client(gwJwks.url, tok);
        assert.equal(await subscribe(sb.channel(uniq('e5'))), 'SUBSCRIBED');
    }
    const refusedCases = {
        'unknown kid': sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'nope' }),
        'RS256 signed by another key': sign({}, { alg: 'RS256', key: rsaOther.privateKey, kid: 'rsa1' }),
        'RS256 token naming the EC key': sign({}, { alg: 'RS256', key: rsa.privateKey, kid: 'ec1' }),
        'HS256 signed with the RSA public PEM': sign({}, { alg: 'HS256', secret: rsaPem, kid: 'rsa1' }),
        'HS256 with the project secret (none configured)': sign({}, { kid: 'rsa1' }),
    };
    for (const [what, tok] of Object.entries(refusedCases)) {
        assert.equal((await refused(gwJwks, tok)).status, 401, what);
    }
});

test('E6 join with an invalid access_token -> error reply after the delay (PROTOCOL 4.3)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    for (const [what, { token, join }] of Object.entries(BAD)) {
        const t0 = Date.now();
        const { reply } = await raw.join(`realtime:${uniq('e6')}`, {}, { access_token: token });
        const took = Date.now() - t0;
        assert.equal(reply[4].status, 'error', `${what}: ${JSON.stringify(reply)}`);
        assert.deepEqual(Object.keys(reply[4].response), ['reason'], what);
        assert.match(reply[4].response.reason, join, what);
        assert.ok(took >= 80, `${what}: join error after ${took} ms, expected the --join_error_delay_ms 100 delay`);
    }
    // A token starting with sb_ means "use the apikey identity"; so does user_token (legacy).
    const { reply: ok1 } = await raw.join(`realtime:${uniq('e6')}`, {}, { access_token: 'sb_publishable_whatever' });
    assert.equal(ok1[4].status, 'ok', JSON.stringify(ok1));
    const { reply: ok2 } = await raw.join(`realtime:${uniq('e6')}`, {}, { user_token: sign({ role: 'authenticated' }) });
    assert.equal(ok2[4].status, 'ok', JSON.stringify(ok2));
    const { reply: bad2 } = await raw.join(`realtime:${uniq('e6')}`, {}, { user_token: 'garbage' });
    assert.equal(bad2[4].status, 'error', JSON.stringify(bad2));
});

test('E7 supabase-js with an invalid token gets CHANNEL_ERROR with the reason (PROTOCOL 4.3)', async () => {
    const bad = hs({}, { secret: WRONG });
    const sb = client(gw.url, key, { token: bad });
    await sb.realtime.setAuth(bad);
    const ch = sb.channel(uniq('e7'));
    const { status, error } = await subscribeStatus(ch);
    assert.equal(status, 'CHANNEL_ERROR');
    assert.match(error.message, /^JwtSignatureError: Failed to validate JWT signature/);
});

test('E8 setAuth(new valid token) pushes access_token, gets no reply, channel keeps working (PROTOCOL 8.2)', async () => {
    const name = uniq('e8');
    const holder = { t: sign({ sub: 'u1' }) };
    const sb = client(gw.url, key, { token: () => holder.t });
    const ch = sb.channel(name);
    const got = collect(ch, 'broadcast', { event: '*' });
    await subscribe(ch);
    holder.t = sign({ sub: 'u1', refreshed: true });
    await sb.realtime.setAuth(holder.t);
    const push = await waitFor(() => sb.frames.sent.find((f) => Array.isArray(f) && f[3] === 'access_token' && f[4].access_token === holder.t), 3000, 'access_token push');
    assert.equal(push[2], `realtime:${name}`);
    const other = client(gw.url, key);
    const och = other.channel(name);
    await subscribe(och);
    await och.send({ type: 'broadcast', event: 'after-refresh', payload: { ok: 1 } });
    await waitFor(() => got.some((m) => m.event === 'after-refresh'), 3000, 'broadcast after the refresh');
    assert.ok(!sb.frames.recv.some((f) => Array.isArray(f) && f[1] === push[1]), 'the access_token push got a reply');
    assert.equal(ch.state, 'joined');
});

test('E9 setAuth(expired token) -> system error, phx_close, CLOSED; socket stays open (PROTOCOL 8.2)', async () => {
    const name = uniq('e9');
    const holder = { t: sign({}) };
    const sb = client(gw.url, key, { token: () => holder.t });
    const ch = sb.channel(name);
    const sys = collect(ch, 'system', {});
    await subscribe(ch);
    const jr = sb.frames.sent.find((f) => Array.isArray(f) && f[3] === 'phx_join')[0];
    holder.t = sign({ exp: nowS() - 30 });
    await sb.realtime.setAuth(holder.t);
    await waitFor(() => ch.statuses.includes('CLOSED'), 4000, 'CLOSED');
    assert.equal(sys.length, 1);
    assert.equal(sys[0].extension, 'system');
    assert.equal(sys[0].status, 'error');
    assert.equal(sys[0].channel, name);
    assert.match(sys[0].message, /^Token has expired \d+ seconds ago$/);
    const i = sb.frames.recv.findIndex((f) => Array.isArray(f) && f[3] === 'system');
    assert.deepEqual(sb.frames.recv[i], [jr, null, `realtime:${name}`, 'system', { extension: 'system', status: 'error', message: sys[0].message, channel: name }]);
    assert.deepEqual(sb.frames.recv[i + 1], [jr, jr, `realtime:${name}`, 'phx_close', {}]);
    await sleep(300);
    assert.ok(sb.realtime.isConnected(), 'socket closed');
    assert.ok(!ch.statuses.includes('CHANNEL_ERROR'));
});

test('E10 a token expiring while joined closes the channel with "Token has expired" (PROTOCOL 8.3)', async () => {
    const name = uniq('e10');
    const short = sign({ exp: nowS() + 3 });
    const sb = client(gw.url, key, { token: short });
    await sb.realtime.setAuth(short);
    const ch = sb.channel(name);
    const sys = collect(ch, 'system', {});
    await subscribe(ch);
    await waitFor(() => ch.statuses.includes('CLOSED'), 8000, 'CLOSED at expiry');
    assert.equal(sys.length, 1, JSON.stringify(sys));
    assert.deepEqual({ ...sys[0], message: sys[0].message.replace(/\d+/, 'N') }, {
        extension: 'system',
        status: 'error',
        message: 'Token has expired N seconds ago',
        channel: name,
    });
    await sleep(300);
    assert.ok(sb.realtime.isConnected(), 'the socket stays open');
    assert.deepEqual(ch.statuses, ['SUBSCRIBED', 'CLOSED']);
});

test('E11 raw access_token pushes: ignored when same, null or sb_; bad ones close the channel (PROTOCOL 8.2)', async () => {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('e11')}`;
    const tok = sign({ sub: 'raw' });
    const { jr } = await raw.join(topic, { broadcast: { self: true } }, { access_token: tok });
    const pushes = [tok, null, 'sb_publishable_test', sign({ sub: 'raw', v: 2 })];
    const refs = pushes.map((t) => {
        const ref = raw.ref();
        raw.send([jr, ref, topic, 'access_token', { access_token: t }]);
        return ref;
    });
    raw.broadcast(jr, topic, 'still', {});
    await raw.next((f) => asBroadcast(f, topic)?.event === 'still', 3000, 'broadcast after harmless pushes');
    await raw.none((f) => Array.isArray(f) && refs.includes(f[1]), 200, 'reply to an access_token push');
    assert.ok(!raw.frames.some((f) => Array.isArray(f) && (f[3] === 'system' || f[3] === 'phx_close')));

    const cases = [
        ['garbage', 'The token provided is not a valid JWT'],
        [sign({ role: undefined }), 'Fields `role` and `exp` are required in JWT'],
    ];
    for (const [bad, message] of cases) {
        const t = `realtime:${uniq('e11b')}`;
        const { jr: j2 } = await raw.join(t);
        raw.send([j2, raw.ref(), t, 'access_token', { access_token: bad }]);
        const sys = await raw.next((f) => f[2] === t && f[3] === 'system');
        assert.deepEqual(sys, [j2, null, t, 'system', { extension: 'system', status: 'error', message, channel: t.slice(9) }]);
        const close = await raw.next((f) => f[2] === t && f[3] === 'phx_close');
        assert.deepEqual(close, [j2, j2, t, 'phx_close', {}]);
        assert.ok(close.seq > sys.seq);
    }
    await raw.heartbeat();
});
