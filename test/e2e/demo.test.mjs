// demo.test.mjs: the /demo/ static files (DESIGN 6). The test builds a demo directory from
// demo/www/* plus the supabase-js UMD bundle, serves it with --demo_dir, checks the pages
// and that path traversal never leaks a file outside the directory. Without --demo_dir,
// /demo/ is not served.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ROOT, httpRequest, test, useGateway } from './lib.mjs';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'tidings-e2e-demo-'));
const demoDir = path.join(base, 'www');
fs.mkdirSync(demoDir);
const www = path.join(ROOT, 'demo', 'www');
for (const f of fs.readdirSync(www)) fs.copyFileSync(path.join(www, f), path.join(demoDir, f));
const umd = path.join(ROOT, 'node_modules', '@supabase', 'supabase-js', 'dist', 'umd', 'supabase.js');
fs.copyFileSync(umd, path.join(demoDir, 'supabase.js'));
// A file next to the demo directory that must never be served.
fs.writeFileSync(path.join(base, 'secret.txt'), 'TOP-SECRET-SIBLING');

const gw = useGateway({ args: { demo_dir: demoDir } });
const gwNoDemo = useGateway();

const get = (g, rawPath) => httpRequest('GET', `${g.url}/`, { rawPath });

test('K1 GET /demo/ serves index.html (DESIGN 6)', async () => {
    const index = fs.readFileSync(path.join(demoDir, 'index.html'), 'utf8');
    for (const p of ['/demo/', '/demo/index.html']) {
        const r = await get(gw, p);
        assert.equal(r.status, 200, p);
        assert.match(r.headers['content-type'], /^text\/html/, p);
        assert.equal(r.body, index, p);
    }
});

test('K2 GET /demo/supabase.js serves the UMD bundle; other assets too', async () => {
    const r = await get(gw, '/demo/supabase.js');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /javascript/);
    assert.ok(r.buf.equals(fs.readFileSync(umd)), 'bundle bytes differ');
    for (const f of fs.readdirSync(www)) {
        const a = await get(gw, `/demo/${f}`);
        assert.equal(a.status, 200, f);
        assert.ok(a.buf.equals(fs.readFileSync(path.join(www, f))), `${f} bytes differ`);
    }
    assert.equal((await get(gw, '/demo/missing.js')).status, 404);
});

test('K3 path traversal under /demo/ leaks nothing (DESIGN 5)', async () => {
    const attempts = [
        '/demo/../../etc/passwd',
        '/demo/../../../../../../etc/passwd',
        '/demo/%2e%2e/%2e%2e/etc/passwd',
        '/demo/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
        '/demo/..%2f..%2f..%2fetc%2fpasswd',
        '/demo/%252e%252e/%252e%252e/etc/passwd',
        '/demo/..\\..\\etc\\passwd',
        '/demo/../secret.txt',
        '/demo/%2e%2e/secret.txt',
        '/demo/.%2e/secret.txt',
        '/demo//etc/passwd',
        '/demo/%2fetc%2fpasswd',
        '/demo/index.html%00.js',
        '/demo/./../secret.txt',
        '/demo/....//....//etc/passwd',
    ];
    for (const p of attempts) {
        const r = await get(gw, p).catch((e) => ({ status: 'reset', body: String(e) }));
        assert.ok(!/root:.*:0:0:/.test(r.body), `${p} leaked /etc/passwd`);
        assert.ok(!r.body.includes('TOP-SECRET-SIBLING'), `${p} leaked a sibling file`);
        assert.ok(r.status === 'reset' || [400, 403, 404].includes(r.status) || (r.status === 200 && r.body === fs.readFileSync(path.join(demoDir, 'index.html'), 'utf8')),
            `${p}: HTTP ${r.status}`);
    }
    // Still serving afterwards.
    assert.equal((await get(gw, '/demo/')).status, 200);
});

test('K4 without --demo_dir, /demo/ is not served', async () => {
    assert.equal((await get(gwNoDemo, '/demo/')).status, 404);
    assert.equal((await get(gwNoDemo, '/demo/supabase.js')).status, 404);
});
