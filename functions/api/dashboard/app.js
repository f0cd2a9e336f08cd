// The console's shell: hash routes (bookmarkable, no server routes needed), the navigation, the
// live updates (live.js: each pushed job change goes to the current view's onPush) and, only while
// they are not live, one polling loop that asks the current view to refresh its data in place
// (a view's `unpushed` part, data no job change pushes such as CloudWatch's, is polled live or not).
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
import { clear, closeDialogs, errorBox, h } from './ui.js';
import { overview } from './overview.js';
import { jobsList, prefetch as prefetchJobs } from './jobs.js';
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
let lastUnpushed = 0; // when a view's `unpushed` part was last asked for
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
  closeDialogs(); // a question asked on the last page never acts on this one
  closeMenu(false);
  delete view.dataset.hash;
  const parsed = parseHash(hash);
  const r = route(parsed);
  const nav = r.name === 'job' ? 'jobs' : r.name === 'ingest' ? 'upload' : r.name;
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === nav);
  // Same view, new parameters (e.g. a filter): let it update in place.
  if (current && current.name === r.name && current.key === r.key && current.instance?.update) {
    await keepFocus(() => guard(() => current.instance.update(parsed.params)));
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
    lastUnpushed = Date.now();
    showRefreshed();
    if (!firstView) focusHeading();
    firstView = false;
    rendered(hash);
  }
}

let firstView = true; // the first page of a visit keeps the browser's own focus (the address bar)

/** A new page: focus on its heading, so keyboard and screen-reader users start at its top. */
function focusHeading() {
  const heading = view.querySelector('h1') || view;
  if (heading !== view) heading.setAttribute('tabindex', '-1');
  heading.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

/**
 * Runs a redraw of the current view (new filter, refresh, pushed change) and keeps the keyboard
 * focus where it was: a control the redraw replaced is found again by what identifies it (its
 * id, or its tag, data-* attributes and text, e.g. the status chip pressed); a control the redraw
 * disabled (Newer on page 1) hands the focus to the nearest enabled button beside it.
 */
async function keepFocus(fn) {
  const before = document.activeElement;
  const inView = before && before !== view && view.contains(before);
  const sig = inView ? signature(before) : null;
  try {
    return await fn();
  } finally {
    if (inView && sig) {
      let target = before.isConnected ? before : findBySignature(before.tagName, sig);
      if (target?.disabled) {
        const near = target.parentElement?.querySelectorAll('button:not(:disabled), a[href], select, input') || [];
        target = [...near].find((x) => x !== target) || null;
      }
      if (target && document.activeElement !== target && (document.activeElement === document.body || !document.activeElement || !before.isConnected || before.disabled)) {
        target.focus({ preventScroll: true });
      }
    }
  }
}

function signature(el) {
  if (el.id) return `#${el.id}`;
  // data-* when it has any (a count in its text may change), else its text
  const data = Object.entries(el.dataset).filter(([k]) => k !== 'label').sort().map(([k, v]) => `${k}=${v}`).join('&');
  return `${el.tagName}|${el.className}|${data || el.textContent.trim().slice(0, 80)}`;
}

function findBySignature(tag, sig) {
  if (sig.startsWith('#')) return document.getElementById(sig.slice(1));
  return [...view.querySelectorAll(tag)].find((x) => signature(x) === sig) || null;
}

/** Every table cell gets its column's header as data-label: phones show rows stacked (style.css). */
function labelCells(root = view) {
  for (const table of root.querySelectorAll('table')) {
    const heads = [...(table.tHead?.rows[0]?.cells || [])].map((th) => th.textContent.trim());
    if (!heads.length) continue;
    for (const body of table.tBodies) {
      for (const row of body.rows) {
        [...row.cells].forEach((cell, i) => {
          if (heads[i] && cell.dataset.label !== heads[i]) cell.dataset.label = heads[i];
        });
      }
    }
  }
}
new MutationObserver(() => labelCells()).observe(view, { childList: true, subtree: true });

// The top bar below 700 px: one Menu button (aria-expanded) opens the sections, the refresh
// switch and the user; Escape or a navigation closes it.
const topbar = document.getElementById('topbar');
const menuToggle = document.getElementById('menu-toggle');
function closeMenu(refocus) {
  if (!topbar.classList.contains('open')) return;
  topbar.classList.remove('open');
  menuToggle.setAttribute('aria-expanded', 'false');
  if (refocus) menuToggle.focus();
}
menuToggle.addEventListener('click', () => {
  const open = !topbar.classList.contains('open');
  topbar.classList.toggle('open', open);
  menuToggle.setAttribute('aria-expanded', String(open));
  if (open) document.querySelector('#topmenu a, #topmenu button, #topmenu input')?.focus();
});
topbar.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') closeMenu(true);
});
// A click on the link of the page already shown changes no hash: the menu closes all the same.
document.getElementById('topmenu').addEventListener('click', (e) => {
  if (e.target.closest('a')) closeMenu(false);
});

// The skip link: straight to the page's heading (a plain #view link would change the route).
document.getElementById('skip-link').addEventListener('click', (e) => {
  e.preventDefault();
  focusHeading();
});

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
  if (!polling) return;
  // What no job change pushes (CloudWatch's figures and alarms): a view's `unpushed` part is asked
  // for on its own interval, live or not.
  const unpushed = current?.instance?.unpushed;
  if (unpushed && autoBox.checked && !document.hidden && !refreshing && Date.now() - lastUnpushed >= unpushed.interval) {
    refreshing = true;
    try {
      await keepFocus(() => unpushed.refresh());
    } catch (e) {
      banner.textContent = `Auto-refresh failed; showing the last data. ${e.message || e}`;
      banner.hidden = false;
    } finally {
      refreshing = false;
      lastUnpushed = Date.now();
    }
  }
  if (live?.state() === 'live') return; // pushed changes keep the view current
  if (!autoBox.checked || document.hidden || refreshing || !current?.instance?.refresh) return;
  const interval = current.instance.interval || REFRESH_MS;
  if (Date.now() - lastRefresh < interval) return;
  refreshing = true;
  try {
    await keepFocus(() => current.instance.refresh());
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
  // The text says the second; two refreshes within one second read the same. The time to the
  // millisecond tells them apart (what a test, or anything else, can wait on).
  refreshed.dataset.at = String(lastRefresh);
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
    await keepFocus(() => current.instance.onPush(msg));
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
  // A list of jobs needs no /me: its first page is asked for at the same time.
  const first = parseHash();
  if (route(first).name === 'jobs') prefetchJobs(first.params);
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
  setInterval(tick, 500);
  // The first view is drawn before the push channel opens (its connect and subscribe would share
  // those first moments with the view's requests); once live, it catches the view up.
  await navigate();
  live = startLive({ onUpdate: pushed, onLive: caughtUp, onState: showLive });
}

start();
