// slowconsumer.test.mjs: a subscriber that stops reading is disconnected once its out-queue
// passes --max_queue_bytes / --max_queue_messages (DESIGN 2), while a subscriber that keeps
// up on the same topic receives every message in order; /metrics counts the disconnect.

import assert from 'node:assert/strict';

import {
    asBroadcast,
    metrics,
    metricValue,
    rawConnect,
    restBroadcast,
    sign,
    test,
    uniq,
    useGateway,
    waitFor,
    wsUrlFor,
} from './lib.mjs';

const gw = useGateway({ args: { max_queue_bytes: 65536, max_queue_messages: 64 } });
const key = sign({ role: 'authenticated' });

test('I1 a paused reader is disconnected; a live reader gets all 8000 messages (DESIGN 2)', async () => {
    const name = uniq('firehose');
    const topic = `realtime:${name}`;
    const slow = await rawConnect(wsUrlFor(gw, key));
    const normal = await rawConnect(wsUrlFor(gw, key));
    assert.equal((await slow.join(topic)).reply[4].status, 'ok');
    assert.equal((await normal.join(topic)).reply[4].status, 'ok');
    const before = metricValue(await metrics(gw), 'tidings_slow_consumer_disconnects_total') ?? 0;
    slow.ws._socket.pause();

    // 8 MB: more than the kernel buffers of one loopback socket can absorb (tcp_wmem 4 MB).
    const N = 8000;
    const BATCH = 20;
    const pad = 'x'.repeat(1000);
    for (let i = 0; i < N; i += BATCH) {
        const msgs = [];
        for (let j = i; j < i + BATCH; j++) msgs.push({ topic: name, event: 'tick', payload: { i: j, pad }, private: false });
        const r = await restBroadcast(gw, msgs, { apikey: key });
        assert.equal(r.status, 202, `batch at ${i}: ${r.status} ${r.body}`);
    }
    const received = () => normal.frames.filter((f) => asBroadcast(f, topic)?.event === 'tick');
    await waitFor(() => received().length >= N, 20_000, `${N} messages at the live reader`);
    const order = received().map((f) => asBroadcast(f, topic).payload.i);
    assert.equal(order.length, N);
    assert.ok(order.every((v, k) => v === k), 'messages out of order or duplicated at the live reader');
    assert.ok(!normal.isClosed(), 'the live reader was disconnected');

    await waitFor(async () => (metricValue(await metrics(gw), 'tidings_slow_consumer_disconnects_total') ?? 0) >= before + 1, 10_000, 'slow consumer disconnect counted');
    slow.ws._socket.resume();
    const closed = await Promise.race([slow.closed, new Promise((r) => setTimeout(() => r(null), 5000))]);
    assert.ok(closed, 'the paused reader was not disconnected');
    const slowGot = slow.frames.filter((f) => asBroadcast(f, topic)).length;
    assert.ok(slowGot < N, `the paused reader got all ${slowGot} messages`);
    // The live reader is still served afterwards.
    const r = await restBroadcast(gw, [{ topic: name, event: 'after', payload: {}, private: false }], { apikey: key });
    assert.equal(r.status, 202);
    await normal.next((f) => asBroadcast(f, topic)?.event === 'after');
    await normal.heartbeat();
});
