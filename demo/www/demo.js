// demo.js: the tidings demo chat. Connects supabase-js (window.supabase from ./supabase.js)
// to the gateway this page came from, joins channel 'demo-room' with presence keyed by a
// random name, lists who is online (presence sync), and broadcasts chat messages with
// self:true so your own messages show up too. All text is inserted with textContent.
'use strict';

(function () {
    const ROOM = 'demo-room';
    const $ = (id) => document.getElementById(id);
    const ui = {
        key: $('key'), name: $('name'), connect: $('connect'), status: $('status'),
        people: $('people'), count: $('count'), messages: $('messages'),
        send: $('send'), text: $('text'), sendButton: document.querySelector('#send button'),
    };
    let client = null;   // the supabase client of the current connection
    let channel = null;  // the joined 'demo-room' channel

    const adjectives = ['brisk', 'calm', 'eager', 'lucky', 'quiet', 'sunny', 'swift', 'witty'];
    const animals = ['otter', 'heron', 'lynx', 'panda', 'koala', 'falcon', 'badger', 'gecko'];
    const pick = (list) => list[Math.floor(Math.random() * list.length)];
    ui.name.value = `${pick(adjectives)}-${pick(animals)}-${Math.floor(Math.random() * 1000)}`;

    // The key can come from the URL fragment (#key=...), which never reaches a server log.
    const fromHash = new URLSearchParams(location.hash.slice(1)).get('key');
    if (fromHash) ui.key.value = fromHash;

    function setStatus(text, state) {
        ui.status.textContent = text;
        ui.status.dataset.state = state;
    }

    function addMessage(who, text, at, cls) {
        const li = document.createElement('li');
        if (cls) li.className = cls;
        if (who) {
            const w = document.createElement('span');
            w.className = 'who';
            w.textContent = who;
            li.append(w);
        }
        li.append(document.createTextNode(text));
        const t = document.createElement('span');
        t.className = 'time';
        t.textContent = new Date(at || Date.now()).toLocaleTimeString();
        li.append(t);
        ui.messages.append(li);
        ui.messages.scrollTop = ui.messages.scrollHeight;
    }

    function renderPeople() {
        const state = channel ? channel.presenceState() : {};
        const names = Object.keys(state).sort();
        ui.people.replaceChildren(...names.map((n) => {
            const li = document.createElement('li');
            li.textContent = n;
            if (n === ui.name.value) li.className = 'me';
            return li;
        }));
        ui.count.textContent = String(names.length);
    }

    function enableSend(on) {
        ui.text.disabled = !on;
        ui.sendButton.disabled = !on;
        if (on) ui.text.focus();
    }

    async function disconnect() {
        if (client) {
            await client.removeAllChannels();
            client.realtime.disconnect();
        }
        client = null;
        channel = null;
        enableSend(false);
        renderPeople();
    }

    async function connect(key, name) {
        await disconnect();
        client = window.supabase.createClient(location.origin, key, {
            auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
        });
        channel = client.channel(ROOM, {
            config: { broadcast: { self: true }, presence: { key: name } },
        });
        channel
            .on('presence', { event: 'sync' }, renderPeople)
            .on('presence', { event: 'join' }, ({ key: who }) => {
                if (who !== name) addMessage('', `${who} joined`, Date.now(), 'system');
            })
            .on('presence', { event: 'leave' }, ({ key: who }) => addMessage('', `${who} left`, Date.now(), 'system'))
            .on('broadcast', { event: 'chat' }, ({ payload }) => addMessage(String(payload.name), String(payload.text), payload.at))
            .on('system', {}, (msg) => {
                if (msg && msg.status === 'error') addMessage('', `server: ${msg.message}`, Date.now(), 'system');
            })
            .subscribe(async (status, err) => {
                setStatus(err ? `${status}: ${err.message}` : status, status);
                enableSend(status === 'SUBSCRIBED');
                if (status === 'SUBSCRIBED') await channel.track({ name, online_at: new Date().toISOString() });
            });
        setStatus('connecting…', 'idle');
    }

    ui.connect.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const key = ui.key.value.trim();
        const name = ui.name.value.trim() || `guest-${Math.floor(Math.random() * 1000)}`;
        ui.name.value = name;
        if (key) connect(key, name).catch((e) => setStatus(`error: ${e.message}`, 'CHANNEL_ERROR'));
    });

    ui.send.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const text = ui.text.value.trim();
        if (!text || !channel) return;
        ui.text.value = '';
        const res = await channel.send({
            type: 'broadcast',
            event: 'chat',
            payload: { name: ui.name.value, text, at: Date.now() },
        });
        if (res !== 'ok') addMessage('', `not sent (${res})`, Date.now(), 'system');
    });

    if (ui.key.value) ui.connect.requestSubmit();
})();
