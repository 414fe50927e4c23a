// report.mjs: turns the results of one loadtest/compare.sh run into its Markdown section
// (the comparison table of tidings and its peers) and writes it.
//
// Input, all from compare.sh through the environment:
//   CMP_DIR      its temp dir: runs.tsv (scenario, server, key, exit status per run),
//                results/<key>.json (tidings-load --json), results/floor.json
//                (tidings-floor --json) and floor.meta, commands.txt (every command run);
//   CMP_TARGET   the file to write; CMP_REPLACE=1: splice the section between the
//                markers <!-- compare:begin --> and <!-- compare:end --> of that file
//                (appended at its end when they are missing); 0: write the file whole;
//   CMP_NPROC, CMP_CPU, CMP_KERNEL, CMP_STARTED, CMP_ELAPSED, CMP_LOADAVG, CMP_VERSIONS,
//   CMP_SKIPPED, CMP_QUICK, CMP_PINNED, CMP_ARGS: the machine and the run, printed as is.
// Ratios are tidings / that server: below 1 means tidings needs less (CPU, memory), above 1
// for deliveries/s means tidings held more.
//
// A server "keeps up" with a step of the peak sweep (keepsUp() below, also `node report.mjs
// keeps-up FILE RATE`, exit 0 = yes, which compare.sh uses to stop raising the rate) when
// the run is complete, nothing was dropped and the publisher reached at least 95 % of the
// offered rate (nchan and the relay answer a POST only after their fan-out, so a saturated
// server slows the publisher down instead of queueing). It "holds" the step when, in
// addition, p99 < 50 ms.
//
// `node report.mjs disturbed FILE` exits 0 when the run was disturbed (see busy()).
//
// Usage: node report.mjs (only compare.sh calls it) | node report.mjs keeps-up FILE RATE
//        | node report.mjs disturbed FILE

import fs from 'node:fs';
import path from 'node:path';

const BEGIN = '<!-- compare:begin -->';
const END = '<!-- compare:end -->';
const env = process.env;
const dir = env.CMP_DIR;
const SERVERS = ['tidings', 'nchan', 'relay'];
const NAMES = {
    tidings: 'tidings',
    nchan: 'nchan (nginx)',
    relay: 'Node ws relay',
};

/* ------------------------------------------------------------------ reading */

function readJson(file) {
    try {
        return JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
        return null;
    }
}

// runs.tsv -> [{scenario, server, key, rc, res}] where res is the JSON's results or null
function readRuns() {
    const text = fs.readFileSync(path.join(dir, 'runs.tsv'), 'utf8');
    return text
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => {
            const [scenario, server, key, rc] = l.split('\t');
            const j = readJson(path.join(dir, 'results', `${key}.json`));
            return { scenario, server, key, rc: Number(rc), res: j ? j.results : null, json: j };
        });
}

/* ------------------------------------------------------------------ formatting */

function num(v, digits = 0) {
    if (v === null || v === undefined || Number.isNaN(v)) return '-';
    return Number(v).toLocaleString('en-US', {
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
    });
}

function ratio(a, b) {
    if (a == null || b == null || !b) return '-';
    return `${(a / b).toFixed(2)}×`;
}

const p = (res, key) => (res && res.latency_ms ? res.latency_ms[key] : null);

// messages/s the publisher achieved: published over its window (tidings-load `window_s`)
function pubRate(res) {
    if (!res || res.published == null || !res.window_s) return null;
    return res.published / res.window_s;
}

// "cpu0/cpu1" busy % of the whole machine during the run; † when a CPU was busier than
// what runs on it (server on cpu0, load tool on cpu1) by more than 25 points: other jobs
// shared the machine and the run was disturbed.
function disturbed(res) {
    const b = res && res.cpu_busy_pct;
    const own = [res && res.gateway_cpu_pct, res && res.load_cpu_pct];
    return Array.isArray(b) && b.some((x, i) => own[i] != null && x - own[i] > 25);
}

function busy(res) {
    const b = res && res.cpu_busy_pct;
    if (!Array.isArray(b) || !b.length) return '-';
    return b.map((x) => num(x)).join('/') + (disturbed(res) ? ' †' : '');
}

// The server kept up with a step of the peak sweep: complete, nothing lost, and at least
// 95 % of the offered rate published (the peers answer a POST only after their fan-out).
function keepsUp(res, rate) {
    if (!res || res.complete !== true || res.drops !== 0) return false;
    const pr = pubRate(res);
    return pr == null || pr >= 0.95 * rate;
}

// ... and held it: p99 under 50 ms as well.
function held(res, rate) {
    const p99 = p(res, 'p99');
    return keepsUp(res, rate) && p99 != null && p99 < 50;
}

function table(head, rows) {
    const line = (cells) => `| ${cells.join(' | ')} |`;
    return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

function status(run) {
    if (!run.res) return `failed (exit ${run.rc})`;
    return run.res.complete ? 'yes' : `no (exit ${run.rc})`;
}

/* ------------------------------------------------------------------ sections */

function scenarioA(runs) {
    const a = Object.fromEntries(
        runs.filter((r) => r.key.endsWith('-a')).map((r) => [r.server, r]),
    );
    const floor = readJson(path.join(dir, 'results', 'floor.json'));
    const tid = a.tidings && a.tidings.res ? a.tidings.res.gateway_us_per_delivery : null;
    const rows = [];
    if (floor) {
        rows.push([
            `floor (tidings-floor, ${num(floor.sockets)} sockets, 1 frame per write)`,
            num(floor.frames_per_s / floor.sockets, 1),
            num(floor.frames_per_s),
            num((floor.writer_cpu_s * 100) / floor.elapsed_s, 1),
            num(floor.writer_us_per_frame, 2),
            '-',
            '-',
            '-',
            `${num(floor.eagain + floor.short_writes)} refused/short writes`,
            `reader ${num((floor.reader_cpu_s * 100) / floor.elapsed_s, 1)}`,
            '-',
            '-',
            ratio(tid, floor.writer_us_per_frame),
        ]);
    }
    for (const s of SERVERS) {
        const run = a[s];
        if (!run) continue;
        const r = run.res || {};
        rows.push([
            NAMES[s],
            num(pubRate(r), 1),
            num(r.deliveries_per_s),
            num(r.gateway_cpu_pct, 1),
            num(r.gateway_us_per_delivery, 2),
            num(p(r, 'p50'), 1),
            num(p(r, 'p99'), 1),
            num(p(r, 'max'), 1),
            num(r.drops),
            num(r.load_cpu_pct, 1),
            busy(r),
            status(run),
            ratio(tid, r.gateway_us_per_delivery),
        ]);
    }
    return table(
        [
            'server',
            'msg/s published',
            'deliveries/s',
            'server CPU % of a core',
            'server µs CPU per delivery',
            'p50 ms',
            'p99 ms',
            'max ms',
            'drops',
            'load CPU %',
            'machine busy % cpu0/cpu1',
            'complete',
            'tidings/this (µs per delivery)',
        ],
        rows,
    );
}

function verdict(run, ok, kept) {
    if (ok) return 'yes';
    if (kept) return 'kept up, p99 >= 50';
    const pr = pubRate(run.res);
    if (pr != null && pr < 0.95 * run.rate) return 'no: rate';
    return `no: ${status(run)}`;
}

// One server's steps of the sweep, ascending: rows of the step table and its best steps.
function sweep(s, runs, steps) {
    const mine = runs
        .filter((r) => r.server === s && /-b\d+$/.test(r.key))
        .map((r) => ({ ...r, rate: Number(r.key.replace(/.*-b/, '')) }))
        .sort((x, y) => x.rate - y.rate);
    if (!mine.length) return null;
    const best = { held: null, kept: null, stop: null };
    for (const run of mine) {
        const r = run.res || {};
        const kept = keepsUp(run.res, run.rate);
        const ok = held(run.res, run.rate);
        if (ok) best.held = run;
        if (kept) best.kept = run;
        else best.stop = best.stop || run;
        const saturated = r.load_cpu_pct != null && r.load_cpu_pct >= 90;
        steps.push([
            NAMES[s],
            num(run.rate),
            num(pubRate(r), 1),
            num(r.deliveries_per_s),
            num(p(r, 'p50'), 1),
            num(p(r, 'p99'), 1),
            num(r.drops),
            num(r.gateway_cpu_pct, 1),
            num(r.load_cpu_pct, 1) + (saturated ? ' (load tool saturated)' : ''),
            busy(r),
            verdict(run, ok, kept),
        ]);
    }
    return best;
}

function scenarioB(runs) {
    const steps = [];
    const best = {};
    for (const s of SERVERS) {
        const b = sweep(s, runs, steps);
        if (b) best[s] = b;
    }
    const dps = (run) => (run && run.res ? run.res.deliveries_per_s : null);
    const tidHeld = best.tidings ? dps(best.tidings.held) : null;
    const tidKept = best.tidings ? dps(best.tidings.kept) : null;
    const summary = Object.entries(best).map(([s, b]) => {
        let stop = 'kept up with every rate (raise --rates)';
        if (b.stop) {
            const r = b.stop.res || {};
            stop =
                `${num(b.stop.rate)} msg/s: published ${num(pubRate(r), 1)}/s, ` +
                `p99 ${num(p(r, 'p99'), 1)} ms, drops ${num(r.drops)}`;
        }
        const keptP99 = b.kept ? num(p(b.kept.res, 'p99'), 1) : '-';
        return [
            NAMES[s],
            b.held ? `${num(dps(b.held))} (${num(b.held.rate)} msg/s)` : 'none',
            ratio(tidHeld, dps(b.held)),
            b.kept ? `${num(dps(b.kept))} (${num(b.kept.rate)} msg/s, p99 ${keptP99} ms)` : 'none',
            ratio(tidKept, dps(b.kept)),
            stop,
        ];
    });
    const sumHead = [
        'server',
        'deliveries/s held with p99 < 50 ms',
        'tidings/this',
        'deliveries/s kept up with, any p99',
        'tidings/this',
        'sweep stopped at',
    ];
    const head = [
        'server',
        'rate msg/s',
        'published msg/s',
        'deliveries/s',
        'p50 ms',
        'p99 ms',
        'drops',
        'server CPU %',
        'load CPU %',
        'machine busy % cpu0/cpu1',
        'held',
    ];
    return `${table(sumHead, summary)}\n\nEvery step:\n\n${table(head, steps)}`;
}

function scenarioC(runs) {
    const c = runs.filter((r) => r.key.endsWith('-c'));
    const tidRun = c.find((r) => r.server === 'tidings');
    const tid = tidRun && tidRun.res ? tidRun.res.rss_bytes_per_conn : null;
    const rows = c.map((run) => {
        const r = run.res || {};
        const n = r.connected;
        const pages =
            r.sockstat_tcp_mem_pages_held != null && r.sockstat_tcp_mem_pages_baseline != null
                ? r.sockstat_tcp_mem_pages_held - r.sockstat_tcp_mem_pages_baseline
                : null;
        return [
            NAMES[run.server],
            `${num(n)} of ${num(r.sockets)}`,
            num(r.gateway_rss_kb_baseline != null ? r.gateway_rss_kb_baseline / 1024 : null, 1),
            num(r.gateway_rss_kb_held != null ? r.gateway_rss_kb_held / 1024 : null, 1),
            num(r.rss_bytes_per_conn),
            pages != null && n ? num(Math.max(0, (pages * 4096) / n)) : '-', // < 0: noise
            status(run),
            ratio(tid, r.rss_bytes_per_conn),
        ];
    });
    return table(
        [
            'server',
            'sockets held',
            'RSS before, MB',
            'RSS held, MB',
            'RSS bytes per connection',
            'kernel TCP memory per connection, bytes (both ends)',
            'complete',
            'tidings/this (RSS per connection)',
        ],
        rows,
    );
}

/* ------------------------------------------------------------------ the section */

function section(runs) {
    const quick = env.CMP_QUICK === '1';
    // Each server start repeats for every scenario: show every distinct command once.
    const commands = [
        ...new Set(fs.readFileSync(path.join(dir, 'commands.txt'), 'utf8').trimEnd().split('\n')),
    ].join('\n');
    const floorMeta = fs.existsSync(path.join(dir, 'results', 'floor.meta'))
        ? fs.readFileSync(path.join(dir, 'results', 'floor.meta'), 'utf8')
        : '';
    const args = Object.fromEntries(env.CMP_ARGS.split(/ (?=\w+=)/).map((kv) => kv.split('=')));
    const pinning =
        env.CMP_PINNED === 'yes'
            ? 'each server on cpu 0 (`taskset -c 0`), tidings-load on cpu 1 (`taskset -c 1`); ' +
              "tidings-floor's writer on cpu 0" +
              (floorMeta.includes('yes') ? ', its reader child moved to cpu 1' : ' (reader too)')
            : 'none (fewer than 2 CPUs)';
    const out = [];
    out.push(BEGIN);
    out.push('## tidings next to its peers: nchan and a Node ws relay (loadtest/compare.sh)');
    out.push('');
    out.push(
        'Written by `loadtest/compare.sh`; running it again replaces this section. ' +
            'The same load runs against every server, one after the other, in one run. ' +
            'Each server is started fresh for each scenario. ' +
            'Ratios are tidings/that server: for CPU and memory below 1 is better for tidings, ' +
            'for deliveries/s above 1 is.',
    );
    if (quick) {
        out.push('', '**Quick mode (smoke test): small N, seconds-long runs; not figures.**');
    }
    out.push('');
    out.push(
        table(
            ['', ''],
            [
                ['date', `${env.CMP_STARTED} (${env.CMP_ELAPSED} s of runs)`],
                [
                    'machine',
                    `\`nproc\` = ${env.CMP_NPROC}, ${env.CMP_CPU}, kernel ${env.CMP_KERNEL}`,
                ],
                ['load average before the run', env.CMP_LOADAVG],
                ['software', env.CMP_VERSIONS],
                ['pinning', pinning],
                [
                    'servers',
                    'tidings `--workers 1`; nchan with 1 nginx worker; the relay: one node process',
                ],
            ],
        ),
    );
    if (env.CMP_SKIPPED && env.CMP_SKIPPED.trim()) {
        out.push('', `Skipped: ${env.CMP_SKIPPED.trim().split('\n').join('; ')}.`);
    }
    out.push('');
    out.push(
        `### (a) Fan-out efficiency: ${num(Number(args.clients))} subscribers of one topic, ` +
            `20 msg/s of 200 B, ${args.seconds} s`,
    );
    out.push('');
    out.push(
        'Server CPU is the server process and its children (`--gateway-pid`), from /proc, ' +
            'over the ' +
            'publishing window, divided by the deliveries. The floor is the bare loopback ' +
            'write of pre-built 204-byte frames to the same number of sockets at the same rate, ' +
            'measured in this run (its "server CPU" is the writer\'s). ' +
            'One publisher posts one message per request and waits for the answer; nchan and ' +
            'the relay answer after their fan-out, so when "msg/s published" stays below the ' +
            'offered rate the server could not keep up with it. "Machine busy" is the whole ' +
            'machine, per CPU: much more than the server and load CPU together means other ' +
            'jobs shared the machine.',
    );
    out.push('', scenarioA(runs), '');
    out.push(
        `### (b) Peak fan-out: ${num(Number(args.clients))} subscribers, rate raised until ` +
            'the server no longer keeps up',
    );
    out.push('');
    out.push(
        `Rates tried: ${args.rates} msg/s, ${args.peak_seconds} s each, ` +
            'one server start per server. The server keeps up with a step when nothing was ' +
            'lost, the run is complete and at least 95 % of the offered rate was published; ' +
            'the first step it does not keep up with ends the sweep. It holds the step when ' +
            'p99 is also under 50 ms. A step the server did not keep up with while the machine ' +
            'was disturbed (†) is run once more and only the second run is shown' +
            (env.CMP_RETRIED && env.CMP_RETRIED.trim()
                ? ` (here: ${env.CMP_RETRIED.trim().split('\n').join(', ')})`
                : ' (none here)') +
            '. When the load ' +
            'tool shows about 100 % of its core, it, not the server, may be the limit.',
    );
    out.push('', scenarioB(runs), '');
    out.push(`### (c) Idle memory: ${num(Number(args.idle))} sockets held`);
    out.push('');
    out.push(
        'RSS bytes per connection = (server RSS with every socket held - RSS before the first ' +
            'connect) / sockets. tidings sockets have joined one channel and heartbeat; peer ' +
            'sockets subscribe by their URL. Kernel TCP memory is the change of ' +
            '/proc/net/sockstat `TCP mem` (pages, client and server ends together).',
    );
    out.push('', scenarioC(runs), '');
    out.push('### Commands');
    out.push('');
    out.push('```sh');
    const self = `loadtest/compare.sh ${quick ? '--quick ' : ''}--build build`;
    out.push(`${self}    # ran these commands (each once here):`);
    out.push(commands);
    out.push('```');
    out.push(END);
    return out.join('\n') + '\n';
}

function write(text) {
    const target = env.CMP_TARGET;
    if (env.CMP_REPLACE !== '1') {
        fs.writeFileSync(target, text);
        return;
    }
    const doc = fs.readFileSync(target, 'utf8');
    const b = doc.indexOf(BEGIN);
    const e = doc.indexOf(END);
    let next;
    if (b >= 0 && e > b) {
        next = doc.slice(0, b) + text.trimEnd() + doc.slice(e + END.length);
    } else {
        next = `${doc.trimEnd()}\n\n${text}`;
    }
    fs.writeFileSync(target, next);
}

if (process.argv[2] === 'keeps-up' || process.argv[2] === 'disturbed') {
    const j = readJson(process.argv[3]);
    const r = j && j.results;
    const yes =
        process.argv[2] === 'disturbed' ? disturbed(r) : keepsUp(r, Number(process.argv[4]));
    process.exit(yes ? 0 : 1);
}
write(section(readRuns()));
