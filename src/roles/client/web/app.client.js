// The web UI's browser script: takes the per-run token from the URL fragment (then
// removes it from the address bar and keeps it in memory only), calls the local
// API with it, and long-polls /api/events for live messages and circuit changes.
// Every piece of text from the network is put in the page with textContent or
// createTextNode, never as HTML.
'use strict'
;(function () {
  const $ = (id) => document.getElementById(id)
  const HEX64 = /^[0-9a-fA-F]{64}$/
  const NAME = /^[A-Za-z0-9_-]{1,32}$/

  const S = {
    token: null,
    user: null,
    view: { kind: 'room', name: 'lobby' },
    convs: new Map(), // 'r:room' | 'd:user' -> Map(id -> message)
    rooms: [],
    dmPeers: [],
    unread: new Map(),
    contacts: new Map(), // user -> { fingerprint, status, old?, new? }
    after: 0,
    pollGen: 0,
    authMode: 'login',
    dead: false,
  }

  const m = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash)
  if (m) S.token = m[1]
  if (location.hash) history.replaceState(null, '', location.pathname + location.search)

  // ---- helpers ----------------------------------------------------------------
  function el (tag, cls, text) {
    const e = document.createElement(tag)
    if (cls) e.className = cls
    if (text !== undefined && text !== null) e.textContent = String(text)
    return e
  }
  function clear (node) { while (node.firstChild) node.removeChild(node.firstChild) }
  function show (node, on) { node.hidden = !on }
  function notice (text, bad) {
    const n = $('notice')
    n.textContent = text || ''
    n.classList.toggle('bad', !!bad)
    show(n, !!text)
  }
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  const time = (t) => { const d = new Date(t); return d.toTimeString().slice(0, 5) }
  const groups = (hex) => (hex || '').replace(/(.{4})/g, '$1 ').trim()

  class ApiError extends Error {
    constructor (status, code, message, data) { super(message); this.status = status; this.code = code; this.data = data }
  }

  async function api (method, path, body, signal) {
    if (!S.token) throw new ApiError(403, 'MM_ERR_WEB_TOKEN', 'no token')
    const headers = { 'X-Marshmello-Token': S.token }
    const init = { method, headers, cache: 'no-store', credentials: 'omit', signal }
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json'
      init.body = JSON.stringify(body || {})
    }
    const res = await fetch(path, init)
    let data = null
    try { data = await res.json() } catch (_) { data = null }
    if (!res.ok) {
      const e = (data && data.error) || {}
      if (res.status === 403 && e.code && e.code.startsWith('MM_ERR_WEB_')) lostToken()
      throw new ApiError(res.status, e.code || 'MM_ERR_HTTP', e.message || ('HTTP ' + res.status), e)
    }
    return data
  }

  function lostToken () {
    if (S.dead) return
    S.dead = true
    S.pollGen++
    notice('This page has no valid access token. Open the link printed by `marshmello chat --web` in your terminal.', true)
  }

  // ---- screens ----------------------------------------------------------------
  function screen (name) {
    for (const s of ['login', 'network', 'chat']) show($('screen-' + s), s === name)
    show($('nav-logout'), !!S.user)
    $('who').textContent = S.user ? 'signed in as ' + S.user : ''
  }

  function setAuthMode (mode) {
    S.authMode = mode
    $('tab-login').classList.toggle('active', mode === 'login')
    $('tab-signup').classList.toggle('active', mode === 'signup')
    $('auth-submit').textContent = mode === 'login' ? 'Log in' : 'Create account'
    $('auth-pass').autocomplete = mode === 'login' ? 'current-password' : 'new-password'
    show($('auth-error'), false)
  }

  async function boot () {
    if (!S.token) { lostToken(); return }
    let s
    try { s = await api('GET', '/api/session') } catch (e) { if (!S.dead) notice(e.message, true); return }
    applySession(s)
    if (s.loggedIn) await enterChat()
    else if (!s.network.configured) await openNetwork()
    else screen('login')
  }

  function applySession (s) {
    S.user = s.username
    S.rooms = s.rooms || []
    S.dmPeers = s.dmPeers || []
    S.after = s.lastEvent || 0
  }

  // ---- login / sign-up --------------------------------------------------------
  $('tab-login').addEventListener('click', () => setAuthMode('login'))
  $('tab-signup').addEventListener('click', () => setAuthMode('signup'))
  $('auth-form').addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const username = $('auth-user').value.trim()
    const password = $('auth-pass').value
    const err = $('auth-error')
    if (!NAME.test(username)) { err.textContent = 'A username is 1–32 characters of letters, digits, _ and -.'; show(err, true); return }
    const btn = $('auth-submit')
    btn.disabled = true
    const label = btn.textContent
    btn.textContent = S.authMode === 'login' ? 'Logging in…' : 'Creating account…'
    try {
      const s = await api('POST', S.authMode === 'login' ? '/api/login' : '/api/signup', { username, password })
      $('auth-pass').value = ''
      show(err, false)
      applySession(s)
      await enterChat()
    } catch (e) {
      err.textContent = e.message
      show(err, true)
    } finally {
      btn.disabled = false
      btn.textContent = label
    }
  })

  $('nav-logout').addEventListener('click', async () => {
    S.pollGen++
    try { await api('POST', '/api/logout') } catch (_) {}
    S.user = null
    S.convs.clear()
    S.unread.clear()
    S.contacts.clear()
    setAuthMode('login')
    screen('login')
  })

  // ---- network settings ---------------------------------------------------------
  async function openNetwork () {
    screen('network')
    show($('nav-logout'), !!S.user)
    const dl = $('net-current')
    clear(dl)
    let n
    try { n = await api('GET', '/api/network') } catch (e) { return }
    const row = (k, v, mono) => { dl.appendChild(el('dt', '', k)); dl.appendChild(el('dd', mono ? 'mono' : '', v)) }
    if (!n.configured) row('Current', n.error || 'no network configured yet')
    else {
      if (n.devnetDir) row('Devnet', n.devnetDir)
      row('Bootstrap relay' + (n.relays.length > 1 ? 's' : ''), n.relays.join(', '))
      row('Directory key', groups(n.directoryKey), true)
      if (n.devnetDir) $('net-devnet').value = n.devnetDir
      else { $('net-relay').value = n.relays[0] || ''; $('net-key').value = n.directoryKey || '' }
    }
    $('net-back').hidden = !n.configured
  }
  $('nav-network').addEventListener('click', () => { if (!S.dead) openNetwork() })
  $('net-back').addEventListener('click', () => { if (S.user) enterChat(); else screen('login') })

  async function changeNetwork (body) {
    const err = $('net-error')
    show(err, false)
    try {
      const s = await api('PUT', '/api/network', body)
      S.pollGen++
      applySession(s)
      S.convs.clear()
      notice('Network changed. Log in again.')
      setAuthMode('login')
      screen('login')
    } catch (e) {
      err.textContent = e.message
      show(err, true)
    }
  }
  $('net-form').addEventListener('submit', (ev) => {
    ev.preventDefault()
    const relay = $('net-relay').value.trim()
    const directoryKey = $('net-key').value.trim()
    const err = $('net-error')
    if (!/^https:\/\/[^/]+\/?$/.test(relay)) { err.textContent = 'The relay URL must look like https://host:port.'; show(err, true); return }
    if (!HEX64.test(directoryKey)) { err.textContent = 'The directory key must be exactly 64 hex characters.'; show(err, true); return }
    changeNetwork({ relay, directoryKey })
  })
  $('devnet-form').addEventListener('submit', (ev) => {
    ev.preventDefault()
    changeNetwork({ devnet: $('net-devnet').value.trim() })
  })

  // ---- chat -------------------------------------------------------------------
  async function enterChat () {
    notice('')
    screen('chat')
    renderLists()
    await selectView(S.view.kind === 'dm' && S.dmPeers.includes(S.view.name) ? S.view : { kind: 'room', name: S.rooms.includes(S.view.name) ? S.view.name : 'lobby' })
    refreshCircuit()
    poll(++S.pollGen)
  }

  const convKey = (v) => (v.kind === 'room' ? 'r:' : 'd:') + v.name
  function conv (key) {
    let c = S.convs.get(key)
    if (!c) { c = new Map(); S.convs.set(key, c) }
    return c
  }
  function addMessages (key, list) {
    const c = conv(key)
    let added = false
    for (const msg of list) if (!c.has(msg.id)) { c.set(msg.id, msg); added = true }
    if (c.size > 400) { for (const k of [...c.keys()].slice(0, c.size - 400)) c.delete(k) }
    return added
  }

  function renderLists () {
    const rl = $('room-list')
    clear(rl)
    for (const r of S.rooms) rl.appendChild(listItem('#' + r, { kind: 'room', name: r }))
    const dl = $('dm-list')
    clear(dl)
    for (const p of S.dmPeers) dl.appendChild(listItem(p, { kind: 'dm', name: p }))
    if (!S.dmPeers.length) dl.appendChild(el('li', 'hint', 'no conversations yet'))
  }
  function listItem (label, v) {
    const li = el('li')
    const b = el('button', S.view.kind === v.kind && S.view.name === v.name ? 'active' : '')
    b.type = 'button'
    b.dataset.kind = v.kind
    b.dataset.name = v.name
    b.appendChild(el('span', '', label))
    const key = convKey(v)
    const c = S.contacts.get(v.name)
    if (v.kind === 'dm' && c && c.status === 'changed') b.appendChild(el('span', 'badge alert', 'key!'))
    else if (S.unread.get(key)) b.appendChild(el('span', 'badge', S.unread.get(key)))
    b.addEventListener('click', () => selectView(v))
    li.appendChild(b)
    return li
  }

  async function selectView (v) {
    S.view = v
    S.unread.delete(convKey(v))
    renderLists()
    $('conv-title').textContent = v.kind === 'room' ? '#' + v.name : v.name
    $('send-text').placeholder = v.kind === 'room' ? 'Message #' + v.name : 'Encrypted message to ' + v.name
    clear($('conv-meta'))
    show($('key-banner'), false)
    renderMessages(true)
    try {
      if (v.kind === 'room') {
        const r = await api('GET', '/api/rooms/' + encodeURIComponent(v.name) + '/messages')
        addMessages(convKey(v), r.messages)
      } else {
        const [r] = await Promise.all([api('GET', '/api/dms/' + encodeURIComponent(v.name)), loadContact(v.name)])
        addMessages(convKey(v), r.messages)
      }
    } catch (e) {
      notice(e.message, true)
    }
    if (S.view === v) renderMessages(true)
  }

  async function loadContact (user) {
    try {
      const w = await api('GET', '/api/users/' + encodeURIComponent(user) + '/whois')
      const prev = S.contacts.get(user) || {}
      S.contacts.set(user, { ...prev, fingerprint: w.fingerprint, status: w.status })
    } catch (e) {
      S.contacts.set(user, { error: e.message })
    }
    if (S.view.kind === 'dm' && S.view.name === user) renderContact(user)
  }

  function renderContact (user) {
    const meta = $('conv-meta')
    clear(meta)
    const c = S.contacts.get(user) || {}
    if (c.error) { meta.appendChild(el('span', 'error', c.error)); return }
    meta.appendChild(document.createTextNode('key fingerprint '))
    meta.appendChild(el('span', 'fingerprint', groups(c.fingerprint).slice(0, 39) + '…'))
    meta.appendChild(document.createTextNode(c.status === 'new' ? ' · first seen now (trusted on first use)' : c.status === 'same' ? ' · matches the key you pinned' : ''))
    const changed = c.status === 'changed'
    show($('key-banner'), changed)
    if (changed) {
      $('key-banner-title').textContent = '⚠ ' + user + "'s key has changed"
      $('key-banner-text').textContent = 'Someone may be impersonating ' + user + ', or they set up a new device. Compare the new fingerprint with them over another channel before trusting it: ' +
        groups(c.newFingerprint || c.fingerprint) + (c.oldFingerprint ? ' (was ' + groups(c.oldFingerprint) + ')' : '')
    }
    renderLists()
  }

  $('trust-btn').addEventListener('click', async () => {
    if (S.view.kind !== 'dm') return
    const user = S.view.name
    try {
      const r = await api('POST', '/api/users/' + encodeURIComponent(user) + '/trust')
      S.contacts.set(user, { fingerprint: r.fingerprint, status: 'same' })
      renderContact(user)
      const d = await api('GET', '/api/dms/' + encodeURIComponent(user))
      conv('d:' + user).clear()
      addMessages('d:' + user, d.messages)
      renderMessages(true)
    } catch (e) { notice(e.message, true) }
  })

  function renderMessages (toBottom) {
    const list = $('messages')
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80
    clear(list)
    const msgs = [...conv(convKey(S.view)).values()].sort((a, b) => a.sentAt - b.sentAt || (a.id < b.id ? -1 : 1))
    if (!msgs.length) list.appendChild(el('li', 'empty', S.view.kind === 'room' ? 'No messages in #' + S.view.name + ' yet.' : 'No messages with ' + S.view.name + ' yet. Messages are end-to-end encrypted.'))
    for (const msg of msgs) list.appendChild(messageNode(msg))
    if (toBottom || nearBottom) list.scrollTop = list.scrollHeight
  }

  function messageNode (msg) {
    const isDm = msg.room === undefined
    const unverified = isDm && !msg.verified
    const li = el('li', 'msg' + (msg.from === S.user ? ' mine' : '') + (isDm ? (unverified ? ' unverified' : ' verified') : ''))
    li.dataset.id = msg.id
    const head = el('div', 'head')
    head.appendChild(el('span', 'from', msg.from))
    head.appendChild(el('span', 'time', time(msg.sentAt)))
    if (isDm) head.appendChild(el('span', 'tag', unverified ? '⚠ not verified' : '✓ verified'))
    li.appendChild(head)
    // the one place message text enters the page: always as a text node
    const body = el('div', 'text')
    body.appendChild(document.createTextNode(unverified ? 'Not shown: ' + (msg.warning || 'this message could not be verified') : msg.text))
    li.appendChild(body)
    if (!unverified && msg.warning) li.appendChild(el('div', 'hint', msg.warning))
    return li
  }

  $('send-form').addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const input = $('send-text')
    const text = input.value
    if (!text.trim()) return
    const v = S.view
    input.disabled = true
    try {
      const path = v.kind === 'room' ? '/api/rooms/' + encodeURIComponent(v.name) + '/messages' : '/api/dms/' + encodeURIComponent(v.name)
      const r = await api('POST', path, { text })
      input.value = ''
      addMessages(convKey(v), [r.message])
      if (v.kind === 'dm' && !S.dmPeers.includes(v.name)) { S.dmPeers.unshift(v.name); renderLists() }
      if (S.view === v) renderMessages(true)
    } catch (e) {
      if (e.code === 'MM_ERR_KEY_CHANGED' && v.kind === 'dm') {
        S.contacts.set(v.name, { status: 'changed', fingerprint: e.data.newFingerprint, newFingerprint: e.data.newFingerprint, oldFingerprint: e.data.oldFingerprint })
        renderContact(v.name)
      } else notice(e.message, true)
    } finally {
      input.disabled = false
      input.focus()
    }
  })

  $('join-form').addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const name = $('join-name').value.trim().toLowerCase()
    if (!NAME.test(name)) return
    try {
      const r = await api('POST', '/api/rooms/' + encodeURIComponent(name) + '/join')
      S.rooms = r.rooms
      $('join-name').value = ''
      await selectView({ kind: 'room', name })
    } catch (e) { notice(e.message, true) }
  })

  $('dm-form').addEventListener('submit', async (ev) => {
    ev.preventDefault()
    const name = $('dm-name').value.trim().toLowerCase()
    if (!NAME.test(name)) return
    $('dm-name').value = ''
    if (!S.dmPeers.includes(name)) S.dmPeers.unshift(name)
    await selectView({ kind: 'dm', name })
  })

  // ---- circuit ----------------------------------------------------------------
  function drawCircuit (hops) {
    const path = $('circuit-path')
    clear(path)
    const you = el('li', 'hop you')
    const box = el('span', 'box')
    box.appendChild(el('span', 'nick', 'You'))
    box.appendChild(el('span', 'fp', 'this computer'))
    you.appendChild(box)
    path.appendChild(you)
    if (!hops.length) { path.appendChild(el('li', 'empty', 'no circuit yet')); return }
    const relays = hops.filter((h) => h.role !== 'server').length
    hops.forEach((h, i) => {
      const position = h.role === 'server' ? 'final hop' : i === 0 ? 'entry' : i === relays - 1 ? 'exit' : 'middle'
      const li = el('li', 'hop node ' + (h.role === 'server' ? 'server' : 'relay'))
      li.title = position + ' · ' + h.fingerprint + ' at ' + h.host + ':' + h.port
      const b = el('span', 'box')
      const top = el('span', 'nick', h.role === 'server' ? 'server' : h.nickname)
      top.appendChild(el('span', 'role', position))
      b.appendChild(top)
      b.appendChild(el('span', 'fp', h.fingerprint.slice(0, 8)))
      li.appendChild(b)
      path.appendChild(li)
    })
  }
  async function refreshCircuit (fresh) {
    try {
      const r = await api(fresh ? 'POST' : 'GET', fresh ? '/api/circuit/new' : '/api/circuit')
      drawCircuit(r.hops)
    } catch (e) {
      drawCircuit([])
      notice('Circuit: ' + e.message, true)
    }
  }
  $('circuit-new').addEventListener('click', async () => {
    const b = $('circuit-new')
    b.disabled = true
    b.textContent = 'Building…'
    await refreshCircuit(true)
    b.disabled = false
    b.textContent = 'New circuit'
  })

  // ---- live updates -------------------------------------------------------------
  function handle (e) {
    if (e.type === 'room') {
      const key = 'r:' + e.room
      if (!addMessages(key, [e.message])) return
      if (S.view.kind === 'room' && S.view.name === e.room) renderMessages(false)
      else { S.unread.set(key, (S.unread.get(key) || 0) + 1); renderLists() }
    } else if (e.type === 'dm') {
      const key = 'd:' + e.peer
      if (!addMessages(key, [e.message])) return
      if (!S.dmPeers.includes(e.peer)) { S.dmPeers.unshift(e.peer); loadContact(e.peer) }
      if (S.view.kind === 'dm' && S.view.name === e.peer) renderMessages(false)
      else S.unread.set(key, (S.unread.get(key) || 0) + 1)
      renderLists()
    } else if (e.type === 'circuit') {
      drawCircuit(e.hops)
    } else if (e.type === 'status') {
      notice(e.ok ? '' : e.message, !e.ok)
    }
  }

  async function poll (gen) {
    while (gen === S.pollGen && !S.dead) {
      try {
        const r = await api('GET', '/api/events?after=' + S.after)
        if (gen !== S.pollGen) return
        if (r.reset) { S.after = r.last; await selectView(S.view); continue }
        for (const e of r.events) handle(e)
        S.after = r.last
      } catch (e) {
        if (e.status === 401) return
        await sleep(2000)
      }
    }
  }

  setAuthMode('login')
  boot()
})()
