// The console's shell: hash routes (bookmarkable, no server routes needed), the navigation, the
// live updates (live.js: each pushed job change goes to the current view's onPush) and, only while
// they are not live, one polling loop that asks the current view to refresh its data in place.
// `?polling=off` in the page's address turns the polling off altogether (the browser test proves
// with it that the pushes alone keep a page current).
//
//   #/                         overview         overview.js
//   #/jobs?status=&kind=&...   jobs list        jobs.js
//   #/jobs/{id}                job detail       job.js
//   #/new?kind=                create a job     create.js
//   #/upload                   upload a JSONL   upload.js
//   #/ingest/{id}              follow an ingest upload.js
//   #/metrics                  last hour's metrics metrics.js

import { api, onUnauthorized } from './api.js';
import { completeSignIn, config, session, signIn, signOut, token } from './auth.js';
import { clear, errorBox, h } from './ui.js';
import { overview } from './overview.js';
import { jobsList } from './jobs.js';
import { jobDetail } from './job.js';
import { createJob } from './create.js';
import { upload, ingest } from './upload.js';
import { startLive } from './live.js';
import { metricsPage } from './metrics.js';

const REFRESH_MS = 3000;
const view = document.getElementById('view');
const autoBox = document.getElementById('auto-refresh');
const refreshed = document.getElementById('refreshed');
const banner = document.getElementById('banner');
const userBox = document.getElementById('user');
const liveBox = document.getElementById('live');
const polling = new URLSearchParams(location.search).get('polling') !== 'off';

let current = null; // {name, key, instance}
let lastRefresh = 0;
let refreshing = false;
let live = null; // startLive's handle once signed in

/** '#/jobs?status=failed' -> {path: ['jobs'], params: URLSearchParams} */
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [p, q = ''] = raw.split('?');
  return { path: p.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(q) };
}

function route({ path }) {
  const [a, b] = path;
  if (!a) return { name: 'overview', make: overview };
  if (a === 'jobs' && !b) return { name: 'jobs', make: jobsList };
  if (a === 'jobs' && b) return { name: 'job', make: (el, p) => jobDetail(el, b, p), key: b };
  if (a === 'new') return { name: 'new', make: createJob };
  if (a === 'upload') return { name: 'upload', make: upload };
  if (a === 'metrics') return { name: 'metrics', make: metricsPage };
  if (a === 'ingest' && b) return { name: 'ingest', make: (el, p) => ingest(el, b, p), key: b };
  return { name: 'missing', make: (el) => el.append(h('h1', {}, 'Not found'), errorBox(`There is no page ${location.hash}.`)) };
}

async function navigate() {
  const hash = location.hash;
  delete view.dataset.hash;
  const parsed = parseHash(hash);
  const r = route(parsed);
  const nav = r.name === 'job' ? 'jobs' : r.name === 'ingest' ? 'upload' : r.name;
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === nav);
  // Same view, new parameters (e.g. a filter): let it update in place.
  if (current && current.name === r.name && current.key === r.key && current.instance?.update) {
    await guard(() => current.instance.update(parsed.params));
    rendered(hash);
    return;
  }
  current?.instance?.unmount?.();
  clear(view);
  banner.hidden = true;
  current = { name: r.name, key: r.key, instance: null };
  const mine = current;
  const instance = await guard(() => r.make(view, parsed.params));
  if (mine === current) {
    current.instance = instance || null;
    if (current.missed && instance?.refresh) await guard(() => instance.refresh());
    lastRefresh = Date.now();
    showRefreshed();
    rendered(hash);
  }
}

/** Marks the view as showing `hash` (what tests, and anything else, can wait for). */
function rendered(hash) {
  if (location.hash === hash) view.dataset.hash = hash;
}

async function guard(fn) {
  try {
    return await fn();
  } catch (e) {
    view.append(errorBox(e));
    return null;
  }
}

async function tick() {
  if (!polling || live?.state() === 'live') return; // pushed changes keep the view current
  if (!autoBox.checked || document.hidden || refreshing || !current?.instance?.refresh) return;
  const interval = current.instance.interval || REFRESH_MS;
  if (Date.now() - lastRefresh < interval) return;
  refreshing = true;
  try {
    await current.instance.refresh();
    banner.hidden = true;
  } catch (e) {
    banner.textContent = `Auto-refresh failed; showing the last data. ${e.message || e}`;
    banner.hidden = false;
  } finally {
    refreshing = false;
    lastRefresh = Date.now();
    showRefreshed();
  }
}

function showRefreshed() {
  refreshed.textContent = autoBox.checked ? `updated ${new Date(lastRefresh).toLocaleTimeString()}` : 'paused';
}

/** A pushed job change: to the current view, unless the user paused updates. */
async function pushed(msg) {
  if (!autoBox.checked || !current) return;
  if (!current.instance) {
    current.missed = true; // the view is still loading: it catches up once it has loaded
    return;
  }
  if (!current.instance.onPush) return;
  try {
    await current.instance.onPush(msg);
    banner.hidden = true;
  } catch (e) {
    banner.textContent = `A live update could not be shown; showing the last data. ${e.message || e}`;
    banner.hidden = false;
  }
  lastRefresh = Date.now();
  showRefreshed();
}

/** (Re)subscribed: the view catches up once on what it may have missed while not connected. */
async function caughtUp() {
  if (current && !current.instance) current.missed = true; // still loading: it catches up when loaded
  if (!current?.instance?.refresh || refreshing) return;
  refreshing = true;
  try {
    await current.instance.refresh();
    lastRefresh = Date.now();
    showRefreshed();
  } finally {
    refreshing = false;
  }
}

const LIVE_TEXT = {
  live: ['live', 'Changes are pushed to this page as they happen'],
  connecting: ['connecting…', 'Connecting to the live updates'],
  offline: ['offline', 'Live updates are not connected: the page polls every few seconds and reconnects'],
  off: ['polling', 'This deployment has no live updates: the page polls every few seconds'],
};

function showLive(state, detail = '') {
  const [text, title] = LIVE_TEXT[state] || [state, ''];
  liveBox.dataset.state = state;
  liveBox.textContent = text;
  liveBox.title = detail ? `${title} (${detail})` : title;
  liveBox.hidden = false;
}

autoBox.checked = localStorage.getItem('autoRefresh') !== 'off';
autoBox.addEventListener('change', () => {
  localStorage.setItem('autoRefresh', autoBox.checked ? 'on' : 'off');
  showRefreshed();
  if (autoBox.checked && live?.state() === 'live') caughtUp(); // pushes were ignored while paused
});
/** The sign-in page: one button to the issuer (Cognito's hosted UI; locally, a dev user). */
function showSignIn(problem = '') {
  live?.stop();
  live = null;
  liveBox.hidden = true;
  current?.instance?.unmount?.();
  current = null;
  clear(view);
  clear(userBox);
  view.append(
    h('h1', {}, 'Sign in'),
    problem ? errorBox(problem) : '', // Element.append writes null as the text "null"
    h('p', {}, 'The console shows the jobs of the signed-in user (an admin sees everyone\'s).'),
    h('p', {}, h('button', { class: 'btn primary', id: 'sign-in', onclick: () => signIn() }, 'Sign in')),
    h('p', { class: 'hint' }, `Signing in at ${new URL(config.authorize_url).host}.`),
  );
  view.dataset.hash = 'sign-in';
}

function showUser() {
  clear(userBox);
  if (config.mode !== 'jwt') {
    userBox.append(h('span', { class: 'muted small', id: 'who', title: 'AUTH_MODE=off: no sign-in' }, 'sign-in off'));
    return;
  }
  const me = session.me;
  userBox.append(
    h('span', { class: 'small', id: 'who', title: me.owner }, me.name, me.admin ? h('span', { class: 'kind' }, 'admin') : null),
    h('button', { class: 'btn small', id: 'sign-out', onclick: () => signOut() }, 'Sign out'),
  );
}

async function start() {
  const problem = await completeSignIn();
  if (config.mode === 'jwt' && !token()) return showSignIn(problem);
  try {
    session.me = await api('me', { what: 'Reading who is signed in' });
  } catch (e) {
    if (config.mode === 'jwt' && !token()) return showSignIn(e.message);
    view.append(errorBox(e));
    return;
  }
  showUser();
  onUnauthorized.handler = () => showSignIn('Your sign-in has ended; sign in again.');
  window.addEventListener('hashchange', navigate);
  live = startLive({ onUpdate: pushed, onLive: caughtUp, onState: showLive });
  setInterval(tick, 500);
  navigate();
}

start();
