// Jobs list: filters in the URL (#/jobs?status=failed,queued&kind=image&limit=20&page=2&cursor=..),
// newest first, cursor pages, in-place auto-refresh, row actions and bulk retry.

import { api, meta } from './api.js';
import { tick30 } from './overview.js';
import { throttle } from './live.js';
import { act, badge, confirmDialog, errorBox, h, jobLink, kind, progressBar, renderIfChanged, shortId, time, toast } from './ui.js';

const LIMITS = [10, 20, 50, 100];

function read(params) {
  const statuses = params
    .getAll('status')
    .flatMap((s) => s.split(','))
    .filter((s) => meta.statuses.includes(s));
  const k = params.get('kind') || '';
  const limit = Number(params.get('limit')) || 20;
  return {
    statuses: [...new Set(statuses)],
    kind: meta.kinds.includes(k) ? k : '',
    limit: LIMITS.includes(limit) ? limit : 20,
    page: Math.max(1, Number(params.get('page')) || 1),
    cursor: params.get('cursor') || '',
  };
}

function hashOf(s) {
  const q = new URLSearchParams();
  if (s.statuses.length) q.set('status', s.statuses.join(','));
  if (s.kind) q.set('kind', s.kind);
  if (s.limit !== 20) q.set('limit', String(s.limit));
  if (s.page > 1 && s.cursor) {
    q.set('page', String(s.page));
    q.set('cursor', s.cursor);
  }
  const qs = q.toString();
  return `#/jobs${qs ? `?${qs}` : ''}`;
}

function apiQuery(s) {
  const q = new URLSearchParams();
  for (const st of s.statuses) q.append('status', st);
  if (s.kind) q.set('kind', s.kind);
  q.set('limit', String(s.limit));
  if (s.cursor) q.set('next', s.cursor);
  return `jobs?${q}`;
}

/** Cursors of the pages seen for one filter (page n -> its cursor), so Previous works. */
function cursors(s) {
  const key = `cursors:${JSON.stringify([s.statuses, s.kind, s.limit])}`;
  return {
    get: () => JSON.parse(sessionStorage.getItem(key) || '[""]'),
    set: (list) => sessionStorage.setItem(key, JSON.stringify(list)),
  };
}

export async function jobsList(el, params) {
  let state = read(params);
  let page = null;

  const chips = h('div', { class: 'chips', role: 'group', 'aria-label': 'Status filter' });
  const kindSelect = h(
    'select',
    { class: 'inline', id: 'kind-filter', 'aria-label': 'Kind filter', onchange: () => go({ kind: kindSelect.value }) },
    h('option', { value: '' }, 'all kinds'),
    meta.kinds.map((k) => h('option', { value: k }, k)),
  );
  const limitSelect = h(
    'select',
    { class: 'inline', id: 'page-size', 'aria-label': 'Page size', onchange: () => go({ limit: Number(limitSelect.value) }) },
    LIMITS.map((n) => h('option', { value: String(n) }, `${n} per page`)),
  );
  const bulk = h('button', { class: 'btn danger', id: 'bulk-retry', onclick: () => bulkRetry() }, 'Retry failed…');
  const summary = h('span', { class: 'muted small', id: 'list-summary' });
  const table = h('div', { class: 'table-wrap', id: 'jobs-table' });
  const prev = h('button', { class: 'btn', id: 'prev-page', onclick: () => turn(-1) }, '← Newer');
  const next = h('button', { class: 'btn', id: 'next-page', onclick: () => turn(1) }, 'Older →');
  const pageLabel = h('span', { class: 'muted', id: 'page-label' });

  el.append(
    h('div', { class: 'panel-head' }, h('h1', {}, 'Jobs'), h('span', { class: 'spacer' }), h('a', { class: 'btn primary', href: '#/new' }, 'New job')),
    h(
      'section',
      { class: 'panel' },
      h('div', { class: 'filters' }, chips, kindSelect, limitSelect, h('span', { class: 'spacer' }), bulk),
      table,
      h('div', { class: 'actions' }, prev, pageLabel, next, h('span', { class: 'spacer' }), summary),
    ),
  );

  function go(change) {
    const s = { ...state, ...change, page: 1, cursor: '' };
    location.hash = hashOf(s);
  }

  function syncFilters() {
    renderIfChanged(chips, JSON.stringify(state.statuses), () => [
      h('button', { class: 'chip', 'aria-pressed': String(!state.statuses.length), onclick: () => go({ statuses: [] }) }, 'all'),
      ...meta.statuses.map((st) =>
        h(
          'button',
          {
            class: 'chip',
            'data-status': st,
            'aria-pressed': String(state.statuses.includes(st)),
            onclick: () => {
              const on = state.statuses.includes(st);
              go({ statuses: on ? state.statuses.filter((x) => x !== st) : [...state.statuses, st] });
            },
          },
          st,
        ),
      ),
    ]);
    kindSelect.value = state.kind;
    limitSelect.value = String(state.limit);
    const failedIncluded = !state.statuses.length || state.statuses.includes('failed');
    bulk.disabled = !failedIncluded;
    bulk.title = failedIncluded
      ? `Retry every failed${state.kind ? ` ${state.kind}` : ''} job`
      : 'The status filter excludes failed jobs';
  }

  function turn(dir) {
    const c = cursors(state);
    const list = c.get();
    if (dir > 0 && page?.next) {
      list[state.page] = page.next;
      c.set(list);
      location.hash = hashOf({ ...state, page: state.page + 1, cursor: page.next });
    } else if (dir < 0 && state.page > 1) {
      const target = state.page - 1;
      const cursor = list[target - 1];
      location.hash = cursor === undefined || target === 1 ? hashOf({ ...state, page: 1, cursor: '' }) : hashOf({ ...state, page: target, cursor });
    }
  }

  async function load() {
    table.setAttribute('aria-busy', 'true');
    try {
      page = await api(apiQuery(state), { what: 'Listing jobs' });
    } catch (e) {
      page = null;
      renderIfChanged(table, `err:${e.message}`, () => [
        errorBox(e),
        state.cursor ? h('a', { href: hashOf({ ...state, page: 1, cursor: '' }) }, 'Back to the first page') : null,
      ]);
      prev.disabled = state.page <= 1;
      next.disabled = true;
      throw e;
    } finally {
      table.removeAttribute('aria-busy');
      table.classList.remove('stale');
    }
    const jobs = page.jobs || [];
    renderIfChanged(table, JSON.stringify([jobs.map((j) => [j.id, j.version]), tick30()]), () => jobTable(jobs));
    prev.disabled = state.page <= 1;
    next.disabled = !page.next;
    pageLabel.textContent = `page ${state.page}`;
    const filtered = [state.statuses.length ? state.statuses.join(' or ') : '', state.kind].filter(Boolean).join(', ');
    summary.textContent = `${jobs.length} job${jobs.length === 1 ? '' : 's'} on this page${filtered ? ` · ${filtered}` : ''} · newest first`;
  }

  function jobTable(jobs) {
    if (!jobs.length) {
      return h(
        'div',
        { class: 'empty' },
        state.statuses.length || state.kind ? 'No jobs match these filters. ' : 'No jobs yet. ',
        state.statuses.length || state.kind ? h('a', { href: '#/jobs' }, 'Clear the filters') : h('a', { href: '#/new' }, 'Create one'),
      );
    }
    return h(
      'table',
      { id: 'jobs' },
      h(
        'thead',
        {},
        h('tr', {}, ['Job', 'Kind', 'Status', 'Priority', 'Progress', 'Attempts', 'Created', 'Updated', ''].map((t) => h('th', {}, t))),
      ),
      h('tbody', {}, jobs.map(row)),
    );
  }

  function row(j) {
    const finished = ['completed', 'failed', 'cancelled'].includes(j.status);
    const canCancel = (meta.transitions[j.status] || []).includes('cancelled');
    const showProgress = !finished && (j.progress?.percent > 0 || j.status === 'processing');
    return h(
      'tr',
      {
        class: 'clickable',
        'data-job': j.id,
        'data-status': j.status,
        onclick: (e) => {
          if (!e.target.closest('a,button')) location.hash = `#/jobs/${j.id}`;
        },
      },
      h('td', {}, jobLink(j.id)),
      h('td', {}, kind(j.kind)),
      h('td', {}, badge(j.status)),
      h('td', { class: 'num' }, String(j.priority)),
      h(
        'td',
        {},
        showProgress
          ? h('div', { class: 'progress-line', title: j.progress?.stage || '' }, progressBar(j.progress?.percent), h('span', { class: 'small muted nowrap' }, `${j.progress?.percent ?? 0}%`))
          : h('span', { class: 'muted small' }, ['pending', 'queued'].includes(j.status) && j.scheduled_for && Date.parse(j.scheduled_for) > Date.now() ? `scheduled` : '–'),
      ),
      h('td', { class: 'num' }, `${j.attempts}/${j.max_attempts}`),
      h('td', {}, time(j.created_at)),
      h('td', {}, time(j.updated_at)),
      h(
        'td',
        { class: 'right nowrap' },
        canCancel ? h('button', { class: 'btn small danger', onclick: (e) => rowAction(e, j, 'cancel') }, 'Cancel job') : null,
        j.status === 'failed' ? h('button', { class: 'btn small', onclick: (e) => rowAction(e, j, 'retry') }, 'Retry') : null,
      ),
    );
  }

  async function rowAction(e, j, action) {
    const button = e.currentTarget; // gone from the event once we await
    if (action === 'cancel' && !(await confirmDialog(`Cancel job ${shortId(j.id)}?`, 'A cancelled job is never run.', 'Cancel job', { dismiss: 'Keep job', danger: true }))) return;
    await act(button, async () => {
      if (action === 'cancel') {
        await api(`jobs/${j.id}`, { method: 'DELETE', what: 'Cancelling' });
        toast(`Job ${shortId(j.id)} cancelled`);
      } else {
        await api(`jobs/${j.id}/retry`, { method: 'POST', what: 'The retry' });
        toast(`Job ${shortId(j.id)} queued again`);
      }
      await load();
    });
  }

  async function bulkRetry() {
    await act(bulk, async () => {
      const filter = state.kind ? { kind: state.kind } : { all: true };
      const dry = await api('jobs/retry', { method: 'POST', body: { ...filter, dry_run: true }, what: 'Counting failed jobs' });
      const n = dry.would_retry ?? 0;
      const what = `failed${state.kind ? ` ${state.kind}` : ''} job${n === 1 ? '' : 's'}`;
      if (!n) {
        toast(`There are no ${what} to retry.`);
        return;
      }
      const ok = await confirmDialog(`Retry ${n} ${what}?`, `${n} ${what} will be queued again, each with a fresh set of attempts.`, `Retry ${n}`, { dismiss: "Don't retry" });
      if (!ok) return;
      const done = await api('jobs/retry', { method: 'POST', body: filter, what: 'The bulk retry' });
      const retried = done.retried ?? 0;
      toast(retried === n ? `Retried ${retried} ${what}.` : `Retried ${retried} of ${n} ${what} (the others changed meanwhile).`);
      await load();
    });
  }

  syncFilters();
  await load();
  // A pushed change of any job may move rows in or out of this page: the page again, at most
  // once a second (rows are redrawn only when a job on it changed).
  const loadSoon = throttle(load, 1000);
  return {
    refresh: load,
    onPush: loadSoon,
    update: async (p) => {
      state = read(p);
      table.classList.add('stale'); // the rows are the old filter's until the new page arrives
      syncFilters();
      await load();
    },
  };
}
