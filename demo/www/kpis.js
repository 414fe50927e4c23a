// kpis.js: the live KPI dashboard (kpis.html). Reads #admin=<JWT>&partner=<JWT>&business=<id>
// from the URL fragment (which never reaches a server log), creates one supabase-js client
// per token (window.supabase from ./supabase.js) against the gateway this page came from,
// and subscribes each to postgres_changes on public.daily_kpis (event '*'). Every change
// upserts or removes a row of that client's table; changed cells flash. Only the rows of
// the 7 latest days are kept. The admin client also listens to two broadcast channels fed
// from SQL (a forwarded NOTIFY and tidings.send). All text goes in with textContent.
// window.kpisDemo exposes the panels' state for automated checks.
'use strict';

(function () {
    const DAYS = 7;          // days kept on screen
    const FLASH_MS = 900;    // how long a changed cell stays highlighted
    const MAX_EVENTS = 15;   // entries kept in the "From SQL" list
    const params = new URLSearchParams(location.hash.slice(1));
    const business = params.get('business') || '?';

    const fmtInt = (v) => (v === null || v === undefined ? '' : Number(v).toLocaleString());
    const fmtPct = (v) => (v === null || v === undefined ? '' : `${Number(v).toFixed(2)} %`);
    const fmtTime = (v) => (v ? new Date(v).toLocaleTimeString() : '');
    const COLUMNS = [
        ['business_id', String],
        ['day', String],
        ['visits', fmtInt],
        ['leads', fmtInt],
        ['conversion', fmtPct],
        ['updated_at', fmtTime],
    ];

    function flash(el) {
        el.classList.remove('flash');
        void el.offsetWidth; // restart the animation
        el.classList.add('flash');
        clearTimeout(el.flashTimer);
        el.flashTimer = setTimeout(() => el.classList.remove('flash'), FLASH_MS);
    }

    // One dashboard: a status line, the last system message, counters and a table.
    function makePanel(id) {
        const root = document.getElementById(id);
        const $ = (sel) => root.querySelector(sel);
        const panel = {
            rows: new Map(), // "business_id|day" -> {tr, cells: {col: td}, values}
            updates: 0,
            status: 'idle',
            system: [],
        };
        const tbody = $('tbody');

        panel.setStatus = (text, state) => {
            panel.status = text;
            $('.status').textContent = text;
            $('.status').dataset.state = state;
        };
        panel.setSystem = (m) => {
            panel.system.push(m);
            const el = $('.system');
            el.textContent = `system: ${m.extension} ${m.status}: ${m.message}`;
            el.dataset.state = m.status === 'ok' ? 'ok' : 'error';
        };
        const refreshCounts = () => {
            $('.count').textContent = String(panel.updates);
            $('.rows').textContent = String(panel.rows.size);
        };

        // Sorted by day (newest first), then business.
        const before = (a, b) => (a.day !== b.day ? a.day > b.day : Number(a.business_id) < Number(b.business_id));

        function insertRow(row) {
            const tr = document.createElement('tr');
            const cells = {};
            for (const [col] of COLUMNS) {
                const td = document.createElement('td');
                td.className = col;
                tr.append(td);
                cells[col] = td;
            }
            const entry = { tr, cells, values: {} };
            let next = null;
            for (const other of panel.rows.values()) {
                if (before(row, other.values) && (!next || before(other.values, next.values))) next = other;
            }
            tbody.insertBefore(tr, next ? next.tr : null);
            return entry;
        }

        function trimDays() {
            const days = [...new Set([...panel.rows.values()].map((e) => e.values.day))].sort().reverse();
            const keep = new Set(days.slice(0, DAYS));
            for (const [key, e] of panel.rows) {
                if (!keep.has(e.values.day)) {
                    e.tr.remove();
                    panel.rows.delete(key);
                }
            }
        }

        panel.apply = (p) => {
            panel.updates++;
            if (p.eventType === 'DELETE') {
                const key = `${p.old.business_id}|${p.old.day}`;
                const e = panel.rows.get(key);
                if (e) {
                    e.tr.remove();
                    panel.rows.delete(key);
                }
            } else {
                const row = p.new;
                const key = `${row.business_id}|${row.day}`;
                let e = panel.rows.get(key);
                const fresh = !e;
                if (fresh) {
                    e = insertRow(row);
                    panel.rows.set(key, e);
                }
                for (const [col, fmt] of COLUMNS) {
                    if (!fresh && e.values[col] === row[col]) continue;
                    e.cells[col].textContent = fmt(row[col]);
                    if (!fresh) flash(e.cells[col]);
                }
                if (fresh) flash(e.tr);
                e.values = { ...row };
                trimDays();
            }
            refreshCounts();
        };
        return panel;
    }

    function makeClient(token, storageKey) {
        return window.supabase.createClient(location.origin, token, {
            auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false, storageKey },
        });
    }

    function connect(panel, token, name) {
        if (!token) {
            panel.setStatus('no token in the URL', 'error');
            return null;
        }
        const client = makeClient(token, `tidings-kpis-${name}`);
        panel.setStatus('connecting…', 'busy');
        client
            .channel(`kpis-${name}`)
            .on('postgres_changes', { event: '*', schema: 'public', table: 'daily_kpis' }, (p) => panel.apply(p))
            .on('system', {}, (m) => panel.setSystem(m))
            .subscribe((status, err) => {
                const state = status === 'SUBSCRIBED' ? 'ok' : status === 'CLOSED' ? 'idle' : 'error';
                panel.setStatus(err ? `${status}: ${err.message}` : status, state);
            });
        return client;
    }

    function addEvent(kind, text) {
        const list = document.getElementById('events');
        const li = document.createElement('li');
        const t = document.createElement('span');
        t.className = 'time';
        t.textContent = new Date().toLocaleTimeString();
        const k = document.createElement('code');
        k.textContent = kind;
        li.append(t, k, document.createTextNode(` ${text}`));
        list.prepend(li);
        flash(li);
        while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
    }

    // Broadcasts from SQL, on the admin client.
    function listenSql(client) {
        client
            .channel('cache_invalidation')
            .on('broadcast', { event: 'cache_invalidation' }, (m) => addEvent('cache_invalidation', JSON.stringify(m.payload)))
            .subscribe();
        client
            .channel('kpis')
            .on('broadcast', { event: 'kpis_refreshed' }, (m) => addEvent('kpis_refreshed', JSON.stringify(m.payload)))
            .subscribe();
    }

    const admin = makePanel('admin');
    const partner = makePanel('partner');
    document.querySelector('#partner .business').textContent = business;
    window.kpisDemo = { admin, partner };

    if (!window.supabase || !window.supabase.createClient) {
        admin.setStatus('supabase.js did not load', 'error');
        partner.setStatus('supabase.js did not load', 'error');
        return;
    }
    if (!params.get('admin') || !params.get('partner')) document.getElementById('help').hidden = false;
    const adminClient = connect(admin, params.get('admin'), 'admin');
    connect(partner, params.get('partner'), 'partner');
    if (adminClient) listenSql(adminClient);
})();
