// Sample Platform dashboard. One module, no dependencies: the page is built
// from the GraphQL API and kept live by the runChanged subscription.

const TOKEN_KEY = 'sp-token';
const STATUSES = ['QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'SUPERSEDED', 'CANCELLED'];
// What a run came to, in one word (GraphQL's RunOutcome), and what each means.
const OUTCOMES = {
  PASS: 'tested: every test passed',
  FAIL: 'tested: at least one test failed',
  ERROR: 'could not be tested (no build, no VM, a deadline passed)',
  CANCELLED: 'cancelled by a person',
  SUPERSEDED: 'a newer commit replaced it',
  QUEUED: 'waiting for its build or a VM',
  RUNNING: 'being tested',
};
const FINAL = new Set(['COMPLETED', 'FAILED', 'SUPERSEDED', 'CANCELLED']);
const PAGE_SIZE = 50;
// Logs can be large; the preview must not freeze the tab.
const PREVIEW_BYTES = 64 * 1024;

const RUN_FIELDS = `id repository commitSha platform status outcome stage attempt trigger branch
  pullRequest requestedBy priority queuedAt startedAt finishedAt vmName deadlineAt deadlineKind
  verdict passed failed samplesDone samplesTotal supersededBy finalReason lastProblem version
  comparison { broken fixed }`;

const $ = (selector, root = document) => root.querySelector(selector);

/* ---------- HTML: every interpolated value is escaped unless wrapped in raw ---------- */

class Html {
  constructor(s) { this.s = s; }
  toString() { return this.s; }
}
const raw = (s) => new Html(s);
const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]);

function part(v) {
  if (v == null || v === false) return '';
  if (v instanceof Html) return v.s;
  if (Array.isArray(v)) return v.map(part).join('');
  return esc(v);
}

/** Tagged template: h`<td>${text}</td>` escapes `text`; nested h`` results pass through. */
function h(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => { out += part(v) + strings[i + 1]; });
  return new Html(out);
}

// Hrefs come from the API; only same-origin paths and http(s) may become links.
function safeUrl(u) {
  if (typeof u !== 'string') return '#';
  if (/^https?:\/\//i.test(u) || (u.startsWith('/') && !u.startsWith('//'))) return u;
  return '#';
}

function setHtml(el, html) { if (el) el.innerHTML = part(html); }

/* ---------- formatting ---------- */

const short = (sha, n = 7) => (sha ? String(sha).slice(0, n) : '');

function span(ms) {
  const s = Math.abs(Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

function relTime(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso ?? '');
  const d = Date.now() - t;
  if (Math.abs(d) < 10000) return 'just now';
  return d > 0 ? `${span(d)} ago` : `in ${span(d)}`;
}

function duration(ms) {
  if (ms == null || Number.isNaN(ms)) return '';
  let s = Math.max(0, Math.round(ms / 1000));
  const hours = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  s %= 60;
  if (hours) return `${hours}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

function runtime(ms) { return ms < 1000 ? `${ms} ms` : duration(ms); }

function bytes(n) {
  if (n == null) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const dash = raw('<span class="muted">—</span>');

/** A time shown relative, exact on hover; refreshed by the ticker below. */
function when(iso) {
  if (!iso) return dash;
  return h`<time class="rel" datetime="${iso}" title="${iso}">${relTime(iso)}</time>`;
}

/** A span that keeps growing: "waiting for 5 min" or a running duration. */
function since(iso, { prefix = '', format = 'span' } = {}) {
  if (!iso) return dash;
  const text = sinceText(iso, prefix, format);
  return h`<span class="since" data-since="${iso}" data-prefix="${prefix}" data-format="${format}" title="since ${iso}">${text}</span>`;
}

function sinceText(iso, prefix, format) {
  const ms = Date.now() - Date.parse(iso);
  return prefix + (format === 'duration' ? duration(ms) : span(ms));
}

setInterval(() => {
  document.querySelectorAll('time.rel').forEach((t) => { t.textContent = relTime(t.dateTime); });
  document.querySelectorAll('[data-since]').forEach((e) => {
    e.textContent = sinceText(e.dataset.since, e.dataset.prefix || '', e.dataset.format);
  });
}, 10000);

function ghUrl(repo, kind, x) {
  return `https://github.com/${String(repo).split('/').map(encodeURIComponent).join('/')}/${kind}/${encodeURIComponent(x)}`;
}
const commitLink = (repo, sha) =>
  h`<a class="sha" href="${ghUrl(repo, 'commit', sha)}" title="${sha}">${short(sha)}</a>`;
/** Run ids are UUIDv7: their first digits are the time, the same for every
 * run queued within a minute; the last ones tell runs apart. */
const runTag = (id) => (id ? String(id).slice(-8) : '');
const runLink = (id, text = runTag(id)) =>
  h`<a data-link="run" href="/runs/${encodeURIComponent(id)}" class="mono" title="${id}">${text}</a>`;
const testLink = (id) => h`<a href="/tests/${encodeURIComponent(id)}">${id}</a>`;
const hash = (sha) => (sha ? h`<code class="hash" title="${sha}">${short(sha, 12)}</code>` : dash);

function prOrBranch(run) {
  if (run.trigger === 'custom') return h`<span class="custom">custom run by @${run.requestedBy}</span>`;
  if (run.pullRequest != null) {
    return h`<a href="${ghUrl(run.repository, 'pull', run.pullRequest)}">#${run.pullRequest}</a>`;
  }
  return run.branch ? h`<code>${run.branch}</code>` : dash;
}

const outcomeBadge = (o) => h`<span class="badge o-${String(o).toLowerCase()}" title="${OUTCOMES[o] ?? ''}">${String(o).toLowerCase()}</span>`;
// What a run's change did against the earlier run it is compared with. The
// results table's order: this change's failures, then failures it did not
// cause, then the rest (the server lists classes by urgency, fixed before
// pre-existing failures).
const CLASS_ORDER = ['BROKEN', 'FAILING_DIFFERENTLY', 'FAILING_IDENTICALLY', 'NO_REFERENCE', 'NEW', 'FIXED', 'UNCHANGED_PASS'];
const classTag = (c, label) => h`<span class="change c-${String(c).toLowerCase()}">${label ?? String(c).toLowerCase().replace(/_/g, ' ')}</span>`;
function changeBadges(comparison) {
  if (!comparison) return '';
  return h`${comparison.broken ? h` <span class="change c-broken" title="tests that pass in the run it is compared with and fail here">+${comparison.broken} broken</span>` : ''}${comparison.fixed ? h` <span class="change c-fixed" title="tests that failed in the run it is compared with and pass here">${comparison.fixed} fixed</span>` : ''}`;
}
const passBadge = (passed) => (passed ? raw('<span class="badge pass">pass</span>') : raw('<span class="badge fail">fail</span>'));
const isFinal = (status) => FINAL.has(status);

/* ---------- messages ---------- */

class ApiError extends Error {
  constructor(messages, codes = [], status = 0) {
    super(messages.join('; '));
    this.codes = codes;
    this.auth = status === 401 || codes.includes('UNAUTHENTICATED') || codes.includes('FORBIDDEN');
  }
}

/** Show text (and nodes, e.g. a link) in the message area. */
function say(parts, { error = false } = {}) {
  const m = $('#message');
  m.replaceChildren(...[].concat(parts));
  m.className = `message ${error ? 'error' : 'ok'}`;
  m.hidden = false;
}

function showError(err) {
  console.error(err);
  let text = err instanceof ApiError ? err.message : `Something went wrong: ${err?.message ?? err}`;
  if (err?.auth) text += ' — enter a token with the needed scope in the Token field at the top.';
  say(text, { error: true });
}

/* ---------- API ---------- */

function token() { return localStorage.getItem(TOKEN_KEY) || ''; }

/** Who is signed in with GitHub (GET /auth/me), once known. */
let ME = null;

/** A token wins; else a signed-in person's requests carry the session's CSRF token. */
function authHeaders(extra = {}) {
  const t = token();
  if (t) return { ...extra, Authorization: `Bearer ${t}` };
  return ME?.csrfToken ? { ...extra, 'X-CSRF-Token': ME.csrfToken } : extra;
}

async function gql(query, variables = {}) {
  let res;
  try {
    res = await fetch('/graphql', {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/json', Accept: 'application/json' }),
      body: JSON.stringify({ query, variables }),
    });
  } catch (e) {
    throw new ApiError([`cannot reach the API (${e.message})`]);
  }
  let body = null;
  try { body = await res.json(); } catch { /* an HTML or empty error page */ }
  if (body?.errors?.length) {
    throw new ApiError(
      body.errors.map((e) => e.message),
      body.errors.map((e) => e.extensions?.code).filter(Boolean),
      res.status,
    );
  }
  if (!res.ok || !body?.data) {
    throw new ApiError([body?.error || `the API answered HTTP ${res.status}`], [], res.status);
  }
  return body.data;
}

/** Files need the same Authorization header as the API when anonymous read is off. */
async function fetchFile(url) {
  let res;
  try {
    res = await fetch(safeUrl(url), { headers: authHeaders() });
  } catch (e) {
    throw new ApiError([`cannot fetch ${url} (${e.message})`]);
  }
  if (!res.ok) {
    let detail = '';
    try { detail = (await res.json()).error || ''; } catch { /* not JSON */ }
    throw new ApiError([detail || `fetching ${url} answered HTTP ${res.status}`], [], res.status);
  }
  return res;
}

async function download(url, name) {
  const blob = await (await fetchFile(url)).blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = name || 'download';
  document.body.append(a);
  a.click();
  a.remove();
  // Revoking at once can cancel the download in some browsers.
  setTimeout(() => URL.revokeObjectURL(href), 60000);
}

/** The first `limit` bytes as text, without reading the rest of a large file. */
async function fetchHead(url, limit) {
  const res = await fetchFile(url);
  const reader = res.body?.getReader?.();
  let data;
  let cut = false;
  if (!reader) {
    const blob = await res.blob();
    cut = blob.size > limit;
    data = new Uint8Array(await blob.slice(0, limit).arrayBuffer());
  } else {
    const chunks = [];
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
      if (n > limit) { cut = true; reader.cancel().catch(() => {}); break; }
    }
    data = new Uint8Array(Math.min(n, limit));
    let at = 0;
    for (const c of chunks) {
      const take = Math.min(c.length, data.length - at);
      data.set(c.subarray(0, take), at);
      at += take;
      if (at >= data.length) break;
    }
  }
  return { text: new TextDecoder().decode(data), cut };
}

/* ---------- subscriptions (graphql-transport-ws) ---------- */

const liveSubs = new Set();

function updateLive() {
  const el = $('#live');
  if (!liveSubs.size) { el.hidden = true; return; }
  const ok = [...liveSubs].every((s) => s.acked);
  el.hidden = false;
  el.className = `live ${ok ? 'on' : 'off'}`;
  el.textContent = ok ? 'live' : 'reconnecting…';
  el.title = ok ? 'Receiving run changes as they happen' : 'The live connection dropped; retrying';
}

/**
 * Subscribe over /graphql/ws; reconnects with backoff. `resync` runs on every
 * (re)connection: changes made before the subscription started, or while it
 * was disconnected, were never pushed and must be read again.
 * Returns a function that ends the subscription.
 */
function subscribe(query, variables, onNext, { resync } = {}) {
  const sub = { acked: false };
  let ws = null;
  let stopped = false;
  let failures = 0;
  let timer = null;
  liveSubs.add(sub);

  const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/graphql/ws`;
  const send = (msg) => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(msg));

  function connect() {
    ws = new WebSocket(url, 'graphql-transport-ws');
    ws.onopen = () => send({ type: 'connection_init', payload: token() ? { token: token() } : {} });
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === 'connection_ack') {
        failures = 0;
        sub.acked = true;
        updateLive();
        send({ id: '1', type: 'subscribe', payload: { query, variables } });
        if (resync) resync();
      } else if (msg.type === 'next') {
        const p = msg.payload || {};
        if (p.errors?.length) showError(new ApiError(p.errors.map((e) => e.message), p.errors.map((e) => e.extensions?.code).filter(Boolean)));
        if (p.data) onNext(p.data);
      } else if (msg.type === 'error') {
        // The server refused the operation; retrying would be refused again.
        const errs = Array.isArray(msg.payload) ? msg.payload : [msg.payload];
        showError(new ApiError(errs.map((e) => `live updates: ${e?.message ?? e}`), errs.map((e) => e?.extensions?.code).filter(Boolean)));
      } else if (msg.type === 'ping') {
        send({ type: 'pong' });
      }
    };
    ws.onclose = (ev) => {
      sub.acked = false;
      if (stopped) return;
      updateLive();
      if (ev.code === 4401 || ev.code === 4403) {
        showError(new ApiError([`live updates refused: ${ev.reason || 'not authorised'}`], ['UNAUTHENTICATED']));
        return;
      }
      const delay = Math.min(30000, 1000 * 2 ** failures) * (0.75 + Math.random() / 2);
      failures += 1;
      timer = setTimeout(connect, delay);
    };
  }
  connect();

  return () => {
    stopped = true;
    clearTimeout(timer);
    liveSubs.delete(sub);
    updateLive();
    try { ws.close(1000); } catch { /* already closed */ }
  };
}

/* ---------- page lifecycle and actions ---------- */

let cleanups = [];
let actions = {};
let generation = 0;

function onLeave(fn) { cleanups.push(fn); }

/** Runs `fn` at most once per `ms`, for refetching after bursts of changes. */
function debounced(fn, ms) {
  let t = null;
  onLeave(() => clearTimeout(t));
  return () => { clearTimeout(t); t = setTimeout(fn, ms); };
}

const common = {
  download: (el) => download(el.dataset.url || el.getAttribute('href'), el.dataset.name),
};

document.addEventListener('click', async (e) => {
  const el = e.target.closest('[data-action]');
  const fn = el && (actions[el.dataset.action] || common[el.dataset.action]);
  if (!fn) return;
  e.preventDefault();
  if (el.tagName === 'BUTTON') el.disabled = true;
  try {
    await fn(el);
  } catch (err) {
    showError(err);
  } finally {
    if (el.tagName === 'BUTTON') el.disabled = false;
  }
});

/** Ask for a reason; null when the operator cancelled the prompt. */
function askReason(question) {
  const answer = window.prompt(question);
  if (answer === null) return null;
  if (!answer.trim()) {
    say('Nothing done: a reason is required.', { error: true });
    return null;
  }
  return answer.trim();
}

function route() {
  cleanups.splice(0).forEach((fn) => fn());
  actions = {};
  generation += 1;
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const app = $('#app');
  let m;
  let nav = '';
  if (path === '/') { nav = 'runs'; runsPage(app); }
  else if ((m = path.match(/^\/runs\/([^/]+)$/))) {
    nav = 'runs';
    const at = Number.parseInt(new URLSearchParams(location.search).get('at') ?? '', 10);
    if (Number.isInteger(at)) runAsOfPage(app, decodeURIComponent(m[1]), at);
    else runPage(app, decodeURIComponent(m[1]));
  }
  else if (path === '/audit') { nav = 'audit'; auditPage(app); }
  else if (path === '/queue') { nav = 'queue'; queuePage(app); }
  else if ((m = path.match(/^\/tests\/(.+)$/))) { nav = 'catalogue'; testPage(app, decodeURIComponent(m[1])); }
  else if (path === '/catalogue') { nav = 'catalogue'; cataloguePage(app); }
  else setHtml(app, h`<h1>Not found</h1><p>No page at <code>${path}</code>. <a href="/">Runs</a></p>`);
  document.querySelectorAll('[data-nav]').forEach((a) => {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
}

/** Whether the page that started an async load is still the one shown. */
function stillOn(gen) { return gen === generation; }

/* ---------- signing in ---------- */

async function setupPerson() {
  const slot = $('#person');
  try {
    ME = await (await fetch('/auth/me', { headers: { Accept: 'application/json' } })).json();
  } catch {
    ME = null;
  }
  document.body.dataset.role = ME?.role || '';
  if (ME?.login) {
    slot.innerHTML = `<span id="signed-in">Signed in as <strong>@${esc(ME.login)}</strong> <span class="muted">(${esc(ME.role)})</span></span>
      <button id="sign-out" type="button">Sign out</button>`;
    $('#sign-out').addEventListener('click', async () => {
      const res = await fetch('/auth/logout', { method: 'POST', headers: authHeaders() });
      if (!res.ok) {
        say(`Signing out failed: HTTP ${res.status}`);
        return;
      }
      ME = null;
      await setupPerson();
      say('Signed out.');
      route();
    });
  } else if (ME?.signInAvailable) {
    const next = encodeURIComponent(location.pathname + location.search);
    slot.innerHTML = `<a id="sign-in" href="/auth/login?next=${next}">Sign in with GitHub</a>`;
  } else {
    slot.innerHTML = '';
  }
}

/* ---------- token control ---------- */

function setupToken() {
  const input = $('#token');
  input.value = token();
  const mark = () => document.body.classList.toggle('has-token', Boolean(token()));
  mark();
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = input.value.trim();
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
    mark();
    say(value ? 'Token saved.' : 'Token cleared.');
    // Reload the data: what is readable (and the live connection's identity) may change.
    route();
  });
  $('#clear-token').addEventListener('click', () => {
    localStorage.removeItem(TOKEN_KEY);
    input.value = '';
    mark();
    say('Token cleared.');
    route();
  });
}

/* ---------- runs list ---------- */

const FILTER_KEYS = ['platform', 'status', 'repository', 'branch', 'pullRequest', 'commitPrefix'];

function readFilter() {
  const q = new URLSearchParams(location.search);
  const f = {};
  for (const k of ['platform', 'repository', 'branch', 'commitPrefix']) {
    const v = q.get(k)?.trim();
    if (v) f[k] = v;
  }
  const status = q.get('status')?.trim().toUpperCase();
  if (STATUSES.includes(status)) f.status = status;
  const outcome = q.get('outcome')?.trim().toUpperCase();
  if (outcome in OUTCOMES) f.outcome = outcome;
  const pr = Number.parseInt(q.get('pullRequest') ?? '', 10);
  if (Number.isInteger(pr)) f.pullRequest = pr;
  return f;
}

function filterForm(f) {
  const field = (name, label, attrs = '') =>
    h`<label>${label} <input name="${name}" value="${f[name] ?? ''}" ${raw(attrs)}></label>`;
  return h`
    <form id="filter" class="filter" role="search">
      ${field('platform', 'Platform')}
      <label>Outcome <select name="outcome">
        <option value="">any</option>
        ${Object.keys(OUTCOMES).map((o) => h`<option value="${o}" ${o === f.outcome ? raw('selected') : ''}>${o.toLowerCase()}</option>`)}
      </select></label>
      ${field('repository', 'Repository', 'placeholder="owner/name"')}
      ${field('branch', 'Branch')}
      ${field('pullRequest', 'PR', 'type="number" min="1" class="narrow"')}
      ${field('commitPrefix', 'Commit', 'placeholder="sha prefix" pattern="[0-9a-fA-F]{1,40}" class="narrow"')}
      <button type="submit">Filter</button>
      <a href="/">clear</a>
    </form>`;
}

function runCells(run) {
  let took = dash;
  if (run.startedAt && run.finishedAt) took = runtime(Date.parse(run.finishedAt) - Date.parse(run.startedAt));
  else if (run.startedAt && !isFinal(run.status)) took = since(run.startedAt, { format: 'duration' });
  let result = dash;
  if (run.verdict) result = h`<span class="muted">${run.passed ?? 0}✓ ${run.failed ?? 0}✗</span>${changeBadges(run.comparison)}`;
  else if (!isFinal(run.status) && run.samplesTotal) result = h`<span class="muted">${run.samplesDone}/${run.samplesTotal}</span>`;
  return h`
    <td>${runLink(run.id)}</td>
    <td data-field="outcome">${outcomeBadge(run.outcome)}</td>
    <td data-field="stage">${run.stage}</td>
    <td>${run.platform}</td>
    <td>${run.repository}</td>
    <td>${commitLink(run.repository, run.commitSha)}</td>
    <td>${prOrBranch(run)}</td>
    <td>${result}</td>
    <td>${when(run.queuedAt)}</td>
    <td>${took}</td>`;
}

/** A contributor's own run: shown to a person whose role allows it. */
function customRunForm() {
  if (!ME?.login || !['contributor', 'maintainer', 'admin'].includes(ME.role)) return '';
  return h`<details id="custom-run" class="custom-run"><summary>Queue a custom run of your fork</summary>
    <form id="custom-form" class="filter">
      <label>Repository <input name="repository" placeholder="${ME.login}/ccextractor" required></label>
      <label>Commit <input name="commitSha" placeholder="full SHA" required spellcheck="false"></label>
      <label>Platforms <input name="platforms" placeholder="all"></label>
      <label>Tests <input name="tests" placeholder="test ids, comma-separated"></label>
      <label>Categories <input name="categories" placeholder="categories, comma-separated"></label>
      <button type="submit">Queue</button>
    </form>
    <p class="muted">Runs the chosen regression tests on a commit of your own fork. GitHub is told nothing.</p>
  </details>`;
}

async function queueCustomRun(form) {
  const list = (name) => String(new FormData(form).get(name) || '').split(',').map((v) => v.trim()).filter(Boolean);
  const one = (name) => String(new FormData(form).get(name) || '').trim();
  try {
    const data = await gql(`mutation($r:String!,$c:String!,$p:[String!],$t:[String!]!,$k:[String!]!){
      queueCustomRun(repository:$r,commitSha:$c,platforms:$p,tests:$t,categories:$k)}`,
    { r: one('repository'), c: one('commitSha'), p: list('platforms').length ? list('platforms') : null, t: list('tests'), k: list('categories') });
    const ids = data.queueCustomRun;
    say(`Queued ${ids.length} custom run${ids.length === 1 ? '' : 's'}.`);
    history.pushState(null, '', `/runs/${encodeURIComponent(ids[0])}`);
    route();
  } catch (e) {
    showError(e);
  }
}

async function runsPage(app) {
  const gen = generation;
  const filter = readFilter();
  setHtml(app, h`
    <h1>Runs</h1>
    ${customRunForm()}
    ${filterForm(filter)}
    <div class="scroll"><table class="runs">
      <thead><tr><th>Run</th><th>Outcome</th><th>Stage</th><th>Platform</th><th>Repository</th>
        <th>Commit</th><th>PR / branch</th><th>Result</th><th>Queued</th><th>Duration</th></tr></thead>
      <tbody id="runs-body"></tbody>
    </table></div>
    <p id="runs-empty" class="muted" hidden>No runs match.</p>
    <p><button id="older" data-action="older" hidden>Older runs</button></p>`);

  $('#custom-form')?.addEventListener('submit', (e) => {
    e.preventDefault();
    queueCustomRun(e.target);
  });
  $('#filter').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(e.target)) if (String(v).trim()) q.set(k, String(v).trim());
    const search = q.toString();
    history.pushState(null, '', search ? `/?${search}` : '/');
    route();
  });

  const body = $('#runs-body');
  const page = { cursor: null, hasNext: false };
  const Q = `query($first:Int,$after:String,$filter:RunFilter){runs(first:$first,after:$after,filter:$filter){
    pageInfo{hasNextPage endCursor} nodes{${RUN_FIELDS}}}}`;

  const rowOf = (id) => body.querySelector(`tr[data-run-id="${CSS.escape(id)}"]`);
  const fill = (tr, run) => {
    tr.dataset.queuedAt = run.queuedAt;
    tr.dataset.version = run.version;
    tr.className = `st-${run.status.toLowerCase()}`;
    setHtml(tr, runCells(run));
  };
  const newRow = (run) => {
    const tr = document.createElement('tr');
    tr.dataset.runId = run.id;
    fill(tr, run);
    return tr;
  };
  const showEmpty = () => { $('#runs-empty').hidden = body.rows.length > 0; };

  function upsert(run, { live = false } = {}) {
    const tr = rowOf(run.id);
    // A run that left the status filter would otherwise linger with a stale status.
    if ((filter.status && run.status !== filter.status) || (filter.outcome && run.outcome !== filter.outcome)) {
      tr?.remove();
      showEmpty();
      return;
    }
    if (tr) {
      if (Number(tr.dataset.version) > run.version) return; // an older view arriving late
      fill(tr, run);
      if (live) flash(tr);
      return;
    }
    // Rows are newest first; one older than every loaded row belongs to a later page.
    const t = Date.parse(run.queuedAt);
    const before = [...body.rows].find((r) => Date.parse(r.dataset.queuedAt) < t);
    if (!before && page.hasNext && live) return;
    const row = newRow(run);
    body.insertBefore(row, before || null);
    if (live) flash(row);
    showEmpty();
  }

  async function loadPage(after) {
    const data = await gql(Q, { first: PAGE_SIZE, after, filter });
    if (!stillOn(gen)) return;
    const conn = data.runs;
    if (!after) { page.hasNext = conn.pageInfo.hasNextPage; page.cursor = conn.pageInfo.endCursor; }
    for (const run of conn.nodes) upsert(run);
    if (after) { page.hasNext = conn.pageInfo.hasNextPage; page.cursor = conn.pageInfo.endCursor; }
    $('#older').hidden = !page.hasNext;
    showEmpty();
  }

  actions.older = () => loadPage(page.cursor);

  try {
    await loadPage(null);
  } catch (e) {
    showError(e);
    return;
  }
  if (!stillOn(gen)) return;
  // Without the status filter: a run leaving that status must still arrive, to be removed.
  const { status: _status, outcome: _outcome, ...liveFilter } = filter;
  onLeave(subscribe(
    `subscription($filter:RunFilter){runChanged(filter:$filter){${RUN_FIELDS}}}`,
    { filter: liveFilter },
    (data) => upsert(data.runChanged, { live: true }),
    { resync: () => gql(Q, { first: PAGE_SIZE, filter }).then((d) => d.runs.nodes.forEach((r) => upsert(r))).catch(showError) },
  ));
}

function flash(el) {
  el.classList.remove('flash');
  void el.offsetWidth; // restart the animation
  el.classList.add('flash');
}

window.addEventListener('popstate', route);

/* ---------- run page ---------- */

/**
 * What the latest problem means now: a run still waiting for its build or a
 * VM is waiting on it; one that went on retried past it; only a completed
 * run recovered from it.
 */
function problemLabel(run) {
  if (run.status === 'COMPLETED') return 'Recovered from';
  if (isFinal(run.status)) return 'Last problem';
  if (run.stage === 'awaiting_artifact' || run.stage === 'awaiting_vm') return 'Waiting after';
  return 'Retrying after';
}

/** "about 3 min left" (testing once queued), from the remaining tests' recent runtimes. */
function etaText(estimate, status) {
  if (!estimate) return '';
  const guess = estimate.unknown
    ? `; ${estimate.unknown} of the remaining tests never ran on this platform and count at the others' median`
    : '';
  return h`<span id="eta" title="the median of each remaining test's last runs on this platform, summed${guess}">${status === 'QUEUED'
    ? h`testing takes about ${runtime(estimate.remainingMs)}`
    : h`about ${runtime(estimate.remainingMs)} left`}</span>`;
}

function runHead(run, estimate = null, { asOf = null } = {}) {
  const final = isFinal(run.status);
  const acts = asOf != null ? '' : final
    ? raw('<button class="op" data-action="rerun" title="Queue a new run of this commit on this platform with the regression catalogue as it is now (not the snapshot this run used).">Run again</button>')
    : raw('<button class="op danger" data-action="cancel">Cancel…</button>');
  const total = run.startedAt && run.finishedAt
    ? runtime(Date.parse(run.finishedAt) - Date.parse(run.startedAt))
    : run.startedAt && !final ? since(run.startedAt, { format: 'duration' }) : dash;
  const pct = run.samplesTotal ? Math.round((100 * run.samplesDone) / run.samplesTotal) : 0;
  return h`
    <header class="run-head">
      <h1>Run <code title="${run.id}">${runTag(run.id)}</code> ${outcomeBadge(run.outcome)}
        <span class="muted outcome-words">${OUTCOMES[run.outcome] ?? ''}</span></h1>
      <div class="actions">${acts}</div>
    </header>
    ${run.finalReason ? h`<p class="callout bad"><strong>${run.status === 'COMPLETED' ? 'Note' : 'Why it ended'}:</strong> ${run.finalReason}</p>` : ''}
    ${run.lastProblem ? h`<p class="callout warn" id="last-problem"><strong>${problemLabel(run)}:</strong> ${run.lastProblem}</p>` : ''}
    ${run.supersededBy ? h`<p class="callout">Superseded by run ${runLink(run.supersededBy, run.supersededBy)}</p>` : ''}
    ${final ? '' : h`
      <div class="progress-box">
        <progress max="${run.samplesTotal || 1}" value="${run.samplesDone}" aria-label="samples done">${pct}%</progress>
        <span>stage <strong>${run.stage}</strong>, attempt ${run.attempt}</span>
        ${etaText(estimate, run.status)}
        ${run.deadlineAt ? h`<span class="muted">deadline ${run.deadlineKind ?? ''} ${when(run.deadlineAt)}</span>` : ''}
      </div>`}
    <dl class="facts">
      <dt>Repository</dt><dd><a href="https://github.com/${run.repository}">${run.repository}</a></dd>
      <dt>Commit</dt><dd>${commitLink(run.repository, run.commitSha)}</dd>
      <dt>PR / branch</dt><dd>${prOrBranch(run)}</dd>
      <dt>Platform</dt><dd>${run.platform}</dd>
      <dt>Verdict</dt><dd><span id="verdict" class="verdict v-${run.verdict ?? 'none'}">${run.verdict ?? ''}</span>
        ${run.verdict ? h` <span class="muted">${run.passed ?? 0} passed, ${run.failed ?? 0} failed</span>` : ''}</dd>
      <dt>Samples</dt><dd><span id="progress">${run.samplesDone}/${run.samplesTotal}</span></dd>
      <dt>Stage</dt><dd>${run.stage} <span class="muted">(attempt ${run.attempt})</span></dd>
      <dt>Trigger</dt><dd>${run.trigger === 'custom' ? h`custom run by @${run.requestedBy}` : h`${run.trigger}${run.requestedBy ? h` by ${run.requestedBy}` : ''}`}${run.priority ? h` <span class="muted">priority ${run.priority}</span>` : ''}</dd>
      <dt>Queued</dt><dd>${when(run.queuedAt)}</dd>
      <dt>Started</dt><dd>${when(run.startedAt)}</dd>
      <dt>Finished</dt><dd>${when(run.finishedAt)}</dd>
      <dt>Duration</dt><dd>${total}</dd>
      ${run.vmName ? h`<dt>VM</dt><dd><code>${run.vmName}</code></dd>` : ''}
    </dl>`;
}

async function runPage(app, id) {
  const gen = generation;
  setHtml(app, h`
    <article id="run" data-status="">
      <div id="run-head"><p class="muted">Loading run…</p></div>
      <section class="block">
        <h2>Results</h2>
        <div id="results"><p class="muted">Loading…</p></div>
      </section>
      <section id="diff" class="block diff" hidden></section>
      <section class="block"><h2>Runner files</h2><div id="files"><p class="muted">Loading…</p></div></section>
      <section class="block"><h2>Audit trail</h2><ol id="audit" class="audit"></ol></section>
    </article>`);

  let run;
  try {
    // A run queued a moment ago (from this page's own form, say) may not
    // be in the read models yet: ask again for a few seconds before saying
    // there is none.
    for (let tries = 0; ; tries += 1) {
      run = (await gql(`query($id:ID!){run(id:$id){${RUN_FIELDS}}}`, { id })).run;
      if (run || tries >= 15 || !stillOn(gen)) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (e) {
    setHtml($('#run-head'), h`<h1>Run <code>${id}</code></h1><p class="callout bad">The run could not be loaded.</p>`);
    showError(e);
    return;
  }
  if (!stillOn(gen)) return;
  if (!run) {
    setHtml($('#run'), h`<h1>No such run</h1><p>There is no run <code>${id}</code>. <a href="/">All runs</a></p>`);
    return;
  }

  // The runner's files, fetched once per load for both the results (stderr
  // tails) and the file list; stderr tails read once per page.
  const page = { id, run, gen, files: null, tails: new Map(), estimate: null };
  const refreshFiles = () => {
    page.files = gql('query($id:ID!){runFiles(runId:$id){attempt name sizeBytes url}}', { id })
      .then((d) => d.runFiles);
  };
  const show = () => {
    $('#run').dataset.status = page.run.status;
    setHtml($('#run-head'), runHead(page.run, isFinal(page.run.status) ? null : page.estimate));
    document.title = `Run ${runTag(id)} ${page.run.status} — Sample Platform`;
  };
  // While it runs: how long it has left, refreshed with its results.
  const loadEstimate = async () => {
    if (isFinal(page.run.status)) return;
    try {
      const data = await gql('query($id:ID!){run(id:$id){estimate{remainingMs known unknown}}}', { id });
      page.estimate = data.run?.estimate ?? null;
    } catch {
      page.estimate = null;
    }
    if (stillOn(gen)) show();
  };
  show();
  loadEstimate();
  refreshFiles();
  loadResults(page);
  loadFiles(page);
  loadAudit(page);

  const refreshLive = debounced(() => { loadResults(page); loadAudit(page); loadEstimate(); }, 2000);
  const refreshAudit = debounced(() => loadAudit(page), 2000);

  const apply = (next) => {
    if (next.id !== id || next.version < page.run.version) return;
    const wasFinal = isFinal(page.run.status);
    page.run = next;
    show();
    if (!wasFinal && isFinal(next.status)) { refreshFiles(); loadResults(page); loadFiles(page); loadAudit(page); }
    else if (!isFinal(next.status)) refreshLive();
    else refreshAudit();
  };

  const reload = async () => {
    const fresh = (await gql(`query($id:ID!){run(id:$id){${RUN_FIELDS}}}`, { id })).run;
    if (fresh && stillOn(gen)) apply(fresh);
  };

  actions = {
    cancel: async () => {
      const reason = askReason(`Cancel run ${runTag(id)}? Why:`);
      if (reason === null) return;
      const done = (await gql('mutation($id:ID!,$r:String!){cancelRun(id:$id,reason:$r)}', { id, r: reason })).cancelRun;
      say(done ? `cancelled run ${id}` : `run ${id} was already finished; nothing cancelled`);
      await reload();
    },
    rerun: async () => {
      const newId = (await gql('mutation($id:ID!){retryRun(id:$id,currentCatalogue:true)}', { id })).retryRun;
      const a = document.createElement('a');
      a.dataset.link = 'new-run';
      a.href = `/runs/${encodeURIComponent(newId)}`;
      a.textContent = newId;
      say(['queued run ', a]);
    },
    diff: (el) => showDiff(page, el.dataset.testId, el.dataset.output),
    'close-diff': () => { const d = $('#diff'); d.hidden = true; d.replaceChildren(); },
    'accept-variant': (el) => accept(page, el, false),
    'accept-baseline': (el) => accept(page, el, true),
    'show-file': (el) => toggleFile(el),
  };
  // A change listener, not an action: the click handler would prevent the checkbox's own toggle.
  $('#results').addEventListener('change', (e) => {
    if (e.target.matches('[name="failures-only"]')) $('#results').classList.toggle('failures-only', e.target.checked);
  });

  if (!isFinal(run.status)) {
    onLeave(subscribe(
      `subscription($id:ID!){runChanged(runId:$id){${RUN_FIELDS}}}`,
      { id },
      (data) => apply(data.runChanged),
      { resync: () => reload().catch(showError) },
    ));
  }
}

/* ----- results ----- */

function asJson(v) {
  if (typeof v !== 'string') return v;
  try { return JSON.parse(v); } catch { return v; }
}

// What each test kind does, in words (the domain's `kinds`).
const TEST_KIND_WORDS = {
  input: {
    file: 'file (its path on the command line)',
    stdin: 'standard input',
    udp: 'UDP datagrams to {port}, once the program listens',
  },
  output: {
    file: 'the named files',
    stdout: 'standard output',
    report: 'a report on standard output',
    null: 'none: the exit code is the verdict',
    cea708: 'one file per CEA-708 service',
    multiprogram: 'one file per program',
    tcp: 'what the program sends to a TCP server on {port}',
  },
};

function mismatchWords(m) {
  switch (m?.kind) {
    case 'exit_code': return `exit code ${m.actual}, expected ${m.expected}`;
    case 'output_differs': return `output ${m.output} differs`;
    case 'output_missing': return `output ${m.output} missing`;
    case 'output_extra': return `output ${m.output} written but not expected`;
    case 'output_too_large': return `output ${m.output} larger than the ${Math.floor(m.limit_bytes / 1048576)} MiB kept`;
    case 'input_not_delivered': return `input not delivered: ${m.reason}`;
    case 'timed_out': return 'timed out';
    case 'no_result': return 'no result reported';
    default: return typeof m === 'string' ? m : JSON.stringify(m);
  }
}

// How much of a failing test's stderr is read for its tail, and shown.
const STDERR_READ_BYTES = 256 * 1024;
const STDERR_TAIL_LINES = 30;

function outcomeRow(t, stderr, change) {
  const mismatches = [].concat(asJson(t.mismatches) ?? []);
  const problems = mismatches.map((m) => h`<li>${mismatchWords(m)}${m?.kind === 'output_differs'
    ? h` <button class="small" data-action="diff" data-test-id="${t.testId}" data-output="${m.output}">diff</button>`
    : ''}</li>`);
  return h`
    <tr id="test-${t.testId}" data-test-id="${t.testId}" data-passed="${t.passed ? 'true' : 'false'}" class="${t.passed ? 'pass' : 'fail'}">
      <td>${testLink(t.testId)}</td>
      <td>${t.categories.map((c) => h`<span class="tag">${c}</span> `)}</td>
      <td>${passBadge(t.passed)}</td>
      <td>${change ? classTag(change) : ''}</td>
      <td class="num">${t.exitCode}</td>
      <td class="num">${runtime(t.runtimeMs)}</td>
      <td>${problems.length ? h`<ul class="problems">${problems}</ul>` : ''}</td>
    </tr>
    ${!t.passed && (stderr || t.reproduce) ? h`
    <tr class="failure-detail fail" data-detail-for="${t.testId}">
      <td colspan="7">
        ${t.reproduce ? h`<div class="reproduce"><span class="muted">reproduce locally, from a directory holding your build of this commit and the sample:</span>
          <pre><code>${t.reproduce}</code></pre></div>` : ''}
        ${stderr ? h`<div class="stderr-tail"><span class="muted">standard error, last lines
        (<a href="${safeUrl(stderr.url)}" data-action="download" data-url="${stderr.url}" data-name="attempt${stderr.attempt}-${stderr.name}">${stderr.name}</a>, ${bytes(stderr.sizeBytes)})</span>
        <pre data-url="${stderr.url}" data-size="${stderr.sizeBytes}">…</pre></div>` : ''}
      </td>
    </tr>` : ''}`;
}

/** Fill each failure's stderr tail; the first 20 failures only, one at a time. */
async function loadStderrTails(page) {
  const tails = [...document.querySelectorAll('#results .stderr-tail pre')];
  for (const pre of tails.slice(20)) pre.textContent = 'Not loaded (only the first 20 failures are); download the file.';
  for (const pre of tails.slice(0, 20)) {
    if (!stillOn(page.gen)) return;
    try {
      const { url } = pre.dataset;
      if (!page.tails.has(url)) page.tails.set(url, fetchHead(url, STDERR_READ_BYTES));
      const { text, cut } = await page.tails.get(url);
      if (!stillOn(page.gen)) return;
      const lines = text.replace(/\n$/, '').split('\n');
      pre.textContent = lines.slice(-STDERR_TAIL_LINES).join('\n');
      if (cut) {
        const note = document.createElement('p');
        note.className = 'muted';
        note.textContent = `These are the last lines of its first ${bytes(STDERR_READ_BYTES)} of ${bytes(Number(pre.dataset.size))}; download the file for the rest.`;
        pre.after(note);
      }
    } catch (e) {
      pre.textContent = `The file could not be read: ${e.message}`;
    }
  }
}

/** What the change did: counts per class and the run it is compared with. */
function comparisonSummary(c) {
  if (!c) return '';
  const ref = c.reference;
  return h`
    <div id="comparison" class="comparison">
      <p class="classes">${c.classes.map((g) => h`${classTag(g.class, `${g.count} ${g.label}`)} `)}</p>
      <p class="muted">${ref
        ? h`Compared with run ${runLink(ref.runId)} of ${commitLink(ref.run?.repository ?? '', ref.commit)}: ${c.note}.`
        : h`Not compared: ${c.note}.`}</p>
    </div>`;
}

/**
 * Each test once, in the order a contributor reads them: what this change
 * broke, then what fails differently, then failures it did not cause, then
 * the rest; categories as tags, a failure's stderr tail under it.
 */
function resultsTable(outcomes, files = [], comparison = null) {
  const byName = new Map(files.map((f) => [`${f.attempt}/${f.name}`, f]));
  const classOf = new Map();
  for (const g of comparison?.classes ?? []) for (const t of g.tests) classOf.set(t, g.class);
  const rank = (t) => {
    const i = CLASS_ORDER.indexOf(classOf.get(t.testId));
    return i < 0 ? CLASS_ORDER.length : i;
  };
  const sorted = [...outcomes].sort((a, b) =>
    (a.passed - b.passed) || (rank(a) - rank(b)) || a.testId.localeCompare(b.testId, undefined, { numeric: true }));
  const passed = outcomes.filter((t) => t.passed).length;
  const attempt = outcomes[0]?.attempt;
  return h`
    ${comparisonSummary(comparison)}
    <p class="summary">${outcomes.length} tests: <strong class="ok">${passed} passed,</strong>
      <strong class="${outcomes.length - passed ? 'bad' : ''}">${outcomes.length - passed} failed</strong>
      ${attempt ? h`<span class="muted">(attempt ${attempt})</span>` : ''}
      <label class="toggle"><input type="checkbox" name="failures-only"> failures only</label></p>
    <div class="scroll"><table class="results">
      <thead><tr><th>Test</th><th>Categories</th><th>Result</th><th>Change</th><th class="num">Exit</th><th class="num">Time</th><th>Why it failed</th></tr></thead>
      <tbody>${sorted.map((t) => outcomeRow(t, byName.get(`${t.attempt}/${t.stderrFile}`), classOf.get(t.testId)))}</tbody>
    </table></div>`;
}

async function loadResults(page) {
  try {
    const data = await gql(`query($id:ID!){results(runId:$id){testId attempt categories passed exitCode
      runtimeMs timedOut mismatches outputs stderrFile reproduce}
      run(id:$id){comparison{note reference{kind commit runId run{repository}} classes{class label count tests}}}}`, { id: page.id });
    // Without the file list the results still show, without stderr tails.
    const files = await page.files.catch(() => []);
    if (!stillOn(page.gen)) return;
    const el = $('#results');
    const failuresOnly = $('[name="failures-only"]', el)?.checked;
    setHtml(el, data.results.length
      ? resultsTable(data.results, files, data.run?.comparison)
      : h`<p class="muted">${isFinal(page.run.status) ? 'No test results.' : 'No results yet.'}</p>`);
    if (failuresOnly) $('[name="failures-only"]', el).checked = true;
    // A link from the pull request's comment names a test: show it.
    if (location.hash.startsWith('#test-')) {
      try { document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView(); } catch { /* a malformed link: stay at the top */ }
    }
    loadStderrTails(page);
  } catch (e) {
    if (stillOn(page.gen)) setHtml($('#results'), h`<p class="callout bad">Results could not be loaded.</p>`);
    showError(e);
  }
}

/* ----- diff ----- */

/** Side by side: a run of deletions next to the run of insertions that replaced it. */
function diffRows(lines) {
  const rows = [];
  let dels = [];
  let ins = [];
  const flush = () => {
    for (let i = 0; i < Math.max(dels.length, ins.length); i += 1) rows.push([dels[i], ins[i]]);
    dels = [];
    ins = [];
  };
  for (const line of lines) {
    if (line.kind === 'delete') dels.push(line);
    else if (line.kind === 'insert') ins.push(line);
    else { flush(); rows.push([line, line]); }
  }
  flush();
  return rows;
}

/**
 * A changed line beside the line that replaced it, its changed characters
 * marked: what lies between their common start and common end (by code
 * point, so a character is never split).
 */
function changedSpan(text, other) {
  const a = [...text];
  const b = [...other];
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let end = 0;
  while (end < a.length - start && end < b.length - start
    && a[a.length - 1 - end] === b[b.length - 1 - end]) end += 1;
  const mid = a.slice(start, a.length - end).join('');
  return h`${a.slice(0, start).join('')}${mid ? h`<mark>${mid}</mark>` : ''}${a.slice(a.length - end).join('')}`;
}

function diffTable(lines) {
  const cell = (line, side, other) => {
    if (!line) return raw('<td class="num"></td><td class="empty"></td>');
    const cls = line.kind === 'equal' ? 'eq' : side === 'left' ? 'del' : 'ins';
    const n = side === 'left' ? line.oldLine : line.newLine;
    const text = line.kind !== 'equal' && other && other.kind !== 'equal'
      ? changedSpan(line.text, other.text)
      : line.text;
    return h`<td class="num">${n ?? ''}</td><td class="${cls}">${text}</td>`;
  };
  return h`
    <div class="scroll"><table class="sbs">
      <colgroup><col class="n"><col><col class="n"><col></colgroup>
      <thead><tr><th colspan="2">expected</th><th colspan="2">produced</th></tr></thead>
      <tbody>${diffRows(lines).map(([l, r]) => h`<tr>${cell(l, 'left', r)}${cell(r, 'right', l)}</tr>`)}</tbody>
    </table></div>`;
}

async function showDiff(page, testId, output) {
  const box = $('#diff');
  box.hidden = false;
  setHtml(box, h`<h2>Diff: ${testId} — ${output}</h2><p class="muted">Loading…</p>`);
  box.scrollIntoView({ block: 'start', behavior: 'smooth' });
  let d;
  try {
    d = (await gql(`query($run:ID!,$test:String!,$out:String!){outputDiff(runId:$run,testId:$test,output:$out){
      testId output expectedSha256 producedSha256 acceptedNow expectedUrl producedUrl binary truncated note
      lines{kind oldLine newLine text}}}`, { run: page.id, test: testId, out: output })).outputDiff;
  } catch (e) {
    setHtml(box, h`<h2>Diff: ${testId} — ${output}</h2><p class="callout bad">The diff could not be loaded.</p>`);
    throw e;
  }
  const dl = (url, label, name) => (url
    ? h`<a href="${safeUrl(url)}" data-action="download" data-url="${url}" data-name="${name}">${label}</a>`
    : h`<span class="muted">${label} not stored</span>`);
  const base = output.split('/').pop();
  setHtml(box, h`
    <header class="diff-head">
      <h2>Diff: ${testLink(d.testId)} — <code>${d.output}</code></h2>
      <button class="small" data-action="close-diff">close</button>
    </header>
    <p>expected ${hash(d.expectedSha256)} · produced ${hash(d.producedSha256)}
      · ${dl(d.expectedUrl, 'download expected', `expected-${base}`)}
      · ${dl(d.producedUrl, 'download produced', `produced-${base}`)}</p>
    ${d.acceptedNow
    ? h`<p class="callout ok" id="accepted-now">Accepted: the catalogue as it is now accepts this output on ${page.run.platform}. Run the commit again to judge it by the catalogue as it is now.</p>`
    : h`<p class="actions">
      <button class="op" data-action="accept-variant" data-test-id="${d.testId}" data-output="${d.output}"
        title="Also accept this produced output on ${page.run.platform}, beside the approved one">Accept as variant…</button>
      <button class="op" data-action="accept-baseline" data-test-id="${d.testId}" data-output="${d.output}"
        title="Make this produced output the approved one on ${page.run.platform}">Accept as baseline…</button>
    </p>`}
    ${d.binary ? h`<p class="callout">The output is binary; compare the downloads.</p>` : ''}
    ${d.truncated ? h`<p class="callout warn">The diff is truncated: only its beginning is shown. Download both files for the rest.</p>` : ''}
    ${d.lines.length ? diffTable(d.lines) : h`<p class="callout">${d.note || 'There are no lines to compare.'}</p>`}`);
}

async function accept(page, el, asBaseline) {
  const { testId, output } = el.dataset;
  const what = asBaseline ? 'the approved baseline' : 'a variant';
  const reason = askReason(`Accept ${output} of ${testId} from this run as ${what} on ${page.run.platform}? Why:`);
  if (reason === null) return;
  const changed = (await gql(`mutation($run:ID!,$test:String!,$out:String!,$base:Boolean!,$r:String!){
    acceptOutput(runId:$run,testId:$test,output:$out,asBaseline:$base,reason:$r)}`,
  { run: page.id, test: testId, out: output, base: asBaseline, r: reason })).acceptOutput;
  say(changed
    ? `accepted ${output} of ${testId} as ${what} on ${page.run.platform}`
    : `${output} of ${testId} was already accepted on ${page.run.platform}; nothing changed`);
  // The row and the diff say so now, and the buttons go.
  const row = document.querySelector(`#results tr[data-test-id="${CSS.escape(testId)}"]`);
  const button = row?.querySelector(`button[data-action="diff"][data-output="${CSS.escape(output)}"]`);
  if (button && !button.nextElementSibling?.matches('.badge.accepted')) {
    button.insertAdjacentHTML('afterend', ' <span class="badge accepted" title="accepted since this run: run the commit again">accepted</span>');
  }
  await showDiff(page, testId, output);
}

/* ----- runner files ----- */

const KIND_WORDS = { ARTIFACT: 'the build artifact', OUTPUT: 'produced outputs', LOG: "the runner's files" };

/** What retention deleted of a run's files, in a sentence per kind. */
function retentionNote(records) {
  if (!records.length) return '';
  return h`<div class="callout" id="retention">${records.map((r) => h`
    <p data-kind="${r.kind}"><strong>Deleted by retention</strong> ${when(r.deletedAt)}: ${KIND_WORDS[r.kind] ?? r.kind},
      ${r.deleted} deleted${r.kept ? `, ${r.kept} kept because another run or the catalogue still needs ${r.kept === 1 ? 'it' : 'them'}` : ''}.
      <span class="muted">${r.policy.charAt(0).toUpperCase()}${r.policy.slice(1)}.</span></p>`)}</div>`;
}

async function loadFiles(page) {
  try {
    const [files, kept] = await Promise.all([
      page.files,
      gql('query($id:ID!){run(id:$id){retention{kind deleted kept deletedAt policy}}}', { id: page.id })
        .then((d) => d.run?.retention ?? []),
    ]);
    if (!stillOn(page.gen)) return;
    const logsGone = kept.some((r) => r.kind === 'LOG');
    setHtml($('#files'), files.length ? h`
      <table class="files">
        <thead><tr><th class="num">Attempt</th><th>File</th><th class="num">Size</th><th></th></tr></thead>
        <tbody>${files.map((f) => h`
          <tr><td class="num">${f.attempt}</td><td><code>${f.name}</code></td><td class="num">${bytes(f.sizeBytes)}</td>
            <td><button class="small" data-action="show-file" data-url="${f.url}" data-size="${f.sizeBytes}" aria-expanded="false">show</button>
              <a href="${safeUrl(f.url)}" data-action="download" data-url="${f.url}" data-name="attempt${f.attempt}-${f.name}">download</a></td></tr>
          <tr class="file-view" hidden><td colspan="4"><pre></pre></td></tr>`)}
        </tbody>
      </table>${retentionNote(kept)}` : logsGone ? retentionNote(kept)
      : h`<p class="muted">${isFinal(page.run.status) ? 'The runner uploaded no files.' : 'No files yet.'}</p>${retentionNote(kept)}`);
  } catch (e) {
    if (stillOn(page.gen)) setHtml($('#files'), h`<p class="callout bad">The file list could not be loaded.</p>`);
    showError(e);
  }
}

async function toggleFile(button) {
  const view = button.closest('tr').nextElementSibling;
  const pre = $('pre', view);
  if (!view.hidden) {
    view.hidden = true;
    button.textContent = 'show';
    button.setAttribute('aria-expanded', 'false');
    return;
  }
  if (!pre.dataset.loaded) {
    const { text, cut } = await fetchHead(button.dataset.url, PREVIEW_BYTES);
    pre.textContent = text;
    pre.dataset.loaded = '1';
    if (cut) {
      const note = document.createElement('p');
      note.className = 'muted';
      note.textContent = `Showing the first 64 KiB of ${bytes(Number(button.dataset.size))}; download the file for the rest.`;
      pre.after(note);
    }
  }
  view.hidden = false;
  button.textContent = 'hide';
  button.setAttribute('aria-expanded', 'true');
}

/* ----- audit trail ----- */

/** An audit entry's stream, linked where a page shows it. */
function streamLink(stream) {
  const run = stream.match(/^run-(.+)$/);
  if (run) return runLink(run[1], `run ${runTag(run[1])}`);
  return h`<a href="/audit?stream=${encodeURIComponent(stream)}"><code>${stream}</code></a>`;
}

/** An entry's subject (`test:<id>`, …), linked to the test's page when it is one. */
function subjectLink(subject) {
  if (!subject) return '';
  const test = subject.match(/^test:(.+)$/);
  return test ? testLink(test[1]) : h`<a href="/audit?subject=${encodeURIComponent(subject)}"><code>${subject}</code></a>`;
}

/** The entries of one outside request: the delivery, mutation or timer behind an event. */
const requestLink = (correlationId, text = 'same request') =>
  h`<a class="small" href="/audit?correlationId=${encodeURIComponent(correlationId)}"
    title="every event request ${correlationId} led to: the delivery that queued a run, the supersede that ended it, …">${text}</a>`;

async function loadAudit(page) {
  try {
    const trail = (await gql(`query($id:ID!){auditTrail(runId:$id){position type summary data
      metadata{actor correlationId causationId} recordedAt}}`, { id: page.id })).auditTrail;
    if (!stillOn(page.gen)) return;
    const el = $('#audit');
    // Keep opened details open across live refreshes.
    const open = new Set([...el.querySelectorAll('details[open]')].map((d) => d.closest('li').dataset.position));
    const later = (e) => page.at != null && e.position > page.at;
    setHtml(el, trail.length ? trail.map((e) => h`
      <li data-event-type="${e.type}" data-position="${e.position}" class="${later(e) ? 'later' : ''}${page.at === e.position ? ' here' : ''}">
        <div class="line">${when(e.recordedAt)} <strong class="ev">${e.type}</strong>
          <span class="actor">${e.metadata.actor}</span>
          <span class="summary">${e.summary}</span>
          <span class="links">${requestLink(e.metadata.correlationId)}
            <a class="small" data-link="as-of" href="/runs/${encodeURIComponent(page.id)}?at=${e.position}"
              title="the run as it was just after this event">as of here</a></span></div>
        <details ${open.has(String(e.position)) ? raw('open') : ''}><summary>data</summary><pre>${JSON.stringify(asJson(e.data), null, 2)}</pre></details>
      </li>`) : h`<li class="muted">No events.</li>`);
  } catch (e) {
    if (stillOn(page.gen)) setHtml($('#audit'), h`<li class="callout bad">The audit trail could not be loaded.</li>`);
    showError(e);
  }
}

/** A run as it was just after the event at position `at` of the log. */
async function runAsOfPage(app, id, at) {
  const gen = generation;
  setHtml(app, h`
    <article id="run" data-as-of="${at}">
      <p class="callout" id="as-of">The run as it was just after position ${at} of the log; events after it are greyed out below.
        <a href="/runs/${encodeURIComponent(id)}">See it now</a></p>
      <div id="run-head"><p class="muted">Loading run…</p></div>
      <section class="block"><h2>Audit trail</h2><ol id="audit" class="audit"></ol></section>
    </article>`);
  let run;
  try {
    run = (await gql(`query($id:ID!,$at:Int!){runAsOf(runId:$id,position:$at){${RUN_FIELDS}}}`, { id, at })).runAsOf;
  } catch (e) {
    setHtml($('#run-head'), h`<h1>Run <code>${id}</code></h1><p class="callout bad">The run could not be loaded.</p>`);
    showError(e);
    return;
  }
  if (!stillOn(gen)) return;
  setHtml($('#run-head'), run
    ? runHead(run, null, { asOf: at })
    : h`<h1>Run <code>${runTag(id)}</code></h1><p class="muted">The run did not exist yet at position ${at}.</p>`);
  document.title = `Run ${runTag(id)} as of ${at} — Sample Platform`;
  loadAudit({ id, gen, at });
}

/* ---------- audit log ---------- */

const AUDIT_KEYS = ['stream', 'streamPrefix', 'actor', 'subject', 'correlationId', 'types', 'from', 'to', 'fromPosition', 'toPosition'];

/** The Audit page's filter from the address: the GraphQL filter, and the form's values. */
function readAuditFilter() {
  const q = new URLSearchParams(location.search);
  const form = {};
  const filter = {};
  for (const k of AUDIT_KEYS) {
    const v = q.get(k)?.trim();
    if (!v) continue;
    form[k] = v;
    if (k === 'types') filter.types = v.split(/[\s,]+/).filter(Boolean);
    else if (k === 'fromPosition' || k === 'toPosition') {
      const n = Number.parseInt(v, 10);
      if (Number.isInteger(n)) filter[k] = n;
    } else if (k === 'from' || k === 'to') {
      const t = Date.parse(v);
      if (!Number.isNaN(t)) filter[k] = new Date(t).toISOString();
    } else filter[k] = v;
  }
  return { form, filter };
}

function auditFilterForm(f) {
  const field = (name, label, attrs = '') =>
    h`<label>${label} <input name="${name}" value="${f[name] ?? ''}" ${raw(attrs)}></label>`;
  return h`
    <form id="filter" class="filter" role="search">
      ${field('streamPrefix', 'Stream', 'placeholder="run-, catalogue, pr-, access…"')}
      ${field('actor', 'Actor', 'placeholder="github:login, user:name…"')}
      ${field('subject', 'About', 'placeholder="test:id, token:name…"')}
      ${field('types', 'Types', 'placeholder="OutputAccepted, UserBlocked…"')}
      ${field('from', 'From', 'type="datetime-local" step="1"')}
      ${field('to', 'To', 'type="datetime-local" step="1"')}
      <label>Positions <span class="pair"><input name="fromPosition" value="${f.fromPosition ?? ''}" type="number" min="1"
        class="narrow" placeholder="from" aria-label="from position"> – <input name="toPosition" value="${f.toPosition ?? ''}"
        type="number" min="1" class="narrow" placeholder="to" aria-label="to position"></span></label>
      ${f.stream ? h`<input type="hidden" name="stream" value="${f.stream}">` : ''}
      ${f.correlationId ? h`<input type="hidden" name="correlationId" value="${f.correlationId}">` : ''}
      <button type="submit">Filter</button>
      <a href="/audit">clear</a>
    </form>`;
}

function auditRows(entries) {
  return entries.map((e) => h`
    <tr data-position="${e.position}" data-event-type="${e.type}">
      <td class="num">${e.position}</td>
      <td>${when(e.recordedAt)}</td>
      <td class="what"><strong class="ev">${e.type}</strong> ${e.summary}
        <details><summary>data</summary><pre>${JSON.stringify(asJson(e.data), null, 2)}</pre></details></td>
      <td class="actor"><a href="/audit?actor=${encodeURIComponent(e.metadata.actor)}">${e.metadata.actor}</a></td>
      <td class="stream">${streamLink(e.stream)} ${subjectLink(e.subject)}</td>
      <td class="nowrap">${requestLink(e.metadata.correlationId)}</td>
    </tr>`);
}

const AUDIT_FIELDS = 'position stream type summary subject data metadata{actor correlationId} recordedAt';

async function auditPage(app) {
  const gen = generation;
  const { form, filter } = readAuditFilter();
  const narrowed = [
    form.stream ? h` in stream <code>${form.stream}</code>` : '',
    form.correlationId ? h` led to by request <code>${form.correlationId}</code>` : '',
  ];
  setHtml(app, h`
    <h1>Audit log</h1>
    <p class="muted">Every event of every stream, newest first: runs, the catalogue, deliveries, pull requests,
      operators' actions and tokens${narrowed}. Export or verify the whole log with
      <code>sample-platform audit export</code> and <code>audit verify</code>.</p>
    ${auditFilterForm(form)}
    <div class="scroll"><table class="audit-log">
      <thead><tr><th>#</th><th>When</th><th>What happened</th><th>Who</th><th>Stream</th><th></th></tr></thead>
      <tbody id="audit-body"></tbody>
    </table></div>
    <p id="audit-empty" class="muted" hidden>No events match.</p>
    <p><button id="older" data-action="older" hidden>Older events</button></p>`);

  $('#filter').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(e.target)) if (String(v).trim()) q.set(k, String(v).trim());
    const search = q.toString();
    history.pushState(null, '', search ? `/audit?${search}` : '/audit');
    route();
  });

  const body = $('#audit-body');
  let cursor = null;
  async function loadPage(after) {
    const data = await gql(`query($first:Int,$after:String,$filter:AuditLogFilter){auditLog(first:$first,after:$after,filter:$filter){
      pageInfo{hasNextPage endCursor} nodes{${AUDIT_FIELDS}}}}`, { first: PAGE_SIZE, after, filter });
    if (!stillOn(gen)) return;
    const conn = data.auditLog;
    body.insertAdjacentHTML('beforeend', part(auditRows(conn.nodes)));
    cursor = conn.pageInfo.endCursor;
    $('#older').hidden = !conn.pageInfo.hasNextPage;
    $('#audit-empty').hidden = body.rows.length > 0;
  }
  // The click handler shows a failure to load.
  actions.older = () => loadPage(cursor);
  try {
    await loadPage(null);
  } catch (e) {
    setHtml(body, h`<tr><td colspan="6" class="callout bad">The audit log could not be loaded.</td></tr>`);
    showError(e);
  }
}

/* ---------- queue ---------- */

function queueRows(entries, running) {
  return entries.map((q) => h`
        <tr data-run-id="${q.runId}">
          <td class="num">${q.position}</td>
          <td>${runLink(q.runId)}${q.priority ? h` <span class="muted" title="priority">p${q.priority}</span>` : ''}</td>
          <td>${q.stage}</td>
          <td class="num">${q.attempt}</td>
          <td>${when(q.waitingSince)}</td>
          <td>${when(q.eligibleAt)}</td>
          <td>${q.deadlineKind} ${when(q.deadlineAt)}</td>
          ${running ? h`<td>${q.vmName ? h`<code>${q.vmName}</code>` : dash}</td>` : ''}
        </tr>`);
}

function queueTable(entries, running) {
  if (!entries.length) return h`<p class="muted">${running ? 'Nothing running.' : 'Nothing waiting.'}</p>`;
  return h`
    <div class="scroll"><table class="queue">
      <thead><tr><th>#</th><th>Run</th><th>Stage</th><th>Attempt</th><th>${running ? 'Running' : 'Waiting'} since</th>
        <th>Eligible at</th><th>Deadline</th>${running ? raw('<th>VM</th>') : ''}</tr></thead>
      <tbody>${queueRows(entries, running)}</tbody>
    </table></div>`;
}

/** The button under a platform's waiting runs that loads the next page, if any. */
function moreWaiting(platform, page, shown, total) {
  if (!page.pageInfo.hasNextPage) return '';
  return h`<p class="more"><button data-action="more" data-platform="${platform}" data-after="${page.pageInfo.endCursor}">
    Show ${Math.min(QUEUE_PAGE, total - shown)} more</button> <span class="muted">(${shown} of ${total} waiting shown)</span></p>`;
}

function platformSection(p) {
  return h`
    <section class="block platform" data-platform="${p.platform}">
      <header class="platform-head">
        <h2>${p.platform} ${p.paused ? raw('<span class="badge paused">paused</span>') : raw('<span class="badge pass">active</span>')}</h2>
        ${p.paused
    ? h`<button class="op" data-action="resume" data-platform="${p.platform}">Resume…</button>`
    : h`<button class="op" data-action="pause" data-platform="${p.platform}">Pause…</button>`}
      </header>
      ${p.maintenanceNote ? h`<p class="callout ${p.paused ? 'warn' : ''}">${p.maintenanceNote}</p>` : ''}
      <p><span class="counts">${p.waitingCount} waiting, ${p.running.length} running</span>
        · <span class="capacity" title="VMs this platform may have at once">capacity ${p.capacity}</span>
        ${p.oldestWaitingSince ? h` · oldest ${since(p.oldestWaitingSince, { prefix: 'waiting for ' })}` : ''}</p>
      <h3>Running</h3>${queueTable(p.running, true)}
      <h3>Waiting</h3>${queueTable(p.waiting.nodes, false)}
      <div class="waiting-more">${moreWaiting(p.platform, p.waiting, p.waiting.nodes.length, p.waitingCount)}</div>
    </section>`;
}

/** VMs the platform could not delete: first on the page, since a person must act. */
function abandonedSection(vms) {
  if (!vms.length) return '';
  return h`<section class="callout warn" id="needs-a-human">
    <strong>${vms.length === 1 ? '1 VM needs' : `${vms.length} VMs need`} a person:</strong> the platform could not delete
    ${vms.length === 1 ? 'it' : 'them'} and stopped trying. Delete ${vms.length === 1 ? 'it' : 'them'} in the cloud console; the platform notices.
    <ul class="problems">${vms.map((vm) => h`<li><code>${vm.vmName}</code> (${vm.platform}, run ${runLink(vm.runId)}, since ${when(vm.since)}): ${vm.reason}</li>`)}</ul>
  </section>`;
}

/** Waiting runs per page of the queue: a long queue is read a page at a time. */
const QUEUE_PAGE = 50;

async function queuePage(app) {
  const gen = generation;
  setHtml(app, h`<h1>Queue</h1><div id="queue"><p class="muted">Loading…</p></div>`);
  const entry = 'runId position status stage attempt priority queuedAt waitingSince eligibleAt deadlineAt deadlineKind vmName';
  const page = `nodes{${entry}} pageInfo{hasNextPage endCursor}`;
  // How many waiting runs each platform shows: a refresh keeps the pages a
  // person asked for instead of going back to the first.
  const wanted = {};
  const nextPage = async (section, platform, after) => {
    const data = await gql(`query($p:String!,$a:String!){queue(platform:$p){waitingCount waiting(first:${QUEUE_PAGE},after:$a){${page}}}}`,
      { p: platform, a: after });
    const q = data.queue[0];
    // The waiting table is the section's last (a button shows only under one).
    const tables = section.querySelectorAll('table.queue');
    const waitingBody = tables[tables.length - 1].querySelector('tbody');
    waitingBody.insertAdjacentHTML('beforeend', part(queueRows(q.waiting.nodes, false)));
    const shown = waitingBody.rows.length;
    setHtml(section.querySelector('.waiting-more'), moreWaiting(platform, q.waiting, shown, q.waitingCount));
    return { shown, after: q.waiting.pageInfo.hasNextPage ? q.waiting.pageInfo.endCursor : null };
  };
  const load = async () => {
    const data = await gql(`{queue{platform paused maintenanceNote oldestWaitingSince capacity waitingCount
      waiting(first:${QUEUE_PAGE}){${page}} running{${entry}}} abandonedVms{vmName runId platform reason since}}`);
    if (!stillOn(gen)) return;
    setHtml($('#queue'), h`${abandonedSection(data.abandonedVms)}${data.queue.length ? data.queue.map(platformSection) : h`<p class="muted">No platforms are configured.</p>`}`);
    for (const p of data.queue) {
      const info = p.waiting.pageInfo;
      let next = { shown: p.waiting.nodes.length, after: info.hasNextPage ? info.endCursor : null };
      const section = $(`section.platform[data-platform="${CSS.escape(p.platform)}"]`);
      while (next.after && section && next.shown < (wanted[p.platform] || 0) && stillOn(gen)) {
        next = await nextPage(section, p.platform, next.after);
      }
    }
  };
  const setPaused = async (el, pause) => {
    const platform = el.dataset.platform;
    const note = askReason(pause
      ? `Pause ${platform}: no VMs start until resumed. Maintenance note:`
      : `Resume ${platform}. Note:`);
    if (note === null) return;
    const m = pause ? 'pausePlatform' : 'resumePlatform';
    const changed = (await gql(`mutation($p:String!,$n:String!){${m}(platform:$p,note:$n)}`, { p: platform, n: note }))[m];
    say(changed ? `${pause ? 'paused' : 'resumed'} ${platform}` : `${platform} was already ${pause ? 'paused' : 'running'}; nothing changed`);
    await load();
  };
  const more = async (el) => {
    const platform = el.dataset.platform;
    wanted[platform] = (await nextPage(el.closest('section.platform'), platform, el.dataset.after)).shown;
  };
  actions = { pause: (el) => setPaused(el, true), resume: (el) => setPaused(el, false), more };
  try {
    await load();
  } catch (e) {
    showError(e);
    return;
  }
  const refresh = debounced(() => load().catch(showError), 1500);
  onLeave(subscribe('subscription{runChanged{id}}', {}, refresh, { resync: refresh }));
  // Pausing elsewhere changes no run, so the subscription would not show it.
  const poll = setInterval(refresh, 30000);
  onLeave(() => clearInterval(poll));
}

/* ---------- regression test ---------- */

const SAMPLE_FIELDS = 'sha256 name extension sizeBytes tags addedAt addedBy downloadUrl';
const ENTRY_FIELDS = 'runId platform repository commitSha queuedAt finishedAt passed attempt';

function entryCell(e) {
  if (!e) return dash;
  return h`${commitLink(e.repository, e.commitSha)} <span class="muted">run</span> ${runLink(e.runId)} ${when(e.finishedAt || e.queuedAt)}`;
}

function definition(t) {
  const s = t.sample;
  return h`
    <header class="run-head">
      <h1>Test <code>${t.id}</code> ${t.active ? '' : raw('<span class="badge inactive">inactive</span>')}</h1>
      <div class="actions">
        <button class="op" data-action="set-active" data-active="${t.active ? 'false' : 'true'}">${t.active ? 'Deactivate…' : 'Activate…'}</button>
      </div>
    </header>
    ${t.description ? h`<p>${t.description}</p>` : ''}
    <dl class="facts">
      <dt>Sample</dt><dd>${s.name} <span class="muted">(${s.extension}, ${bytes(s.sizeBytes)})</span>
        <a href="${safeUrl(s.downloadUrl)}" data-action="download" data-url="${s.downloadUrl}" data-name="${s.name}">download</a></dd>
      <dt>Sample SHA-256</dt><dd><code class="hash">${s.sha256}</code></dd>
      <dt>Command</dt><dd><code class="cmd">${t.command}</code></dd>
      <dt>Input</dt><dd>${TEST_KIND_WORDS.input[t.inputKind] ?? t.inputKind}</dd>
      <dt>Output</dt><dd>${TEST_KIND_WORDS.output[t.outputKind] ?? t.outputKind}${t.outputPattern
        ? h`: every file named <code>${t.outputPattern}</code>
        <span class="muted">({base}: the sample's file name as the runner passes it, its SHA-256)</span>` : ''}</dd>
      <dt>Expected exit code</dt><dd>${t.expectedExitCode}</dd>
      <dt>Categories</dt><dd>${t.categories.length ? t.categories.map((c) => h`<span class="tag">${c}</span> `) : dash}</dd>
      <dt>Platforms</dt><dd>${t.platforms ? t.platforms.join(', ') : 'every platform'}</dd>
      <dt>Active</dt><dd>${t.active ? 'yes' : 'no'}</dd>
    </dl>
    <h2>Outputs</h2>
    <div class="scroll"><table>
      <thead><tr><th>Output</th><th>Approved</th><th>Variants</th><th>Per platform</th></tr></thead>
      <tbody>${t.outputs.map((o) => h`
        <tr class="${o.ignore ? 'dim' : ''}">
          <td><code>${o.name}</code>${o.ignore ? raw(' <span class="muted">(ignored)</span>') : ''}</td>
          <td>${hash(o.approvedSha256)}</td>
          <td>${o.variants.length ? o.variants.map((v) => h`${hash(v)} `) : dash}</td>
          <td>${o.platforms.length ? h`<ul class="plain">${o.platforms.map((p) => h`
            <li><strong>${p.platform}</strong>: ${p.approvedSha256 ? hash(p.approvedSha256) : raw('<span class="muted">as above</span>')}
              ${p.variants.length ? h` + variants ${p.variants.map((v) => h`${hash(v)} `)}` : ''}</li>`)}</ul>` : dash}</td>
        </tr>`)}
      </tbody>
    </table></div>`;
}

function historySection(hist) {
  return h`
    <h2>By platform</h2>
    ${hist.platforms.length ? h`<div class="scroll"><table>
      <thead><tr><th>Platform</th><th>Last passed</th><th>First failed after it</th><th>Changes</th></tr></thead>
      <tbody>${hist.platforms.map((p) => h`
        <tr><td>${p.platform}</td><td>${entryCell(p.lastPassed)}</td><td>${entryCell(p.firstFailed)}</td>
          <td>${p.compareUrl ? h`<a href="${safeUrl(p.compareUrl)}">compare</a>` : dash}</td></tr>`)}
      </tbody></table></div>` : h`<p class="muted">Never run.</p>`}
    ${hist.flaky.length ? h`
      <h2>Flaky commits</h2>
      <p class="muted">Commits on which this test both passed and failed.</p>
      <ul>${hist.flaky.map((f) => h`<li>${f.platform}: <code class="sha" title="${f.commitSha}">${short(f.commitSha)}</code>
        — ${f.passed} passed, ${f.failed} failed</li>`)}</ul>` : ''}
    <h2>History</h2>
    ${hist.entries.length ? h`<div class="scroll"><table>
      <thead><tr><th>Run</th><th>Platform</th><th>Commit</th><th>Attempt</th><th>Finished</th><th>Result</th></tr></thead>
      <tbody>${hist.entries.map((e) => h`
        <tr data-run-id="${e.runId}"><td>${runLink(e.runId)}</td><td>${e.platform}</td><td>${commitLink(e.repository, e.commitSha)}</td>
          <td class="num">${e.attempt}</td><td>${when(e.finishedAt)}</td><td>${passBadge(e.passed)}</td></tr>`)}
      </tbody></table></div>` : h`<p class="muted">No runs yet.</p>`}`;
}

async function testPage(app, id) {
  const gen = generation;
  setHtml(app, h`<div id="test"><p class="muted">Loading…</p></div>
    <section id="baselines" class="block"><h2>Baseline history</h2><div id="baseline-list"><p class="muted">Loading…</p></div></section>
    <section id="history" class="block"></section>`);
  document.title = `Test ${id} — Sample Platform`;
  loadBaselines(id, gen);
  const loadDef = async () => {
    const t = (await gql(`query($id:String!){regressionTest(id:$id){id command inputKind outputKind outputPattern expectedExitCode
      categories active description platforms sample{${SAMPLE_FIELDS}}
      outputs{name approvedSha256 variants ignore platforms{platform approvedSha256 variants}}}}`, { id })).regressionTest;
    if (!stillOn(gen)) return;
    setHtml($('#test'), t ? definition(t) : h`<h1>No such test</h1><p>There is no regression test <code>${id}</code>. <a href="/catalogue">Catalogue</a></p>`);
  };
  actions = {
    'set-active': async (el) => {
      const active = el.dataset.active === 'true';
      const reason = askReason(`${active ? 'Activate' : 'Deactivate'} ${id}? Why:`);
      if (reason === null) return;
      await gql('mutation($id:String!,$a:Boolean!,$r:String!){setTestActive(id:$id,active:$a,reason:$r)}', { id, a: active, r: reason });
      say(`${active ? 'activated' : 'deactivated'} ${id}`);
      await loadDef();
    },
  };
  loadDef().catch((e) => {
    setHtml($('#test'), h`<h1>Test <code>${id}</code></h1><p class="callout bad">The definition could not be loaded.</p>`);
    showError(e);
  });
  try {
    const hist = (await gql(`query($id:String!){testHistory(testId:$id){testId entries{${ENTRY_FIELDS}}
      platforms{platform lastPassed{${ENTRY_FIELDS}} firstFailed{${ENTRY_FIELDS}} compareUrl}
      flaky{platform commitSha passed failed}}}`, { id })).testHistory;
    if (stillOn(gen)) setHtml($('#history'), historySection(hist));
  } catch (e) {
    if (stillOn(gen)) setHtml($('#history'), h`<p class="callout bad">The history could not be loaded.</p>`);
    showError(e);
  }
}

/** Who defined, changed and accepted outputs for a test, and why: its catalogue events. */
async function loadBaselines(id, gen) {
  try {
    const log = (await gql(`query($f:AuditLogFilter){auditLog(first:100,filter:$f){
      pageInfo{hasNextPage} nodes{position type summary data metadata{actor correlationId} recordedAt}}}`,
    { f: { stream: 'catalogue', subject: `test:${id}` } })).auditLog;
    if (!stillOn(gen)) return;
    const rows = log.nodes.map((e) => {
      const d = asJson(e.data) ?? {};
      return h`<tr data-event-type="${e.type}">
        <td>${when(e.recordedAt)}</td>
        <td class="actor">${e.metadata.actor}</td>
        <td>${e.summary}</td>
        <td>${d.run_id ? runLink(d.run_id, `run ${runTag(d.run_id)}`) : ''}</td></tr>`;
    });
    setHtml($('#baseline-list'), rows.length ? h`<div class="scroll"><table class="baselines">
      <thead><tr><th>When</th><th>Who</th><th>What</th><th>From</th></tr></thead><tbody>${rows}</tbody></table></div>
      ${log.pageInfo.hasNextPage ? h`<p><a href="/audit?stream=catalogue&subject=${encodeURIComponent(`test:${id}`)}">Older changes in the audit log</a></p>` : ''}`
      : h`<p class="muted">No catalogue events for this test.</p>`);
  } catch (e) {
    if (stillOn(gen)) setHtml($('#baseline-list'), h`<p class="callout bad">The baseline history could not be loaded.</p>`);
    showError(e);
  }
}

/* ---------- catalogue ---------- */

async function cataloguePage(app) {
  const gen = generation;
  setHtml(app, h`
    <header class="run-head"><h1>Catalogue</h1>
      <div class="actions"><a href="/catalogue#export" data-action="export">export</a></div></header>
    <section id="export" class="block" hidden></section>
    <section class="block"><h2>Regression tests</h2><div id="tests"><p class="muted">Loading…</p></div></section>
    <section class="block"><h2>Samples</h2><div id="samples"><p class="muted">Loading…</p></div></section>`);

  actions.export = async () => {
    const text = (await gql('{exportCatalogue}')).exportCatalogue;
    const box = $('#export');
    const href = URL.createObjectURL(new Blob([text], { type: 'application/toml' }));
    onLeave(() => URL.revokeObjectURL(href));
    setHtml(box, h`<header class="diff-head"><h2>Export</h2>
      <span><a href="${href}" download="catalogue.toml">download catalogue.toml</a>
      <button class="small" data-action="close-export">close</button></span></header><pre class="export">${text}</pre>`);
    box.hidden = false;
    box.scrollIntoView({ block: 'start' });
  };
  actions['close-export'] = () => { $('#export').hidden = true; };

  gql(`{regressionTests(includeInactive:true){id command expectedExitCode categories active
    sample{name sha256}}}`).then((d) => {
    if (!stillOn(gen)) return;
    const tests = d.regressionTests;
    setHtml($('#tests'), tests.length ? h`<div class="scroll"><table class="tests">
      <thead><tr><th>Test</th><th>Sample</th><th>Command</th><th>Exit</th><th>Categories</th><th>Active</th></tr></thead>
      <tbody>${tests.map((t) => h`
        <tr data-test-id="${t.id}" class="${t.active ? '' : 'dim'}">
          <td>${testLink(t.id)}</td><td>${t.sample.name} ${hash(t.sample.sha256)}</td>
          <td><code class="cmd">${t.command}</code></td><td class="num">${t.expectedExitCode}</td>
          <td>${t.categories.map((c) => h`<span class="tag">${c}</span> `)}</td>
          <td>${t.active ? 'yes' : 'no'}</td></tr>`)}
      </tbody></table></div>` : h`<p class="muted">No regression tests.</p>`);
  }).catch((e) => { setHtml($('#tests'), h`<p class="callout bad">The tests could not be loaded.</p>`); showError(e); });

  gql(`{samples{${SAMPLE_FIELDS}}}`).then((d) => {
    if (!stillOn(gen)) return;
    setHtml($('#samples'), d.samples.length ? h`<div class="scroll"><table class="samples">
      <thead><tr><th>Name</th><th>Type</th><th>Size</th><th>SHA-256</th><th>Tags</th><th>Added</th><th></th></tr></thead>
      <tbody>${d.samples.map((s) => h`
        <tr><td>${s.name}</td><td>${s.extension}</td><td class="num">${bytes(s.sizeBytes)}</td><td>${hash(s.sha256)}</td>
          <td>${s.tags.map((t) => h`<span class="tag">${t}</span> `)}</td>
          <td>${when(s.addedAt)} <span class="muted">by ${s.addedBy}</span></td>
          <td><a href="${safeUrl(s.downloadUrl)}" data-action="download" data-url="${s.downloadUrl}" data-name="${s.name}">download</a></td></tr>`)}
      </tbody></table></div>` : h`<p class="muted">No samples.</p>`);
  }).catch((e) => { setHtml($('#samples'), h`<p class="callout bad">The samples could not be loaded.</p>`); showError(e); });

  if (location.hash === '#export') actions.export().catch(showError);
}

/* ---------- start ---------- */

$('#message').addEventListener('click', (e) => {
  // Dismiss on click, but let its links work.
  if (!e.target.closest('a')) e.currentTarget.hidden = true;
});
setupToken();
await setupPerson();
route();
