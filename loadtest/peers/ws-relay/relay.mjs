// relay.mjs: a benchmark peer of tidings, the hand-written Node `ws` pub/sub relay that
// teams build for themselves when they need "a few thousand browsers get our events".
//
// It serves the `simple` protocol of tidings-load (docs/BENCHMARKS.md, loadtest/compare.sh):
//   - subscriber: WebSocket GET /sub/<topic>; every text frame it receives is one message;
//     the client sends nothing (no join, no heartbeat);
//   - publisher:  HTTP POST /pub/<topic> (keep-alive); the request body is sent as-is, as
//     one text frame, to every subscriber of the topic; the reply is 202 with the number of
//     subscribers it went to;
//   - GET /healthz answers 200 "ok" (readiness probe of the scripts).
// <topic> is 1..200 characters of [A-Za-z0-9_-].
//
// How it works: one process, one http.Server; the ws.WebSocketServer runs with noServer and
// takes the upgrades the http server hands it. Subscriptions live in a
// Map<topic, Set<WebSocket>>; a POST loops over the topic's set and calls ws.send() for
// each socket. Written the idiomatic way on purpose (no pre-framing, no batching): it is
// the baseline a team would have, not a tuned server. permessage-deflate stays off (the ws
// default for servers).
//
// Usage: node relay.mjs --port P [--host 127.0.0.1]
// Raise the open-file limit first (ulimit -n 20000) to hold thousands of sockets.

import http from 'node:http';
import { parseArgs } from 'node:util';

import WebSocket, { WebSocketServer } from 'ws';

const TOPIC_PATH = /^\/(sub|pub)\/([A-Za-z0-9_-]{1,200})$/;
const MAX_BODY = 1024 * 1024; // largest published message, bytes

const { values: opts } = parseArgs({
    options: {
        port: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
    },
});
const port = Number(opts.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error('usage: node relay.mjs --port P [--host 127.0.0.1]');
    process.exit(2);
}

const topics = new Map(); // topic -> Set of subscribed WebSockets

function subscribe(topic, ws) {
    let subs = topics.get(topic);
    if (!subs) {
        subs = new Set();
        topics.set(topic, subs);
    }
    subs.add(ws);
    ws.on('close', () => {
        subs.delete(ws);
        if (subs.size === 0 && topics.get(topic) === subs) topics.delete(topic);
    });
    ws.on('error', () => ws.terminate());
}

// Sends one message to every open subscriber of topic; returns how many got it.
function publish(topic, body) {
    const subs = topics.get(topic);
    if (!subs) return 0;
    let sent = 0;
    for (const ws of subs) {
        if (ws.readyState !== WebSocket.OPEN) continue;
        ws.send(body, { binary: false });
        sent++;
    }
    return sent;
}

function reply(res, status, text) {
    res.writeHead(status, { 'Content-Type': 'text/plain' });
    res.end(text);
}

function onRequest(req, res) {
    if (req.method === 'GET' && req.url === '/healthz') return reply(res, 200, 'ok\n');
    const m = TOPIC_PATH.exec(req.url);
    if (!m || m[1] !== 'pub') return reply(res, 404, 'not found\n');
    if (req.method !== 'POST') return reply(res, 405, 'POST only\n');
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
        size += chunk.length;
        if (size > MAX_BODY) {
            reply(res, 413, 'too large\n');
            req.destroy();
            return;
        }
        chunks.push(chunk);
    });
    req.on('end', () => {
        if (size > MAX_BODY) return;
        const n = publish(m[2], Buffer.concat(chunks));
        reply(res, 202, `${n}\n`);
    });
}

const wss = new WebSocketServer({ noServer: true });
const server = http.createServer(onRequest);
server.keepAliveTimeout = 300_000; // the load tool's publisher keeps one connection
server.headersTimeout = 301_000;

server.on('upgrade', (req, socket, head) => {
    const m = TOPIC_PATH.exec(req.url);
    if (!m || m[1] !== 'sub') {
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
        return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => subscribe(m[2], ws));
});

server.listen(port, opts.host, () => {
    console.error(`relay: listening on ${opts.host}:${port}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        for (const client of wss.clients) client.terminate();
        server.close(() => process.exit(0));
        setTimeout(() => process.exit(0), 2000).unref();
    });
}
