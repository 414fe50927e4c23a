// idle-rss.mjs: memory cost of idle WebSocket connections on the tidings gateway.
//
//   ulimit -n 20000   # the shell must allow this many fds (the gateway inherits it)
//   node test/e2e/tools/idle-rss.mjs [N=10000] [--deflate]
//
// Starts a gateway (TIDINGS_BIN or build/gateway/tidings) on a free loopback port, opens N
// WebSocket connections spread over the source addresses 127.0.0.1..127.0.0.4 in batches,
// each joining one of 100 channels, waits 5 s, and prints the gateway's VmRSS before and
// after, /proc/net/sockstat, and the RSS per connection in KB. Connections do not offer
// permessage-deflate unless --deflate is given. Everything is closed at the end; the whole
// run is bounded by a hard 120 s timeout.

import fs from 'node:fs';

import { closeAll, sign, sleep, startGateway, WebSocket, wsUrlFor } from '../lib.mjs';

const N = Number(process.argv.find((a) => /^\d+$/.test(a)) || 10000);
const DEFLATE = process.argv.includes('--deflate');
const BATCH = 250;
const ADDRS = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];

const sockets = [];
let gw = null;

async function cleanup() {
    for (const s of sockets) s.terminate();
    await closeAll();
    if (gw) await gw.stop();
}

const hardTimeout = setTimeout(async () => {
    console.error('idle-rss: hard timeout (120 s) reached, aborting');
    await cleanup();
    process.exit(2);
}, 120_000);

function rssKb(pid) {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) : NaN;
}

function fdLimit() {
    const m = fs.readFileSync('/proc/self/limits', 'utf8').match(/^Max open files\s+(\d+)/m);
    return m ? Number(m[1]) : NaN;
}

// Opens one connection and joins a channel; resolves once the join reply arrives.
function openOne(url, i) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { localAddress: ADDRS[i % ADDRS.length], perMessageDeflate: DEFLATE });
        sockets.push(ws);
        const timer = setTimeout(() => reject(new Error(`connection ${i}: no join reply in 10 s`)), 10_000);
        ws.on('error', (e) => {
            clearTimeout(timer);
            reject(e);
        });
        ws.on('open', () => {
            const jr = String(i + 1);
            ws.send(JSON.stringify([jr, jr, `realtime:idle-${i % 100}`, 'phx_join', {
                config: { broadcast: { ack: false, self: false }, presence: { key: '', enabled: false }, postgres_changes: [], private: false },
            }]));
        });
        ws.once('message', (data) => {
            clearTimeout(timer);
            const f = JSON.parse(data.toString());
            if (f[4] && f[4].status === 'ok') resolve();
            else reject(new Error(`connection ${i}: join failed ${data}`));
        });
    });
}

async function main() {
    const limit = fdLimit();
    if (limit < N + 500) {
        console.error(`idle-rss: open-file limit ${limit} is below N + 500 = ${N + 500}; run "ulimit -n ${Math.max(20000, N + 1000)}" first`);
        process.exit(1);
    }
    gw = await startGateway({ args: { log_level: 'warn', idle_timeout: 600 } });
    const key = sign({ role: 'anon' });
    const url = wsUrlFor(gw, key);
    await sleep(500);
    const before = rssKb(gw.pid);
    const t0 = Date.now();
    for (let i = 0; i < N; i += BATCH) {
        const batch = [];
        for (let j = i; j < Math.min(N, i + BATCH); j++) batch.push(openOne(url, j));
        await Promise.all(batch);
    }
    const openMs = Date.now() - t0;
    const extensions = sockets[0] ? sockets[0].extensions || '(none)' : '';
    await sleep(5000);
    const after = rssKb(gw.pid);
    const sockstat = fs.readFileSync('/proc/net/sockstat', 'utf8').trim();
    console.log(`connections:        ${N} (joined, idle), opened in ${openMs} ms, extensions: ${extensions}`);
    console.log(`gateway VmRSS:      before ${before} kB, after ${after} kB`);
    console.log(`RSS per connection: ${((after - before) / N).toFixed(2)} KB`);
    console.log(`/proc/net/sockstat:\n${sockstat}`);
}

main()
    .catch(async (e) => {
        console.error(`idle-rss: ${e.stack || e}`);
        if (gw) console.error(gw.stderr().slice(-4000));
        process.exitCode = 1;
    })
    .finally(async () => {
        await cleanup();
        clearTimeout(hardTimeout);
    });
