// lib.mjs: shared helpers of the tidings end-to-end suite.
//
// Every *.test.mjs file starts its own gateway process(es) with startGateway() and drives
// them with the real @supabase/supabase-js 2.119.1 client (client()) or with a raw `ws`
// socket for crafted frames (rawConnect()). Everything a test opens through this module is
// tracked and closed by the test() wrapper, so the node process always exits; when a test
// fails, the wrapper prints the stderr of every gateway started by the file. Every wait is
// bounded in time.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, test as nodeTest } from 'node:test';
import { fileURLToPath } from 'node:url';

import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

export { WebSocket };

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');
export const SECRET = 'e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz';

const gateways = []; // every gateway this process started

// Every gateway a test file started is stopped when the file ends, also those a test did
// not stop itself (cluster tests start several): no process outlives its test file. This
// runs at process exit, after every test hook, so useGateway() still checks its own stop.
export function trackGateway(gw) {
    gateways.push(gw);
}
process.on('exit', () => {
    for (const g of gateways) if (!g.exited() && g.proc) g.proc.kill('SIGTERM');
});
let openThings = []; // clients and sockets opened by the running test

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/* ------------------------------------------------------------------ tests and cleanup */

// Closes everything opened since the last call (clients, raw sockets).
export async function closeAll() {
    const things = openThings;
    openThings = [];
    await Promise.all(things.map((close) => Promise.resolve().then(close).catch(() => {})));
}

// Registers a cleanup function for the running test.
export function onCleanup(fn) {
    openThings.push(fn);
}

function gatewayLogs() {
    return gateways
        .map((g) => `----- gateway :${g.port} ${g.args.join(' ')} -----\n${g.stderr().slice(-8000)}`)
        .join('\n');
}

// node:test's test() with cleanup and gateway logs on failure.
export function test(name, fn) {
    return nodeTest(name, { timeout: 60_000 }, async (t) => {
        try {
            await fn(t);
            const dead = gateways.find((g) => g.exited() && !g.stopping);
            if (dead) throw new Error(`gateway :${dead.port} died: ${JSON.stringify(dead.exited())}`);
        } catch (err) {
            console.error(`\n##### FAILED: ${name}\n${err && err.stack}\n${gatewayLogs()}\n#####`);
            throw err;
        } finally {
            await closeAll();
        }
    });
}

// Waits until predicate() returns a truthy value (returned), or throws after timeoutMs.
export async function waitFor(predicate, timeoutMs = 5000, what = 'condition') {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await predicate();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await sleep(20);
    }
}

// Resolves after ms, then checks that predicate() is still false.
export async function never(predicate, ms = 400, what = 'condition') {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (await predicate()) throw new Error(`unexpected: ${what}`);
        await sleep(20);
    }
}

export function uniq(prefix = 't') {
    return `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
}

/* ------------------------------------------------------------------------- gateway */

// Starts a gateway before the file's tests and stops it after them. Returns a handle whose
// fields (url, port, stop, ...) are filled in once the gateway is up.
export function useGateway(opts = {}) {
    const handle = {};
    before(async () => {
        Object.assign(handle, await startGateway(opts));
    });
    after(async () => {
        await closeAll();
        if (!handle.stop) return;
        const wasDead = handle.exited && handle.exited();
        const ex = await handle.stop();
        // A clean shutdown is exit code 0 (or death by the SIGTERM itself). Anything else,
        // e.g. a sanitizer report, a crash or a hang that needed SIGKILL, fails the file.
        const clean = !wasDead && (ex.code === 0 || (ex.code === null && ex.signal === 'SIGTERM'));
        if (!clean) {
            throw new Error(`gateway :${handle.port} did not stop cleanly: ${JSON.stringify(ex)}\n${handle.stderr().slice(-6000)}`);
        }
    });
    return handle;
}

export async function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

export function gatewayBin() {
    return process.env.TIDINGS_BIN || path.join(ROOT, 'build', 'gateway', 'tidings');
}

// Starts a gateway. opts.secret (default SECRET; null = no --jwt_secret), opts.joinErrorDelayMs
// (default 100), opts.args: { option: value | [values] } or an array of extra argv strings.
// Resolves once GET /healthz answers 200 (10 s max).
export async function startGateway(opts = {}) {
    const port = opts.port ?? (await freePort());
    const args = ['--port', String(port), '--bind', '127.0.0.1'];
    const secret = opts.secret === undefined ? SECRET : opts.secret;
    if (secret !== null) args.push('--jwt_secret', secret);
    args.push('--join_error_delay_ms', String(opts.joinErrorDelayMs ?? 100));
    if (Array.isArray(opts.args)) {
        args.push(...opts.args);
    } else {
        for (const [name, value] of Object.entries(opts.args || {})) {
            for (const v of Array.isArray(value) ? value : [value]) args.push(`--${name}`, String(v));
        }
    }
    const bin = gatewayBin();
    if (!fs.existsSync(bin)) throw new Error(`gateway binary not found: ${bin} (set TIDINGS_BIN)`);
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const append = (d) => {
        log += d.toString();
        if (log.length > 2_000_000) log = log.slice(-1_000_000);
    };
    proc.stdout.on('data', append);
    proc.stderr.on('data', append);
    let exited = null;
    const exitPromise = new Promise((resolve) => {
        proc.once('exit', (code, signal) => {
            exited = { code, signal };
            resolve(exited);
        });
    });
    const gw = {
        port,
        args,
        pid: proc.pid,
        proc,
        secret,
        url: `http://127.0.0.1:${port}`,
        wsUrl: `ws://127.0.0.1:${port}/realtime/v1/websocket`,
        stderr: () => log,
        exited: () => exited,
        stopping: false,
        async stop() {
            gw.stopping = true;
            if (exited) return exited;
            proc.kill('SIGTERM');
            const timer = setTimeout(() => {
                if (!exited) proc.kill('SIGKILL');
            }, 3000);
            await exitPromise;
            clearTimeout(timer);
            return exited;
        },
    };
    gateways.push(gw);
    const deadline = Date.now() + 10_000;
    for (;;) {
        if (exited) throw new Error(`gateway exited at start (${JSON.stringify(exited)}):\n${log}`);
        try {
            const r = await httpRequest('GET', `${gw.url}/healthz`, { timeoutMs: 500 });
            if (r.status === 200) break;
        } catch {
            /* not listening yet */
        }
        if (Date.now() > deadline) {
            await gw.stop();
            throw new Error(`gateway not healthy after 10 s:\n${log}`);
        }
        await sleep(50);
    }
    return gw;
}

/* -------------------------------------------------------------------------- tokens */

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// Signs a JWT. claims are merged over {role:'authenticated', sub, exp: now+3600}; a claim
// set to undefined is removed. opts: secret (HS256 key, default SECRET), alg ('HS256',
// 'HS384', 'RS256', 'ES256', 'none'), key (private KeyObject/PEM for RS256/ES256), kid,
// header (extra header fields).
export function sign(claims = {}, opts = {}) {
    const now = Math.floor(Date.now() / 1000);
    const body = { role: 'authenticated', sub: 'user-1', exp: now + 3600, iat: now, ...claims };
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    const alg = opts.alg || 'HS256';
    const header = { alg, typ: 'JWT', ...(opts.kid ? { kid: opts.kid } : {}), ...(opts.header || {}) };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(body))}`;
    let sig = '';
    if (alg.startsWith('HS')) {
        const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
        sig = b64url(crypto.createHmac(hash, opts.secret ?? SECRET).update(input).digest());
    } else if (alg === 'RS256') {
        sig = b64url(crypto.sign('sha256', Buffer.from(input), opts.key));
    } else if (alg === 'ES256') {
        sig = b64url(crypto.sign('sha256', Buffer.from(input), { key: opts.key, dsaEncoding: 'ieee-p1363' }));
    }
    return `${input}.${sig}`;
}

export const nowS = () => Math.floor(Date.now() / 1000);

/* ------------------------------------------------------------------ supabase client */

// A `ws` WebSocket subclass that records every frame sent and received by one client.
function recordingTransport(log) {
    return class RecordingWebSocket extends WebSocket {
        constructor(url, protocols) {
            super(url, protocols);
            log.sockets.push(this);
            this.addEventListener('message', (ev) => log.recv.push(decodeAny(ev.data)));
        }
        send(data, ...rest) {
            log.sent.push(decodeAny(data));
            return super.send(data, ...rest);
        }
    };
}

// Creates a supabase-js client for the gateway at url. opts: vsn ('2.0.0'|'1.0.0'),
// token (string or () => string: an accessToken callback, so joins carry it instead of the
// apikey), realtime (extra realtime options). The returned client has .frames = {sent, recv}
// with every WebSocket frame (text frames parsed, kind 4 decoded).
export function client(url, key, opts = {}) {
    const frames = { sent: [], recv: [], sockets: [] };
    const options = {
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
        realtime: {
            transport: recordingTransport(frames),
            ...(opts.vsn ? { vsn: opts.vsn } : {}),
            ...(opts.realtime || {}),
            params: { ...((opts.realtime && opts.realtime.params) || {}) },
        },
    };
    if (opts.token !== undefined) {
        const tok = opts.token;
        options.accessToken = async () => (typeof tok === 'function' ? tok() : tok);
    }
    const sb = createClient(url, key, options);
    sb.frames = frames;
    onCleanup(async () => {
        try {
            await Promise.race([sb.removeAllChannels(), sleep(1000)]);
        } catch {
            /* ignore */
        }
        sb.realtime.disconnect();
        for (const s of frames.sockets) s.terminate();
    });
    return sb;
}

// Subscribes a channel. Resolves on SUBSCRIBED; rejects with an Error carrying the status
// and the client's error on CHANNEL_ERROR, TIMED_OUT or CLOSED. Every status the callback
// reports is appended to channel.statuses.
export function subscribe(channel, timeoutMs = 8000) {
    return new Promise((resolve, reject) => {
        channel.statuses = channel.statuses || [];
        const timer = setTimeout(() => reject(new Error(`subscribe: no status after ${timeoutMs} ms`)), timeoutMs);
        channel.subscribe((status, err) => {
            channel.statuses.push(status);
            channel.lastError = err;
            clearTimeout(timer);
            if (status === 'SUBSCRIBED') resolve(status);
            else {
                const e = new Error(`subscribe: ${status}${err ? `: ${err.message}` : ''}`);
                e.status = status;
                e.cause = err;
                reject(e);
            }
        });
    });
}

// Like subscribe() but resolves with {status, error} for the first status whatever it is.
export async function subscribeStatus(channel, timeoutMs = 8000) {
    try {
        return { status: await subscribe(channel, timeoutMs), error: null };
    } catch (e) {
        return { status: e.status || 'NONE', error: e.cause || e };
    }
}

// Collects broadcasts received by a channel for an event ('*' for all).
export function collect(channel, type, filter = {}) {
    const got = [];
    channel.on(type, filter, (msg) => got.push(msg));
    return got;
}

/* ---------------------------------------------------------------------- raw sockets */

// Decodes a received or sent WebSocket message: text -> parsed JSON (or {invalid: text}),
// binary kind 4 -> {binary:4, topic, event, meta, encoding, payload}, binary kind 3 ->
// {binary:3, ...}, other binary -> {binary: kind, bytes}.
export function decodeAny(data) {
    if (typeof data === 'string') {
        try {
            return JSON.parse(data);
        } catch {
            return { invalid: data };
        }
    }
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data instanceof ArrayBuffer ? data : data.buffer);
    return decodeBinary(buf);
}

export function decodeBinary(buf) {
    const kind = buf[0];
    if (kind === 4) {
        const [t, e, m, enc] = [buf[1], buf[2], buf[3], buf[4]];
        let o = 5;
        const topic = buf.subarray(o, (o += t)).toString('utf8');
        const event = buf.subarray(o, (o += e)).toString('utf8');
        const metaText = buf.subarray(o, (o += m)).toString('utf8');
        const raw = buf.subarray(o);
        return {
            binary: 4,
            topic,
            event,
            encoding: enc,
            meta: m ? JSON.parse(metaText) : undefined,
            payload: enc === 1 ? JSON.parse(raw.toString('utf8')) : Buffer.from(raw),
        };
    }
    if (kind === 3) {
        const [j, r, t, e, m, enc] = [buf[1], buf[2], buf[3], buf[4], buf[5], buf[6]];
        let o = 7;
        const take = (n) => buf.subarray(o, (o += n)).toString('utf8');
        const joinRef = take(j);
        const ref = take(r);
        const topic = take(t);
        const event = take(e);
        const meta = take(m);
        const raw = buf.subarray(o);
        return { binary: 3, joinRef, ref, topic, event, meta, encoding: enc, payload: enc === 1 ? raw.toString('utf8') : raw };
    }
    return { binary: kind, bytes: buf };
}

// Encodes a kind 3 user broadcast push (PROTOCOL 1.3). payload: object (JSON, encoding 1)
// or Buffer (encoding 0). lens overrides any header length byte to craft bad frames.
export function encodeKind3({ joinRef = '', ref = '', topic, event, meta = '', payload = {}, lens = {} }) {
    const parts = [joinRef, ref, topic, event, meta].map((s) => Buffer.from(s, 'utf8'));
    const isBin = Buffer.isBuffer(payload);
    const body = isBin ? payload : Buffer.from(JSON.stringify(payload), 'utf8');
    const header = Buffer.from([
        3,
        lens.joinRef ?? parts[0].length,
        lens.ref ?? parts[1].length,
        lens.topic ?? parts[2].length,
        lens.event ?? parts[3].length,
        lens.meta ?? parts[4].length,
        lens.encoding ?? (isBin ? 0 : 1),
    ]);
    return Buffer.concat([header, ...parts, body]);
}

// Upgrade URL for the gateway, with the apikey and vsn query params.
export function wsUrlFor(gw, key, vsn = '2.0.0', extra = '') {
    const q = [];
    if (key !== null && key !== undefined) q.push(`apikey=${encodeURIComponent(key)}`);
    if (vsn) q.push(`vsn=${vsn}`);
    return `${gw.wsUrl}${q.length ? '?' : ''}${q.join('&')}${extra}`;
}

// A raw WebSocket client. Resolves once open; rejects with {status, body} when the gateway
// answers the upgrade with an HTTP error. The returned object:
//   frames      every received message in order, decoded (decodeAny), each with .seq
//   send(x)     arrays/objects are JSON-encoded, strings and Buffers sent as is
//   next(pred, timeoutMs)  the first not-yet-taken frame matching pred (taken afterwards)
//   none(pred, ms)         throws if a not-yet-taken frame matching pred is there after ms
//   closed      promise of {code, reason} once the socket closed; isClosed()
//   ref()       a fresh ref string; join(topic, config, extra) joins and returns the reply
export function rawConnect(url, opts = {}) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024, ...(opts.ws || {}) });
        const frames = [];
        const taken = new Set();
        let seq = 0;
        let refCounter = opts.firstRef ?? 1;
        let closeInfo = null;
        let onClosed;
        const closed = new Promise((r) => (onClosed = r));
        const vsn1 = /vsn=1\.0\.0/.test(url);
        ws.on('message', (data, isBinary) => {
            const f = isBinary ? decodeBinary(Buffer.from(data)) : decodeAny(data.toString('utf8'));
            if (f && typeof f === 'object') Object.defineProperty(f, 'seq', { value: seq++, enumerable: false });
            frames.push(f);
        });
        ws.on('close', (code, reason) => {
            closeInfo = { code, reason: reason.toString() };
            onClosed(closeInfo);
        });
        ws.on('unexpected-response', (req, res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () => {
                ws.terminate();
                const e = new Error(`upgrade refused: HTTP ${res.statusCode} ${body}`);
                e.status = res.statusCode;
                e.body = body;
                e.headers = res.headers;
                reject(e);
            });
            res.on('error', () => {});
        });
        ws.on('error', (err) => {
            if (ws.readyState === WebSocket.CONNECTING) reject(err);
        });
        const raw = {
            ws,
            frames,
            closed,
            vsn1,
            isClosed: () => closeInfo !== null,
            closeInfo: () => closeInfo,
            ref: () => String(refCounter++),
            send(x) {
                if (ws.readyState !== WebSocket.OPEN) throw new Error('raw socket not open');
                if (typeof x === 'string' || Buffer.isBuffer(x)) ws.send(x);
                else ws.send(JSON.stringify(x));
            },
            async next(pred, timeoutMs = 3000, what = 'frame') {
                const deadline = Date.now() + timeoutMs;
                for (;;) {
                    for (let i = 0; i < frames.length; i++) {
                        if (taken.has(i)) continue;
                        let ok = false;
                        try {
                            ok = pred(frames[i]);
                        } catch {
                            ok = false;
                        }
                        if (ok) {
                            taken.add(i);
                            return frames[i];
                        }
                    }
                    if (Date.now() > deadline) {
                        throw new Error(
                            `raw: no ${what} within ${timeoutMs} ms; received:\n` +
                                frames.map((f) => JSON.stringify(f)).slice(-20).join('\n') +
                                (closeInfo ? `\n(socket closed ${JSON.stringify(closeInfo)})` : ''),
                        );
                    }
                    await sleep(10);
                }
            },
            // Frames already returned by next() are not considered.
            async none(pred, ms = 400, what = 'frame') {
                await sleep(ms);
                const bad = frames.find((f, i) => {
                    if (taken.has(i)) return false;
                    try {
                        return pred(f);
                    } catch {
                        return false;
                    }
                });
                if (bad) throw new Error(`raw: unexpected ${what}: ${JSON.stringify(bad)}`);
            },
            // Sends a phx_join; resolves with the reply frame.
            async join(topic, config = {}, extra = {}, timeoutMs = 4000) {
                const jr = raw.ref();
                const cfg = {
                    broadcast: { ack: false, self: false },
                    presence: { key: '', enabled: false },
                    postgres_changes: [],
                    private: false,
                    ...config,
                };
                if (vsn1) {
                    raw.send({ topic, event: 'phx_join', payload: { config: cfg, ...extra }, ref: jr, join_ref: jr });
                    const reply = await raw.next((f) => f.event === 'phx_reply' && f.ref === jr, timeoutMs, `join reply ${jr}`);
                    return { jr, reply };
                }
                raw.send([jr, jr, topic, 'phx_join', { config: cfg, ...extra }]);
                const reply = await raw.next((f) => Array.isArray(f) && f[3] === 'phx_reply' && f[1] === jr, timeoutMs, `join reply ${jr}`);
                return { jr, reply };
            },
            // Sends a heartbeat and resolves with its reply.
            async heartbeat(timeoutMs = 3000) {
                const ref = raw.ref();
                if (vsn1) {
                    raw.send({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref, join_ref: null });
                    return raw.next((f) => f.topic === 'phoenix' && f.ref === ref, timeoutMs, `heartbeat reply ${ref}`);
                }
                raw.send([null, ref, 'phoenix', 'heartbeat', {}]);
                return raw.next((f) => Array.isArray(f) && f[2] === 'phoenix' && f[1] === ref, timeoutMs, `heartbeat reply ${ref}`);
            },
            // Pushes a JSON broadcast on a joined topic.
            broadcast(jr, topic, event, payload, ref = raw.ref()) {
                raw.send([jr, ref, topic, 'broadcast', { type: 'broadcast', event, payload }]);
                return ref;
            },
            close() {
                if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
            },
        };
        onCleanup(() => raw.close());
        ws.on('open', () => resolve(raw));
    });
}

// Shorthands for frames.
export const isReply = (ref) => (f) => Array.isArray(f) && f[3] === 'phx_reply' && f[1] === ref;
export const isEvent = (topic, event) => (f) => Array.isArray(f) && f[2] === topic && f[3] === event;
// A broadcast delivered as JSON or kind 4: returns {event, payload, meta} or null.
export function asBroadcast(f, topic) {
    if (!f) return null;
    if (f.binary === 4 && (!topic || f.topic === topic)) return { event: f.event, payload: f.payload, meta: f.meta, binary: true };
    if (Array.isArray(f) && f[3] === 'broadcast' && (!topic || f[2] === topic) && f[4] && f[4].type === 'broadcast') {
        return { event: f[4].event, payload: f[4].payload, meta: f[4].meta, binary: false };
    }
    if (!Array.isArray(f) && f.event === 'broadcast' && (!topic || f.topic === topic) && f.payload) {
        return { event: f.payload.event, payload: f.payload.payload, meta: f.payload.meta, binary: false };
    }
    return null;
}

/* ----------------------------------------------------------------------------- HTTP */

// A plain HTTP request (no keep-alive, path sent verbatim, Content-Length set unless
// chunked is true). Resolves with {status, headers, body (string), buf (Buffer), json()}.
export function httpRequest(method, url, { headers = {}, body, timeoutMs = 5000, rawPath, chunked = false } = {}) {
    return new Promise((resolve, reject) => {
        const u = new URL(url);
        if (body !== undefined && !chunked) headers = { 'Content-Length': Buffer.byteLength(body), ...headers };
        const req = http.request(
            {
                host: u.hostname,
                port: u.port,
                method,
                path: rawPath ?? `${u.pathname}${u.search}`,
                headers: { Connection: 'close', ...headers },
                agent: false,
            },
            (res) => {
                const chunks = [];
                res.on('data', (d) => chunks.push(d));
                res.on('end', () => {
                    const buf = Buffer.concat(chunks);
                    const text = buf.toString('utf8');
                    resolve({
                        status: res.statusCode,
                        headers: res.headers,
                        body: text,
                        buf,
                        json: () => JSON.parse(text),
                    });
                });
                res.on('error', reject);
            },
        );
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`HTTP ${method} ${url} timed out`)));
        req.on('error', reject);
        if (body !== undefined) req.write(body);
        req.end();
    });
}

// POST /realtime/v1/api/broadcast with a messages array. auth: {apikey, bearer}.
export function restBroadcast(gw, messages, { apikey, bearer, body } = {}) {
    const headers = { 'Content-Type': 'application/json' };
    if (apikey) headers.apikey = apikey;
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    return httpRequest('POST', `${gw.url}/realtime/v1/api/broadcast`, {
        headers,
        body: body ?? JSON.stringify({ messages }),
    });
}

// GET /metrics parsed into { 'name{labels}': value, ... } plus .text.
export async function metrics(gw) {
    const r = await httpRequest('GET', `${gw.url}/metrics`);
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
    const out = {};
    for (const line of r.body.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/);
        if (m) out[m[1]] = Number(m[2]);
    }
    Object.defineProperty(out, 'text', { value: r.body, enumerable: false });
    Object.defineProperty(out, 'headers', { value: r.headers, enumerable: false });
    return out;
}

// Sum of every sample of a metric name (all label sets).
export function metricValue(m, name) {
    let sum = 0;
    let found = false;
    for (const [k, v] of Object.entries(m)) {
        if (k === name || k.startsWith(`${name}{`)) {
            sum += v;
            found = true;
        }
    }
    return found ? sum : undefined;
}

/* ----------------------------------------------------------------------- health */

// Checks that a new, separate client can join a fresh topic and receive a broadcast
// (self:true, so one socket suffices). Used after bad input on another socket.
export async function assertServes(gw, key) {
    const raw = await rawConnect(wsUrlFor(gw, key));
    const topic = `realtime:${uniq('health')}`;
    const { jr, reply } = await raw.join(topic, { broadcast: { ack: false, self: true } });
    if (!(reply[4] && reply[4].status === 'ok')) throw new Error(`health join failed: ${JSON.stringify(reply)}`);
    raw.broadcast(jr, topic, 'ping', { ok: true });
    await raw.next((f) => asBroadcast(f, topic)?.event === 'ping', 3000, 'health broadcast');
    raw.close();
}
