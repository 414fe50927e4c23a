// pglib.mjs: PostgreSQL helpers of the tidings end-to-end suite (on top of lib.mjs).
//
// A throwaway server per test file comes from test/support/pgtmp.sh (usePg() starts it in a
// before() hook in a fresh temp dir and stops it in after()); psql() runs SQL through the
// psql client; tidings() runs a gateway subcommand (`tidings sql print`, ...);
// pgChannel() joins a supabase-js channel with postgres_changes bindings and waits for the
// gateway's `system` answer; startGatewayAt() starts a gateway on a given port (for
// restarts, which lib.mjs's startGateway() cannot do). Every wait is bounded in time and
// every process started here is stopped by its owner or by the after() hook.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';

import { ROOT, SECRET, closeAll, gatewayBin, httpRequest, onCleanup, sleep, startGateway, trackGateway, waitFor } from './lib.mjs';

export const PGTMP = path.join(ROOT, 'test', 'support', 'pgtmp.sh');

// Directory of the newest installed PostgreSQL server binaries, or null.
export function pgBinDir() {
    const base = '/usr/lib/postgresql';
    let versions = [];
    try {
        versions = fs.readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(a) - Number(b));
    } catch {
        return null;
    }
    for (const v of versions.reverse()) {
        const dir = path.join(base, v, 'bin');
        if (fs.existsSync(path.join(dir, 'pg_ctl'))) return dir;
    }
    return null;
}

const PSQL = (() => {
    const dir = pgBinDir();
    if (dir && fs.existsSync(path.join(dir, 'psql'))) return path.join(dir, 'psql');
    return 'psql';
})();

// Runs a program; resolves {code, signal, stdout, stderr} (never rejects on a non-zero exit).
export function run(file, args, { input, timeoutMs = 30_000, env } = {}) {
    return new Promise((resolve, reject) => {
        const child = execFile(
            file,
            args,
            { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: env ? { ...process.env, ...env } : process.env },
            (err, stdout, stderr) => {
                if (err && typeof err.code !== 'number' && !err.killed && err.signal == null) {
                    reject(err);
                    return;
                }
                resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, signal: err ? err.signal : null, stdout, stderr });
            },
        );
        if (input !== undefined) child.stdin.end(input);
    });
}

/* ------------------------------------------------------------------------ server */

// Runs a command as user postgres when we are root (PostgreSQL refuses to run as root).
function asPg(file, args) {
    if (process.getuid && process.getuid() === 0) return ['runuser', ['-u', 'postgres', '--', file, ...args]];
    return [file, args];
}

// Starts a throwaway server with pgtmp.sh in dir (a new temp dir when omitted). Returns
// {dir, port, conninfo, psql(sql), stop(), start(), restart(), ...}.
export async function startPg(dir) {
    const base = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'tidings-e2e-pg-'));
    fs.chmodSync(base, 0o755); // the server runs as user postgres when we are root
    const data = path.join(base, 'data');
    const r = await run('bash', [PGTMP, 'start', data], { timeoutMs: 90_000 });
    if (r.code !== 0) throw new Error(`pgtmp.sh start failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    const conninfo = r.stdout.trim().split('\n').pop();
    const port = Number(/port=(\d+)/.exec(conninfo)[1]);
    const bin = pgBinDir();
    const pg = {
        base,
        dir: data,
        port,
        conninfo,
        psql: (sql, opts) => psql(conninfo, sql, opts),
        // Stops the server (fast shutdown). Safe to call twice.
        async stop() {
            const s = await run('bash', [PGTMP, 'stop', data], { timeoutMs: 60_000 });
            if (s.code !== 0) throw new Error(`pgtmp.sh stop failed: ${s.stderr}`);
        },
        // Starts the stopped server again on the same port.
        async start() {
            const [f, a] = asPg(path.join(bin, 'pg_ctl'), [
                '-D', data, '-w', '-t', '30', '-l', path.join(data, 'server.log'),
                '-o', `-p ${port} -k ${data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
                'start',
            ]);
            const s = await run(f, a, { timeoutMs: 60_000 });
            if (s.code !== 0) throw new Error(`pg_ctl start failed (${s.code}): ${s.stdout}${s.stderr}\n${tail(path.join(data, 'server.log'))}`);
        },
        // pg_ctl restart -m fast (same options, so the same port).
        async restart() {
            const [f, a] = asPg(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '30', '-l', path.join(data, 'server.log'), 'restart']);
            const s = await run(f, a, { timeoutMs: 60_000 });
            if (s.code !== 0) throw new Error(`pg_ctl restart failed (${s.code}): ${s.stdout}${s.stderr}\n${tail(path.join(data, 'server.log'))}`);
        },
        log: () => tail(path.join(data, 'server.log')),
    };
    return pg;
}

function tail(file, n = 4000) {
    try {
        return fs.readFileSync(file, 'utf8').slice(-n);
    } catch {
        return '';
    }
}

// Starts a server before the file's tests and stops it (and removes its dir) after them.
export function usePg() {
    const handle = {};
    before(async () => {
        Object.assign(handle, await startPg());
    });
    after(async () => {
        if (!handle.stop) return;
        await handle.stop();
        fs.rmSync(handle.base, { recursive: true, force: true });
    });
    return handle;
}

// A server plus one gateway connected to it, for a whole test file. In before(): start the
// server, run setup(pg) (e.g. `tidings sql install` and CREATE TABLEs), start the gateway
// with --pg and args(pg) and wait for /readyz 200. In after(): stop the gateway (it must
// exit cleanly), then the server. Returns {pg, gw} filled in once up.
export function usePgGateway({ args = () => ({}), setup = async () => {}, ...gwOpts } = {}) {
    const handle = { pg: null, gw: null };
    before(async () => {
        handle.pg = await startPg();
        await setup(handle.pg);
        const extra = args(handle.pg);
        handle.gw = await startGateway({ ...gwOpts, args: ['--pg', handle.pg.conninfo, ...gatewayArgs(extra)] });
        await waitReady(handle.gw);
    });
    after(async () => {
        await closeAll();
        let problem = null;
        if (handle.gw) {
            const wasDead = handle.gw.exited();
            const ex = await handle.gw.stop();
            const clean = !wasDead && (ex.code === 0 || (ex.code === null && ex.signal === 'SIGTERM'));
            if (!clean) problem = `gateway :${handle.gw.port} did not stop cleanly: ${JSON.stringify(ex)}\n${handle.gw.stderr().slice(-6000)}`;
        }
        if (handle.pg) {
            await handle.pg.stop();
            fs.rmSync(handle.pg.base, { recursive: true, force: true });
        }
        if (problem) throw new Error(problem);
    });
    return handle;
}

/* -------------------------------------------------------------------------- psql */

// Runs SQL (one or more statements, each in its own transaction unless the SQL says
// otherwise) and resolves with the unaligned, tuples-only output, trimmed. Rejects on an
// error unless opts.allowFail, then resolves {code, stdout, stderr}.
export async function psql(conninfo, sql, { allowFail = false, timeoutMs = 30_000 } = {}) {
    const r = await run(PSQL, ['-X', '-qAt', '-v', 'ON_ERROR_STOP=1', '-d', conninfo, '-f', '-'], { input: sql, timeoutMs });
    if (allowFail) return r;
    if (r.code !== 0) throw new Error(`psql failed (${r.code}): ${r.stderr}\nSQL: ${sql.slice(0, 2000)}`);
    return r.stdout.trim();
}

// Starts psql in the background on sql. Returns {proc, done: Promise<{code, stdout, stderr}>,
// kill()}. The process is killed at the end of the running test if still alive.
export function psqlSpawn(conninfo, sql) {
    const proc = spawn(PSQL, ['-X', '-qAt', '-v', 'ON_ERROR_STOP=1', '-d', conninfo, '-f', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    proc.stdin.on('error', () => {});
    proc.stdin.end(sql);
    const done = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
    const h = {
        proc,
        done,
        kill() {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        },
    };
    onCleanup(() => h.kill());
    return h;
}

/* ------------------------------------------------------------------------ gateway */

// Runs `tidings ARGS...` (a subcommand) and resolves {code, signal, stdout, stderr}.
export function tidings(args, opts = {}) {
    return run(gatewayBin(), args, { timeoutMs: 60_000, ...opts });
}

// GET /readyz: resolves {status, body (parsed JSON or the text)}.
export async function readyz(gw) {
    const r = await httpRequest('GET', `${gw.url}/readyz`, { timeoutMs: 2000 });
    let body = r.body;
    try {
        body = JSON.parse(r.body);
    } catch {
        /* keep the text */
    }
    return { status: r.status, body };
}

// Waits until /readyz answers 200 (the listener is connected and caught up).
export async function waitReady(gw, timeoutMs = 15_000) {
    let last = null;
    try {
        await waitFor(async () => {
            last = await readyz(gw).catch((e) => ({ status: 0, body: String(e) }));
            return last.status === 200;
        }, timeoutMs, `/readyz 200 on :${gw.port}`);
    } catch (e) {
        e.message += `; last answer: ${JSON.stringify(last)}`;
        throw e;
    }
    return last;
}

// Starts a gateway on a given port (restart tests). Same options and handle as lib.mjs's
// startGateway(), minus the per-file log dump: the handle is stopped at the end of the
// running test unless opts.keep.
export async function startGatewayAt(port, opts = {}) {
    const args = ['--port', String(port), '--bind', '127.0.0.1'];
    const secret = opts.secret === undefined ? SECRET : opts.secret;
    if (secret !== null) args.push('--jwt_secret', secret);
    args.push('--join_error_delay_ms', String(opts.joinErrorDelayMs ?? 100));
    args.push(...gatewayArgs(opts.args));
    const proc = spawn(gatewayBin(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
    trackGateway(gw);
    if (!opts.keep) onCleanup(() => gw.stop());
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

// lib.mjs's args forms: { option: value | [values] } or an array of argv strings.
export function gatewayArgs(args) {
    if (!args) return [];
    if (Array.isArray(args)) return [...args];
    const out = [];
    for (const [name, value] of Object.entries(args)) {
        for (const v of Array.isArray(value) ? value : [value]) out.push(`--${name}`, String(v));
    }
    return out;
}

/* ------------------------------------------------------------- postgres_changes */

const isPgSystem = (m) => m && m.extension === 'postgres_changes';

// Joins channel `name` on client sb with postgres_changes bindings ([{event, schema,
// table, filter?}, ...]), each collecting into its own array. Resolves once the channel is
// SUBSCRIBED and the gateway sent its postgres_changes `system` message (ok or error):
//   {ch, got: [[payloads of binding 0], ...], all: [every payload, in arrival order],
//    systems: [every system payload], system: the first postgres_changes one}
// opts: config (channel config), waitSystem (default true), timeoutMs.
export async function pgChannel(sb, name, bindings, opts = {}) {
    const ch = sb.channel(name, opts.config ? { config: opts.config } : undefined);
    const got = bindings.map(() => []);
    const all = [];
    const systems = [];
    bindings.forEach((b, i) => {
        ch.on('postgres_changes', b, (p) => {
            got[i].push(p);
            all.push(p);
        });
    });
    ch.on('system', {}, (m) => systems.push(m));
    const timeoutMs = opts.timeoutMs ?? 8000;
    await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`pgChannel ${name}: no SUBSCRIBED after ${timeoutMs} ms`)), timeoutMs);
        ch.subscribe((status, err) => {
            if (status === 'SUBSCRIBED') {
                clearTimeout(timer);
                resolve();
            } else if (status !== 'CLOSED') {
                clearTimeout(timer);
                reject(new Error(`pgChannel ${name}: ${status}${err ? `: ${err.message}` : ''}`));
            }
        });
    });
    const res = { ch, got, all, systems, system: null };
    if (opts.waitSystem !== false) {
        res.system = await waitFor(() => systems.find(isPgSystem), timeoutMs, `postgres_changes system message on ${name} (got ${JSON.stringify(systems)})`);
    }
    return res;
}

// pgChannel() that retries (new channel each time) until the system message is ok, for
// tables enabled a moment ago (the gateway reloads its table list asynchronously).
export async function pgChannelOk(sb, name, bindings, opts = {}, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const res = await pgChannel(sb, name, bindings, opts);
        if (res.system.status === 'ok') return res;
        await sb.removeChannel(res.ch);
        if (Date.now() > deadline) throw new Error(`pgChannelOk ${name}: ${JSON.stringify(res.system)}`);
        await sleep(300);
    }
}

// The postgres_changes frames received by a client (text frames; vsn 2.0.0 arrays).
export function changeFrames(sb, topic) {
    return sb.frames.recv.filter((f) => Array.isArray(f) && f[3] === 'postgres_changes' && (!topic || f[2] === topic));
}

// Problems of a received sequence: duplicates and values not greater than their predecessor
// ([] when strictly increasing).
export function orderProblems(values) {
    const problems = [];
    const seen = new Set();
    for (let i = 0; i < values.length; i++) {
        if (seen.has(values[i])) problems.push(`duplicate ${values[i]} at ${i}`);
        seen.add(values[i]);
        if (i > 0 && !(values[i] > values[i - 1])) problems.push(`${values[i]} after ${values[i - 1]} at ${i}`);
    }
    return problems;
}
