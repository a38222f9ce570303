// The Guardian view: the operator dashboard of the streamgate gate, served at /admin/.
//
// Plain DOM, no build step, no dependencies, under a strict CSP (script-src 'self',
// style-src 'self', connect-src 'self'). Every value from the API is attacker-influenced
// (User-Agents, referrers, AS organizations, token ids and claims), so nothing is ever
// parsed as HTML: nodes are built with createElement and filled with textContent.
//
// The admin token is kept in memory, and in sessionStorage only when the operator ticks
// "keep me signed in in this tab": sessionStorage is per tab and cleared when the tab
// closes, never sent anywhere by the browser. It goes out only as an Authorization
// header on same-origin fetches; never in a URL or a cookie, so there is nothing to forge
// cross-site (no CSRF).
'use strict';

(() => {
  const STORAGE_KEY = 'streamgate.admin';
  const TTLS = [
    ['', 'permanently'],
    ['3600', '1 hour'],
    ['21600', '6 hours'],
    ['86400', '1 day'],
    ['604800', '7 days'],
    ['2592000', '30 days'],
  ];
  const SEVERITY_RANK = { none: 0, low: 1, medium: 2, high: 3 };

  const state = {
    token: null,
    view: 'tokens',
    window: { kind: '3h', from: null, to: null },
    sort: { key: 'score', dir: -1 },
    filter: '',
    severity: '',
    showRevoked: true,
    expanded: new Set(),
    details: new Map(),
    tokens: null,
  };

  const $ = (id) => document.getElementById(id);

  // ---- safe DOM building ------------------------------------------------------------

  /** An element: attrs are set as attributes (or `on*` as listeners); children are nodes or text. */
  function h(tag, attrs, ...children) {
    const svg = tag.startsWith('svg:');
    const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(text(c)));
    }
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  /** Any value as display text: strings as they are, the rest as JSON. */
  function text(v) {
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    try {
      return JSON.stringify(v);
    } catch {
      return String(v);
    }
  }

  const arr = (v) => (Array.isArray(v) ? v : []);
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : Number.isFinite(Number(v)) && v !== null && v !== '' ? Number(v) : null);
  const str = (v) => (v === undefined || v === null ? '' : text(v));

  function fmtNum(v) {
    const n = num(v);
    return n === null ? '–' : n.toLocaleString('en-US');
  }

  function fmtBytes(v) {
    const n = num(v);
    if (n === null) return '–';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    let x = n;
    while (x >= 1000 && i < units.length - 1) { x /= 1000; i++; }
    return `${x.toFixed(i && x < 10 ? 1 : 0)} ${units[i]}`;
  }

  function fmtDuration(v) {
    const n = num(v);
    if (n === null || n < 0) return '–';
    const s = Math.round(n);
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
    const hours = Math.floor(m / 60);
    if (hours < 48) return `${hours}h ${String(m % 60).padStart(2, '0')}m`;
    return `${Math.floor(hours / 24)}d ${hours % 24}h`;
  }

  function fmtTime(v) {
    const n = num(v);
    if (n === null) return str(v) || '–';
    const d = new Date(n * 1000);
    if (Number.isNaN(d.getTime())) return String(v);
    const p = (x) => String(x).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function fmtTtl(v) {
    const n = num(v);
    if (n === null) return 'permanent';
    return fmtDuration(n);
  }

  function providerName(p) {
    if (!p || typeof p !== 'object') return str(p);
    const asn = num(p.asn) !== null ? `AS${p.asn}` : str(p.asn);
    const org = str(p.organization);
    return org ? `${asn} ${org}`.trim() : asn || '?';
  }

  // Referrer rows name their host `host` (breakdown) or `name` (token rows); null: none sent.
  const referrerHost = (r) => (r && typeof r === 'object' ? (r.host ?? r.name ?? null) : null);
  const referrerName = (r) => {
    const host = referrerHost(r);
    return host !== null && host !== '' && host !== '-' ? str(host) : '(no referrer)';
  };

  // A token no indicator fired for has nothing to rate, whatever the row's severity says.
  const severityOf = (r) => (arr(r.indicators).length ? str(r.severity) || 'none' : 'none');

  function severityBadge(sev) {
    const s = str(sev) || 'none';
    const known = Object.hasOwn(SEVERITY_RANK, s) ? s : 'unknown';
    return h('span', { class: `badge sev-${known}` }, s);
  }

  function ttlSelect(attrs) {
    return h('select', { class: 'ttl', ...attrs }, TTLS.map(([v, label]) => h('option', { value: v }, label)));
  }

  // ---- API --------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    if (!state.token) throw new ApiError(401, 'unauthorized', 'not signed in');
    const headers = { Authorization: `Bearer ${state.token}`, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
        redirect: 'error',
        referrerPolicy: 'no-referrer',
      });
    } catch (e) {
      throw new ApiError(0, 'network', `network error: ${e && e.message ? e.message : e}`);
    }
    let data = null;
    const raw = await response.text();
    try {
      data = raw ? JSON.parse(raw) : null;
    } catch {
      data = null;
    }
    if (response.status === 401) {
      signOut(`Signed out: ${(data && typeof data.message === 'string' && data.message) || 'the admin token was refused'} (401).`);
      throw new ApiError(401, 'unauthorized', 'unauthorized');
    }
    if (!response.ok) {
      const code = data && typeof data.error === 'string' ? data.error : `http_${response.status}`;
      const message = data && typeof data.message === 'string' ? data.message : raw.slice(0, 300) || response.statusText;
      throw new ApiError(response.status, code, message);
    }
    return data && typeof data === 'object' ? data : {};
  }

  function windowQuery() {
    const w = state.window;
    if (w.kind === 'custom' && w.from !== null && w.to !== null) return `from=${encodeURIComponent(w.from)}&to=${encodeURIComponent(w.to)}`;
    return `window=${encodeURIComponent(w.kind === 'custom' ? '3h' : w.kind)}`;
  }

  // ---- messages ---------------------------------------------------------------------

  function showResult(ok, message) {
    const el = $('result');
    el.hidden = false;
    el.className = `message ${ok ? 'ok' : 'error'}`;
    el.textContent = message;
  }

  /** Runs an operator action: shows its result, then refreshes the view. */
  async function act(label, method, path, body) {
    try {
      const data = await api(method, path, body);
      showResult(true, `${label}: done${data && data.until ? ` (until ${fmtTime(data.until)})` : ''}.`);
    } catch (e) {
      if (e.status === 401) return false;
      showResult(false, `${label} failed: ${e.message}${e.code && e.code !== 'network' ? ` [${e.code}]` : ''}`);
      await render();
      return false;
    }
    await render();
    return true;
  }

  // ---- sign-in ----------------------------------------------------------------------

  function signIn(token, remember) {
    state.token = token;
    if (remember) {
      try { sessionStorage.setItem(STORAGE_KEY, token); } catch { /* storage unavailable */ }
    }
    $('signin').hidden = true;
    $('signin-message').hidden = true;
    $('app').hidden = false;
    $('nav').hidden = false;
    $('session').hidden = false;
    render();
  }

  function signOut(message) {
    state.token = null;
    state.tokens = null;
    state.details.clear();
    state.expanded.clear();
    try { sessionStorage.removeItem(STORAGE_KEY); } catch { /* storage unavailable */ }
    $('app').hidden = true;
    $('nav').hidden = true;
    $('session').hidden = true;
    $('signin').hidden = false;
    $('admin-token').value = '';
    for (const id of ['tokens-body', 'ips-body', 'actions-body', 'bd-countries', 'bd-referrers', 'bd-providers']) clear($(id));
    $('result').hidden = true;
    const m = $('signin-message');
    m.hidden = !message;
    m.textContent = message || '';
    $('admin-token').focus();
  }

  // ---- views ------------------------------------------------------------------------

  function currentView() {
    const v = location.hash.replace(/^#/, '');
    return ['tokens', 'ips', 'breakdown', 'actions'].includes(v) ? v : 'tokens';
  }

  let renderSeq = 0;
  async function render() {
    if (!state.token) return;
    state.view = currentView();
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.view === state.view) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    for (const v of ['tokens', 'ips', 'breakdown', 'actions']) $(`view-${v}`).hidden = v !== state.view;
    $('window-bar').hidden = state.view === 'actions';
    const seq = ++renderSeq;
    document.body.dataset.loading = 'true';
    try {
      if (state.view === 'tokens') await loadTokens(seq);
      else if (state.view === 'ips') await loadIps(seq);
      else if (state.view === 'breakdown') await loadBreakdown(seq);
      else await loadActions(seq);
    } catch (e) {
      if (e.status !== 401) showResult(false, `Loading failed: ${e.message}`);
    } finally {
      if (seq === renderSeq) document.body.dataset.loading = 'false';
    }
  }

  function showWindow(w) {
    const el = $('window-shown');
    if (w && typeof w === 'object' && (w.from !== undefined || w.to !== undefined)) el.textContent = `${fmtTime(w.from)} → ${fmtTime(w.to)}`;
    else el.textContent = '';
  }

  // Tokens ---------------------------------------------------------------------------

  const COLUMNS = [
    { key: 'token', label: 'Token', get: (r) => str(r.token) },
    { key: 'sub', label: 'Subject', get: (r) => str(r.sub) },
    { key: 'ips', label: 'Distinct IPs', num: true, get: (r) => num(r.ips) ?? -1 },
    { key: 'sessions', label: 'Sessions', num: true, get: (r) => num(r.sessions) ?? -1 },
    { key: 'peak_concurrency', label: 'Peak', num: true, get: (r) => num(r.peak_concurrency) ?? -1 },
    { key: 'countries', label: 'Countries', get: (r) => arr(r.countries).length },
    { key: 'providers', label: 'Top providers', get: (r) => arr(r.providers).length },
    { key: 'referrers', label: 'Referrers', get: (r) => arr(r.referrers).length },
    { key: 'playback_seconds', label: 'Duration', num: true, get: (r) => num(r.playback_seconds) ?? -1 },
    { key: 'score', label: 'Score', num: true, get: (r) => num(r.score) ?? -1 },
    { key: 'severity', label: 'Severity', get: (r) => SEVERITY_RANK[str(r.severity)] ?? -1 },
    { key: 'indicators', label: 'Indicators', get: (r) => arr(r.indicators).length },
  ];

  function renderHead() {
    const tr = clear($('tokens-head'));
    tr.append(h('th', { class: 'expander-col' }, h('span', { class: 'sr-only' }, 'Expand')));
    for (const c of COLUMNS) {
      const active = state.sort.key === c.key;
      tr.append(h('th', {
        class: c.num ? 'num' : null,
        'aria-sort': active ? (state.sort.dir > 0 ? 'ascending' : 'descending') : 'none',
        dataset: { key: c.key },
      }, h('button', {
        type: 'button',
        class: 'sort',
        onclick: () => {
          if (state.sort.key === c.key) state.sort.dir = -state.sort.dir;
          else state.sort = { key: c.key, dir: c.key === 'token' || c.key === 'sub' ? 1 : -1 };
          renderTokens();
        },
      }, c.label, h('span', { class: 'arrow', 'aria-hidden': 'true' }, active ? (state.sort.dir > 0 ? ' ▲' : ' ▼') : ''))));
    }
  }

  async function loadTokens(seq) {
    const data = await api('GET', `/admin/tokens?${windowQuery()}`);
    if (seq !== renderSeq) return;
    // A row without an id can be neither expanded nor acted on: left out.
    state.tokens = arr(data.tokens).filter((r) => r && typeof r === 'object' && !Array.isArray(r) && str(r.token) !== '');
    showWindow(data.window);
    // Details of expanded rows are fetched again: they change with the window and with actions.
    state.details.clear();
    renderTokens();
    await Promise.all([...state.expanded].map((id) => loadDetail(id)));
  }

  function matchesFilter(r) {
    const sev = severityOf(r);
    if (state.severity === 'none' && sev !== 'none') return false;
    if (state.severity && state.severity !== 'none' && (SEVERITY_RANK[sev] ?? 0) < SEVERITY_RANK[state.severity]) return false;
    if (!state.showRevoked && r.revoked === true) return false;
    const q = state.filter.trim().toLowerCase();
    if (!q) return true;
    const hay = [
      r.token, r.sub, ...arr(r.countries), ...arr(r.providers).map(providerName), ...arr(r.referrers).map(referrerName),
      ...arr(r.indicators).map((i) => i && i.code), ...arr(r.streams),
    ].map((x) => str(x).toLowerCase());
    return hay.some((x) => x.includes(q));
  }

  function sortedRows() {
    const col = COLUMNS.find((c) => c.key === state.sort.key) || COLUMNS[9];
    const rows = (state.tokens || []).filter(matchesFilter);
    return rows.sort((a, b) => {
      const x = col.get(a);
      const y = col.get(b);
      const cmp = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
      return cmp * state.sort.dir || str(a.token).localeCompare(str(b.token));
    });
  }

  function listCell(items, limit, fmt) {
    const all = arr(items).filter((x) => x !== null && x !== undefined).map(fmt).filter((x) => x !== '');
    const shown = all.slice(0, limit).join(', ');
    return h('td', { title: all.join(', ') || null }, shown, all.length > limit ? h('span', { class: 'muted' }, ` +${all.length - limit}`) : null);
  }

  function renderTokens() {
    renderHead();
    const body = clear($('tokens-body'));
    const rows = sortedRows();
    const total = (state.tokens || []).length;
    $('tokens-count').textContent = `${rows.length} of ${total} token${total === 1 ? '' : 's'}`;
    if (!rows.length) {
      body.append(h('tr', {}, h('td', { colspan: COLUMNS.length + 1, class: 'empty' }, total ? 'No token matches the filter.' : 'No playback in this window.')));
      return;
    }
    for (const r of rows) {
      const id = str(r.token);
      const open = state.expanded.has(id);
      const toggle = () => {
        if (state.expanded.has(id)) state.expanded.delete(id);
        else state.expanded.add(id);
        renderTokens();
        if (state.expanded.has(id) && !state.details.has(id)) loadDetail(id);
      };
      const sev = severityOf(r);
      const tr = h('tr', { class: `row sev-row-${Object.hasOwn(SEVERITY_RANK, sev) ? sev : 'unknown'}${r.revoked === true ? ' revoked' : ''}`, dataset: { token: id } },
        h('td', { class: 'expander-col' }, h('button', { type: 'button', class: 'expander', 'aria-expanded': open ? 'true' : 'false', 'aria-label': `Details of ${id}`, onclick: toggle }, open ? '▾' : '▸')),
        h('td', { class: 'mono token-id', title: id }, id, r.revoked === true ? h('span', { class: 'badge revoked-badge' }, 'revoked') : null),
        h('td', { class: 'mono subject' }, str(r.sub)),
        h('td', { class: 'num' }, fmtNum(r.ips)),
        h('td', { class: 'num' }, fmtNum(r.sessions)),
        h('td', { class: 'num' }, fmtNum(r.peak_concurrency)),
        listCell(r.countries, 5, str),
        listCell(r.providers, 2, providerName),
        listCell(r.referrers, 2, referrerName),
        h('td', { class: 'num' }, fmtDuration(r.playback_seconds)),
        h('td', { class: 'num' }, scoreCell(r.score)),
        h('td', {}, severityBadge(severityOf(r))),
        h('td', {}, arr(r.indicators).map((i) => h('span', { class: `chip sev-${Object.hasOwn(SEVERITY_RANK, str(i && i.severity)) ? str(i.severity) : 'unknown'}`, title: `confidence ${text(i && i.confidence)}` }, str(i && i.code)))),
      );
      body.append(tr);
      if (open) body.append(h('tr', { class: 'detail-row', dataset: { detailFor: id } }, h('td', { colspan: COLUMNS.length + 1 }, detailView(r))));
    }
  }

  function scoreCell(score) {
    const n = num(score);
    if (n === null) return '–';
    const meter = h('span', { class: 'score-bar', 'aria-hidden': 'true' }, h('span', { class: 'score-fill' }));
    meter.firstChild.style.width = `${Math.max(0, Math.min(100, n))}%`;
    return [String(Math.round(n)), meter];
  }

  async function loadDetail(id) {
    try {
      const d = await api('GET', `/admin/tokens/detail?token=${encodeURIComponent(id)}&${windowQuery()}`);
      state.details.set(id, d);
    } catch (e) {
      if (e.status === 401) return;
      state.details.set(id, { error: e.message });
    }
    if (state.view === 'tokens' && state.expanded.has(id)) renderTokens();
  }

  function detailView(row) {
    const id = str(row.token);
    const d = state.details.get(id);
    if (!d) return h('p', { class: 'muted' }, 'Loading…');
    if (d.error) return h('p', { class: 'message error' }, `Could not load the details: ${d.error}`);
    const full = d.row && typeof d.row === 'object' ? { ...row, ...d.row } : row;
    return h('div', { class: 'detail' },
      h('div', { class: 'detail-grid' },
        h('div', { class: 'card' },
          h('h3', {}, 'Token'),
          h('dl', { class: 'kv' },
            h('dt', {}, 'Id'), h('dd', { class: 'mono' }, id),
            h('dt', {}, 'Subject'), h('dd', { class: 'mono' }, str(full.sub) || '–'),
            h('dt', {}, 'Scope'), h('dd', { class: 'mono' }, str(d.scope) || '–'),
            h('dt', {}, 'Streams'), h('dd', { class: 'mono' }, arr(full.streams).map(str).join(', ') || '–'),
            h('dt', {}, 'Seen'), h('dd', {}, `${fmtTime(full.first_seen)} → ${fmtTime(full.last_seen)}`),
            h('dt', {}, 'Bytes'), h('dd', {}, fmtBytes(full.bytes)),
            h('dt', {}, 'Referrers'), h('dd', {}, arr(full.referrers).map((r) => `${referrerName(r)} (${fmtNum(r && r.count)})`).join(', ') || '–'),
          ),
          h('h4', {}, 'Decoded payload'),
          d.claims && typeof d.claims === 'object'
            ? h('pre', { class: 'json' }, JSON.stringify(d.claims, null, 2))
            : h('p', { class: 'muted' }, 'Not decodable (opaque token or unknown scheme).'),
          revokeControls(full),
        ),
        h('div', { class: 'card' },
          h('h3', {}, 'Activity'),
          activityChart(arr(d.activity)),
        ),
      ),
      h('div', { class: 'card' }, h('h3', {}, `Indicators (${arr(full.indicators).length})`), indicatorsView(full)),
      h('div', { class: 'card' }, h('h3', {}, `IPs (${arr(d.ips).length})`), ipsOfToken(arr(d.ips))),
      h('div', { class: 'card' }, h('h3', {}, `User-Agents (${arr(d.user_agents).length})`),
        h('ul', { class: 'ua' }, arr(d.user_agents).map((u) => h('li', {}, `${str(u && typeof u === 'object' ? u.name : u)} (${fmtNum(u && u.count)})`)))),
    );
  }

  function revokeControls(row) {
    const id = str(row.token);
    const body = () => {
      const b = { jti: id };
      if (row.sub !== undefined && row.sub !== null && row.sub !== '') b.sub = str(row.sub);
      return b;
    };
    if (row.revoked === true) {
      return h('div', { class: 'actions' },
        h('span', { class: 'badge revoked-badge' }, 'revoked'),
        h('button', { type: 'button', class: 'unrevoke', onclick: () => act(`Un-revoke ${id}`, 'POST', '/admin/unrevoke', body()) }, 'Un-revoke'));
    }
    const ttl = ttlSelect({ 'aria-label': 'Revoke for' });
    const reason = h('input', { type: 'text', class: 'reason', placeholder: 'reason (optional)', 'aria-label': 'Reason', maxlength: 200 });
    return h('form', {
      class: 'actions revoke-form',
      onsubmit: (e) => {
        e.preventDefault();
        const b = body();
        if (ttl.value) b.ttl = Number(ttl.value);
        if (reason.value.trim()) b.reason = reason.value.trim();
        act(`Revoke ${id}`, 'POST', '/admin/revoke', b);
      },
    }, h('button', { type: 'submit', class: 'danger revoke' }, 'Revoke'), ttl, reason);
  }

  /** Values for the keys `names` anywhere in an evidence object (one level of nesting, arrays flattened). */
  function evidenceValues(evidence, names) {
    const out = [];
    const visit = (o, depth) => {
      if (!o || typeof o !== 'object' || depth > 2) return;
      for (const [k, v] of Object.entries(o)) {
        if (names.includes(k)) for (const x of Array.isArray(v) ? v : [v]) if (typeof x === 'string' || typeof x === 'number') out.push(x);
        if (v && typeof v === 'object') visit(v, depth + 1);
      }
    };
    visit(evidence, 0);
    return [...new Set(out.map(String))];
  }

  function indicatorsView(row) {
    const indicators = arr(row.indicators).filter((i) => i && typeof i === 'object');
    if (!indicators.length) return h('p', { class: 'muted' }, 'No indicator.');
    const asns = new Set(arr(row.providers).map((p) => p && p.asn).filter((a) => num(a) !== null).map(String));
    return h('ul', { class: 'indicators' }, indicators.map((i) => {
      const code = str(i.code);
      const networks = evidenceValues(i.evidence, ['network', 'networks', 'cidr', 'ip']);
      const indAsns = evidenceValues(i.evidence, ['asn', 'asns']);
      // A network or ASN mark silences the indicator for every token, and says so.
      const scope = h('select', { 'aria-label': `Expected for (${code})` },
        h('option', { value: 'token' }, 'this token'),
        networks.map((n) => h('option', { value: `network:${n}` }, `network ${n} (every token)`)),
        [...new Set([...indAsns, ...asns])].map((a) => h('option', { value: `asn:${a}` }, `AS${a} (every token)`)));
      return h('li', { class: 'indicator', dataset: { code } },
        h('div', { class: 'indicator-head' },
          h('span', { class: `chip sev-${Object.hasOwn(SEVERITY_RANK, str(i.severity)) ? str(i.severity) : 'unknown'}` }, code),
          h('span', { class: 'muted' }, ` severity ${str(i.severity) || '?'}, confidence ${text(i.confidence) || '?'}`),
          h('form', {
            class: 'actions expect-form',
            onsubmit: (e) => {
              e.preventDefault();
              const [kind, ...rest] = scope.value.split(':');
              const value = rest.join(':');
              const b = { indicator: code };
              if (kind === 'network') b.network = value;
              else if (kind === 'asn') b.asn = Number(value);
              else b.token = str(row.token);
              act(`Mark ${code} as expected for ${kind === 'token' ? 'this token' : scope.selectedOptions[0].textContent}`, 'POST', '/admin/expect', b);
            },
          }, h('label', {}, 'expected for ', scope), h('button', { type: 'submit', class: 'expect' }, 'Mark as expected')),
        ),
        i.evidence === undefined ? null : h('pre', { class: 'json evidence' }, JSON.stringify(i.evidence, null, 2)));
    }));
  }

  function ipsOfToken(ips) {
    if (!ips.length) return h('p', { class: 'muted' }, 'No IP recorded.');
    return h('table', { class: 'grid compact' },
      h('thead', {}, h('tr', {}, ['IP', 'Country', 'Provider', 'Events', 'First seen', 'Last seen', ''].map((x) => h('th', {}, x)))),
      h('tbody', {}, ips.filter((x) => x && typeof x === 'object').map((x) => {
        const ttl = ttlSelect({ 'aria-label': `Block ${str(x.ip)} for` });
        return h('tr', { dataset: { ip: str(x.ip) } },
          h('td', { class: 'mono' }, str(x.ip)),
          h('td', {}, str(x.country) || '–'),
          h('td', {}, x.asn !== undefined || x.organization !== undefined ? providerName(x) : '–'),
          h('td', { class: 'num' }, fmtNum(x.events)),
          h('td', {}, fmtTime(x.first_seen)),
          h('td', {}, fmtTime(x.last_seen)),
          h('td', {}, h('form', {
            class: 'actions',
            onsubmit: (e) => {
              e.preventDefault();
              const b = { ip: str(x.ip) };
              if (ttl.value) b.ttl = Number(ttl.value);
              act(`Block ${b.ip}`, 'POST', '/admin/block', b);
            },
          }, h('button', { type: 'submit', class: 'danger small' }, 'Block'), ttl)));
      })));
  }

  /** Events per bucket as an inline SVG bar chart, sessions as a line. */
  function activityChart(points) {
    const data = points.filter((p) => p && typeof p === 'object' && num(p.at) !== null).sort((a, b) => num(a.at) - num(b.at));
    if (!data.length) return h('p', { class: 'muted' }, 'No activity recorded.');
    const W = 520;
    const H = 160;
    const pad = { l: 36, r: 8, t: 10, b: 22 };
    const maxE = Math.max(1, ...data.map((p) => num(p.events) || 0));
    const maxS = Math.max(1, ...data.map((p) => num(p.sessions) || 0));
    const t0 = num(data[0].at);
    const t1 = num(data[data.length - 1].at);
    const span = Math.max(1, t1 - t0);
    const iw = W - pad.l - pad.r;
    const ih = H - pad.t - pad.b;
    const bw = Math.max(2, Math.min(24, (iw / data.length) * 0.8));
    const x = (t) => pad.l + (data.length === 1 ? iw / 2 : ((t - t0) / span) * (iw - bw) + bw / 2);
    const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `Activity: ${data.length} points, up to ${maxE} events` });
    svg.append(h('svg:line', { x1: pad.l, y1: pad.t + ih, x2: W - pad.r, y2: pad.t + ih, class: 'axis' }));
    svg.append(h('svg:text', { x: pad.l - 4, y: pad.t + 8, 'text-anchor': 'end', class: 'tick' }, String(maxE)));
    svg.append(h('svg:text', { x: pad.l - 4, y: pad.t + ih, 'text-anchor': 'end', class: 'tick' }, '0'));
    for (const p of data) {
      const e = num(p.events) || 0;
      const bh = (e / maxE) * ih;
      svg.append(h('svg:rect', { x: (x(num(p.at)) - bw / 2).toFixed(1), y: (pad.t + ih - bh).toFixed(1), width: bw.toFixed(1), height: Math.max(0, bh).toFixed(1), class: 'bar' },
        h('svg:title', {}, `${fmtTime(p.at)}: ${fmtNum(p.events)} events, ${fmtNum(p.sessions)} sessions, ${fmtBytes(p.bytes)}`)));
    }
    if (data.length > 1) {
      const pts = data.map((p) => `${x(num(p.at)).toFixed(1)},${(pad.t + ih - ((num(p.sessions) || 0) / maxS) * ih).toFixed(1)}`).join(' ');
      svg.append(h('svg:polyline', { points: pts, class: 'line' }));
    }
    svg.append(h('svg:text', { x: pad.l, y: H - 6, class: 'tick' }, fmtTime(t0).slice(5, 16)));
    if (data.length > 1) svg.append(h('svg:text', { x: W - pad.r, y: H - 6, 'text-anchor': 'end', class: 'tick' }, fmtTime(t1).slice(5, 16)));
    return h('figure', { class: 'chart-fig' }, svg,
      h('figcaption', { class: 'muted' }, h('span', { class: 'key key-bar' }), ' events  ', h('span', { class: 'key key-line' }), ` sessions (max ${maxS})`));
  }

  // IPs ------------------------------------------------------------------------------

  async function loadIps(seq) {
    const data = await api('GET', `/admin/ips?${windowQuery()}`);
    if (seq !== renderSeq) return;
    showWindow(data.window);
    const body = clear($('ips-body'));
    const rows = arr(data.ips).filter((r) => r && typeof r === 'object');
    rows.sort((a, b) => (num(b.tokens) || 0) - (num(a.tokens) || 0) || (num(b.events) || 0) - (num(a.events) || 0));
    if (!rows.length) body.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No client in this window.')));
    for (const r of rows) {
      const net = str(r.network);
      const by = str(r.blocked_by) || net;
      const ttl = ttlSelect({ 'aria-label': `Block ${net} for` });
      body.append(h('tr', { dataset: { network: net }, class: r.blocked === true ? 'blocked' : null },
        h('td', { class: 'mono' }, net),
        // The network table's class: hosting, relay, vpn … (null: an ordinary network).
        h('td', {}, str(r.network_class) || '–'),
        h('td', { class: 'num' }, fmtNum(r.tokens)),
        h('td', { class: 'num' }, fmtNum(r.events)),
        h('td', {}, [...arr(r.countries), ...(r.country ? [r.country] : [])].map(str).join(', ')),
        h('td', {}, [...arr(r.providers), ...(r.asn !== undefined && r.asn !== null ? [r] : [])].map(providerName).join(', ')),
        h('td', {}, r.blocked === true ? h('span', { class: 'badge revoked-badge' }, by === net ? 'blocked' : `blocked by ${by}`) : h('span', { class: 'muted' }, 'allowed')),
        // Unblock lifts the entry that blocks this network, which may be a wider range.
        h('td', {}, r.blocked === true
          ? h('button', { type: 'button', class: 'unblock small', onclick: () => act(`Unblock ${by}`, 'POST', '/admin/unblock', { ip: by }) }, by === net ? 'Unblock' : `Unblock ${by}`)
          : h('form', {
            class: 'actions',
            onsubmit: (e) => {
              e.preventDefault();
              const b = { ip: net };
              if (ttl.value) b.ttl = Number(ttl.value);
              act(`Block ${net}`, 'POST', '/admin/block', b);
            },
          }, h('button', { type: 'submit', class: 'danger small block' }, 'Block'), ttl))));
    }
  }

  // Breakdown ------------------------------------------------------------------------

  function bars(el, items, label, extra) {
    clear(el);
    const list = arr(items).filter((x) => x && typeof x === 'object');
    if (!list.length) {
      el.append(h('li', { class: 'muted' }, 'Nothing in this window.'));
      return;
    }
    list.sort((a, b) => (num(b.count) || 0) - (num(a.count) || 0));
    const max = Math.max(1, ...list.map((x) => num(x.count) || 0));
    for (const x of list) {
      const fill = h('span', { class: 'bar-fill' });
      fill.style.width = `${(((num(x.count) || 0) / max) * 100).toFixed(1)}%`;
      el.append(h('li', { dataset: { name: label(x) } },
        h('div', { class: 'bar-label' }, h('span', { class: 'bar-name' }, label(x)), h('span', { class: 'bar-count' }, fmtNum(x.count))),
        h('div', { class: 'bar-track' }, fill),
        extra ? extra(x) : null));
    }
  }

  async function loadBreakdown(seq) {
    const data = await api('GET', `/admin/breakdown?${windowQuery()}`);
    if (seq !== renderSeq) return;
    showWindow(data.window);
    bars($('bd-countries'), data.countries, (x) => str(x.name) || '(unknown)');
    bars($('bd-providers'), data.providers, providerName);
    bars($('bd-referrers'), data.referrers, referrerName, (x) => {
      if (x.host === null || x.host === undefined || x.host === '') return null;
      const host = str(x.host);
      if (x.blocked === true) {
        // Unblock lifts the block that refuses this host, which may be a `*.` wildcard.
        const by = str(x.blocked_by) || host;
        return h('div', { class: 'actions' }, h('span', { class: 'badge revoked-badge' }, by === host ? 'blocked' : `blocked by ${by}`),
          h('button', { type: 'button', class: 'small unblock-referrer', onclick: () => act(`Unblock referrer ${by}`, 'POST', '/admin/referrers/unblock', { host: by }) }, by === host ? 'Unblock' : `Unblock ${by}`));
      }
      const ttl = ttlSelect({ 'aria-label': `Block ${host} for` });
      return h('form', {
        class: 'actions',
        onsubmit: (e) => {
          e.preventDefault();
          const b = { host };
          if (ttl.value) b.ttl = Number(ttl.value);
          act(`Block referrer ${host}`, 'POST', '/admin/referrers/block', b);
        },
      }, h('button', { type: 'submit', class: 'danger small block-referrer' }, 'Block referrer'), ttl);
    });
  }

  // Actions log ----------------------------------------------------------------------

  async function loadActions(seq) {
    const data = await api('GET', '/admin/actions');
    if (seq !== renderSeq) return;
    const body = clear($('actions-body'));
    const rows = arr(data.actions).filter((r) => r && typeof r === 'object');
    rows.sort((a, b) => (num(b.at) || 0) - (num(a.at) || 0));
    if (!rows.length) body.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No action yet.')));
    for (const r of rows) {
      const actor = str(r.actor);
      body.append(h('tr', { dataset: { id: str(r.id), action: str(r.action) }, class: r.undone === true ? 'undone' : null },
        h('td', {}, fmtTime(r.at)),
        h('td', {}, h('span', { class: `badge actor-${actor === 'guardian' ? 'guardian' : 'operator'}` }, actor || '?')),
        h('td', {}, str(r.action).replace(/_/g, ' ')),
        h('td', { class: 'mono' }, text(r.target)),
        h('td', {}, str(r.reason)),
        h('td', {}, r.ttl === undefined || r.ttl === null ? '–' : fmtTtl(r.ttl)),
        h('td', {}, r.undone === true ? 'undone' : 'in force'),
        h('td', {}, r.undone === true ? null : h('button', {
          type: 'button',
          class: 'small undo',
          onclick: () => act(`Undo ${str(r.action)} of ${text(r.target)}`, 'POST', '/admin/actions/undo', { id: r.id }),
        }, 'Undo'))));
    }
  }

  // ---- wiring -----------------------------------------------------------------------

  function toLocalInput(unix) {
    const d = new Date(unix * 1000);
    const p = (x) => String(x).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }

  function init() {
    for (const [v, label] of TTLS) $('block-ttl').append(h('option', { value: v }, label));

    $('signin-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const value = $('admin-token').value.trim();
      $('admin-token').value = '';
      if (value) signIn(value, $('remember').checked);
    });
    $('signout').addEventListener('click', () => signOut('Signed out.'));
    $('refresh').addEventListener('click', () => render());
    window.addEventListener('hashchange', () => { $('result').hidden = true; render(); });

    $('window').addEventListener('change', () => {
      const kind = $('window').value;
      $('custom-window').hidden = kind !== 'custom';
      if (kind === 'custom') {
        const now = Math.floor(Date.now() / 1000);
        if (!$('from').value) $('from').value = toLocalInput(now - 6 * 3600);
        if (!$('to').value) $('to').value = toLocalInput(now);
        return; // applied with the Apply button
      }
      state.window = { kind, from: null, to: null };
      render();
    });
    $('apply-window').addEventListener('click', () => {
      const from = Math.floor(new Date($('from').value).getTime() / 1000);
      const to = Math.floor(new Date($('to').value).getTime() / 1000);
      if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) {
        showResult(false, 'Custom window: give a "from" before "to".');
        return;
      }
      state.window = { kind: 'custom', from, to };
      render();
    });

    $('filter').addEventListener('input', () => { state.filter = $('filter').value; renderTokens(); });
    $('severity').addEventListener('change', () => { state.severity = $('severity').value; renderTokens(); });
    $('show-revoked').addEventListener('change', () => { state.showRevoked = $('show-revoked').checked; renderTokens(); });

    $('block-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const b = { ip: $('block-ip').value.trim() };
      if ($('block-ttl').value) b.ttl = Number($('block-ttl').value);
      if ($('block-force').checked) b.force = true;
      if (await act(`Block ${b.ip}`, 'POST', '/admin/block', b)) {
        $('block-ip').value = '';
        $('block-force').checked = false;
      }
    });

    let saved = null;
    try { saved = sessionStorage.getItem(STORAGE_KEY); } catch { /* storage unavailable */ }
    if (saved) {
      $('remember').checked = true;
      signIn(saved, true);
    } else {
      $('admin-token').focus();
    }
  }

  init();
})();
