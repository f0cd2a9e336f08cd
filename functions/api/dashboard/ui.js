// Small DOM helpers shared by the views. Text always goes in through text nodes, never innerHTML,
// so job payloads and log lines cannot inject markup.

/** h('a', {href, class, onclick}, child, ...): an element. Children: nodes, strings, arrays, null. */
export function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  let value;
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' && 'value' in el && !tag.startsWith('svg:')) value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'open') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  if (value !== undefined) el.value = value; // after the children: a <select> needs its options first
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const badge = (status) => h('span', { class: `badge s-${status}`, 'data-status': status }, status);
export const kind = (k) => h('span', { class: 'kind' }, k);
/** Ids are UUIDv7: the first digits are a timestamp, alike for jobs made together; the tail differs. */
export const shortId = (id) => (id ? `…${id.slice(-8)}` : '');
export const jobLink = (id) => h('a', { href: `#/jobs/${id}`, class: 'mono nowrap', title: id }, shortId(id));

export function fmtNumber(n) {
  return n === undefined || n === null ? '–' : Number(n).toLocaleString('en-US');
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '–';
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** "12 s ago" / "in 3 min", with the exact UTC time as a tooltip. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '–');
  return h('time', { datetime: iso, title: iso, class: 'nowrap' }, relative(iso));
}

export function relative(iso) {
  const diff = Date.now() - Date.parse(iso);
  const future = diff < 0;
  const s = Math.abs(diff) / 1000;
  let text;
  if (s < 5) return future ? 'in a moment' : 'just now';
  if (s < 60) text = `${Math.floor(s)} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min`;
  else if (s < 86400) text = `${Math.floor(s / 3600)} h`;
  else text = `${Math.floor(s / 86400)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

export function progressBar(percent, { status, big } = {}) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  const cls = ['progress', big && 'big', status === 'completed' && 'done', status === 'failed' && 'bad']
    .filter(Boolean)
    .join(' ');
  const bar = h('span');
  bar.style.width = `${p}%`;
  return h('div', { class: cls, role: 'progressbar', 'aria-valuenow': p, 'aria-valuemin': 0, 'aria-valuemax': 100 }, bar);
}

/**
 * A collapsible JSON view built from <details>. `open` is a Set of paths that are open; it is
 * updated as the user toggles, so a re-render (auto-refresh) keeps what the user opened.
 */
export function jsonTree(value, open = new Set(['$']), path = '$') {
  const root = h('div', { class: 'json' });
  root.append(node(value, null, path, open));
  return root;
}

function node(value, key, path, open) {
  const label = key === null ? [] : [h('span', { class: 'k' }, JSON.stringify(key)), ': '];
  if (value !== null && typeof value === 'object') {
    const isArr = Array.isArray(value);
    const entries = isArr ? value.map((v, i) => [i, v]) : Object.entries(value);
    if (entries.length === 0) return h('div', { class: 'row' }, label, isArr ? '[]' : '{}');
    const d = h(
      'details',
      { open: open.has(path) },
      h('summary', {}, label, isArr ? `[ ${entries.length} items ]` : `{ ${entries.length} keys }`),
    );
    d.addEventListener('toggle', () => (d.open ? open.add(path) : open.delete(path)));
    for (const [k, v] of entries) d.append(node(v, isArr ? null : k, `${path}.${k}`, open));
    return d;
  }
  let cls = 'null';
  if (typeof value === 'string') cls = 'str';
  else if (typeof value === 'number') cls = 'n';
  else if (typeof value === 'boolean') cls = 'b';
  return h('div', { class: 'row' }, label, h('span', { class: cls }, JSON.stringify(value)));
}

export function toast(message, { error = false, ms = 4000 } = {}) {
  const t = h('div', { class: `toast${error ? ' error' : ''}`, role: error ? 'alert' : 'status' }, message);
  document.getElementById('toasts').append(t);
  setTimeout(() => t.remove(), ms);
}

/**
 * A modal confirmation. Resolves to true when the user confirms. Its buttons say what they do:
 * `okLabel` ("Cancel job") and `dismiss` ("Keep job"); a destructive action's button is red
 * (`danger`, default: the label starts with Cancel, Delete, Remove, Purge or Fail). Escape or a
 * navigation (Back, a link, a new address) closes it unconfirmed, so a question asked on one page
 * never acts on the next; focus goes back to the control that opened it.
 */
export function confirmDialog(title, text, okLabel = 'OK', { dismiss, danger } = {}) {
  const dialog = document.getElementById('confirm');
  const ok = document.getElementById('confirm-ok');
  const no = document.getElementById('confirm-dismiss');
  const destructive = danger ?? /^(cancel|delete|remove|purge|fail)/i.test(okLabel);
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  ok.textContent = okLabel;
  ok.className = `btn ${destructive ? 'destructive' : 'primary'}`;
  no.textContent = dismiss || (destructive ? `Keep ${okLabel.replace(/^\S+\s*/, '') || 'it'}` : 'Go back');
  if (dialog.open) dialog.close(); // an older question is dropped, unconfirmed
  dialog.returnValue = '';
  const opener = document.activeElement;
  const openedAt = location.href;
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        const confirmed = dialog.returnValue === 'ok' && location.href === openedAt;
        // Back to the opener, unless the dialog closed because the page changed (the new page's
        // heading takes the focus then).
        if (location.href === openedAt && opener?.isConnected && opener.focus) opener.focus();
        resolve(confirmed);
      },
      { once: true },
    );
    dialog.showModal();
  });
}

/** Closes an open confirmation unconfirmed (app.js: on every navigation). */
export function closeDialogs() {
  const dialog = document.getElementById('confirm');
  if (dialog?.open) {
    dialog.returnValue = '';
    dialog.close();
  }
}
for (const type of ['popstate', 'hashchange']) window.addEventListener(type, closeDialogs);

export function errorBox(err) {
  return h('div', { class: 'error-box', role: 'alert' }, err?.message || String(err));
}

/** Runs an action from a button: disabled while it runs, its error shown as a toast. */
export async function act(button, fn) {
  button.disabled = true;
  try {
    return await fn();
  } catch (e) {
    toast(e.message || String(e), { error: true, ms: 8000 });
    return undefined;
  } finally {
    button.disabled = false;
  }
}

/** Replaces el's content only if `key` changed since the last call: no flicker, no lost scroll. */
export function renderIfChanged(el, key, build) {
  if (el.dataset.key === key) return false;
  el.dataset.key = key;
  clear(el).append(...[build()].flat(Infinity).filter(Boolean));
  return true;
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}
