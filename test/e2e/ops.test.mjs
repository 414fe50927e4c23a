// ops.test.mjs: the operations endpoints (DESIGN 6): /healthz, /readyz, and /metrics in the
// Prometheus text format, with every documented metric present and moving with activity.

import assert from 'node:assert/strict';

import {
    asBroadcast,
    httpRequest,
    metrics,
    metricValue,
    rawConnect,
    sign,
    test,
    uniq,
    useGateway,
    waitFor,
    wsUrlFor,
} from './lib.mjs';

const gw = useGateway({ args: { max_events_per_second: 5 } });
const key = sign({ role: 'authenticated' });

const NAMES = [
    'tidings_connections',
    'tidings_connections_total',
    'tidings_channels',
    'tidings_joins_total',
    'tidings_join_errors_total',
    'tidings_messages_in_total',
    'tidings_messages_out_total',
    'tidings_bytes_out_total',
    'tidings_queue_drops_total',
    'tidings_slow_consumer_disconnects_total',
    'tidings_auth_failures_total',
    'tidings_protocol_errors_total',
    'tidings_rate_limited_total',
    'tidings_broadcast_fanout_seconds_bucket',
    'tidings_broadcast_fanout_seconds_sum',
    'tidings_broadcast_fanout_seconds_count',
];
const v = (m, n) => metricValue(m, n);

test('J1 GET /healthz and /readyz answer 200 (DESIGN 6)', async () => {
    const h = await httpRequest('GET', `${gw.url}/healthz`);
    assert.equal(h.status, 200);
    const r = await httpRequest('GET', `${gw.url}/readyz`);
    assert.equal(r.status, 200);
    assert.equal(r.json().status, 'ready');
});

test('J2 GET /metrics: Prometheus text with every metric (DESIGN 6)', async () => {
    const m = await metrics(gw);
    assert.match(m.headers['content-type'], /^text\/plain/);
    for (const name of NAMES) assert.notEqual(v(m, name), undefined, `metric ${name} missing`);
    for (const [k, val] of Object.entries(m)) assert.ok(Number.isFinite(val), `${k} = ${val}`);
    assert.match(m.text, /^# TYPE tidings_broadcast_fanout_seconds histogram$/m);
    assert.match(m.text, /^# TYPE tidings_connections gauge$/m);
    assert.match(m.text, /^# TYPE tidings_connections_total counter$/m);
    // Histogram buckets: increasing le, cumulative counts, +Inf == _count.
    const buckets = Object.entries(m)
        .filter(([k]) => k.startsWith('tidings_broadcast_fanout_seconds_bucket{'))
        .map(([k, val]) => [k.match(/le="([^"]+)"/)[1], val]);
    assert.ok(buckets.length >= 2, 'histogram buckets');
    assert.equal(buckets[buckets.length - 1][0], '+Inf');
    for (let i = 1; i < buckets.length; i++) {
        if (buckets[i][0] !== '+Inf') assert.ok(Number(buckets[i][0]) > Number(buckets[i - 1][0]), 'le not increasing');
        assert.ok(buckets[i][1] >= buckets[i - 1][1], 'buckets not cumulative');
    }
    assert.equal(buckets[buckets.length - 1][1], v(m, 'tidings_broadcast_fanout_seconds_count'));
});

test('J3 metrics follow connections, joins, messages and errors (DESIGN 6)', async () => {
    const m0 = await metrics(gw);
    const a = await rawConnect(wsUrlFor(gw, key));
    const b = await rawConnect(wsUrlFor(gw, key));
    let m = await waitFor(async () => {
        const x = await metrics(gw);
        return v(x, 'tidings_connections') === v(m0, 'tidings_connections') + 2 ? x : null;
    }, 3000, 'tidings_connections +2');
    assert.ok(v(m, 'tidings_connections_total') >= v(m0, 'tidings_connections_total') + 2);

    const topic = `realtime:${uniq('j3')}`;
    const { jr } = await a.join(topic);
    await b.join(topic);
    await a.join('realtime:'); // a join error
    m = await metrics(gw);
    assert.equal(v(m, 'tidings_channels'), v(m0, 'tidings_channels') + 2);
    assert.equal(v(m, 'tidings_joins_total'), v(m0, 'tidings_joins_total') + 2);
    assert.equal(v(m, 'tidings_join_errors_total'), v(m0, 'tidings_join_errors_total') + 1);

    a.broadcast(jr, topic, 'e', { x: 1 });
    await b.next((f) => asBroadcast(f, topic));
    m = await waitFor(async () => {
        const x = await metrics(gw);
        return v(x, 'tidings_messages_out_total') >= v(m0, 'tidings_messages_out_total') + 1 ? x : null;
    }, 3000, 'messages_out +1');
    assert.ok(v(m, 'tidings_messages_in_total') >= v(m0, 'tidings_messages_in_total') + 1);
    assert.ok(v(m, 'tidings_bytes_out_total') > v(m0, 'tidings_bytes_out_total'));
    assert.ok(v(m, 'tidings_broadcast_fanout_seconds_count') >= v(m0, 'tidings_broadcast_fanout_seconds_count') + 1);

    await rawConnect(wsUrlFor(gw, 'garbage')).catch(() => {});
    a.send('not json');
    await a.heartbeat();
    m = await metrics(gw);
    assert.equal(v(m, 'tidings_auth_failures_total'), v(m0, 'tidings_auth_failures_total') + 1);
    assert.ok(v(m, 'tidings_protocol_errors_total') >= v(m0, 'tidings_protocol_errors_total') + 1);

    for (let i = 0; i < 30; i++) a.broadcast(jr, topic, 'flood', { i });
    await a.next((f) => f[3] === 'phx_close', 3000, 'phx_close after the flood');
    m = await metrics(gw);
    assert.ok(v(m, 'tidings_rate_limited_total') >= v(m0, 'tidings_rate_limited_total') + 1);

    a.close();
    b.close();
    await waitFor(async () => {
        const x = await metrics(gw);
        return v(x, 'tidings_connections') === v(m0, 'tidings_connections') && v(x, 'tidings_channels') === v(m0, 'tidings_channels');
    }, 3000, 'connections and channels back to the start');
});

test('J4 ops endpoints need no key and accept query strings (DESIGN 6)', async () => {
    const r = await httpRequest('GET', `${gw.url}/metrics?x=1`);
    assert.equal(r.status, 200);
    const h = await httpRequest('GET', `${gw.url}/healthz?probe=1`);
    assert.equal(h.status, 200);
});
