// Jobs list: filters in the URL (#/jobs?status=failed,queued&kind=image&q=..&sort=updated&order=asc&limit=20&page=2&cursor=..),
// summary rows (GET /jobs?view=summary) with a total, search, sort, cursor pages, in-place
// auto-refresh, row actions, a selection's retry / cancel, failures grouped by reason, bulk retry.

import { api, meta } from './api.js';
import { throttle } from './live.js';
import { tick30, truncate } from './overview.js';
import { act, badge, confirmDialog, errorBox, fmtNumber, h, jobLink, kind, progressBar, renderIfChanged, shortId, time, toast } from './ui.js';

const LIMITS = [10, 20, 50, 100];
/** Sort choices: value `<sort>:<order>` -> label. */
const SORTS = {
  'created:desc': 'newest first',
  'created:asc': 'oldest first',
  'updated:desc': 'recently changed',
  'updated:asc': 'least recently changed',
  'priority:desc': 'highest priority',
  'priority:asc': 'lowest priority',
};

function read(params) {
  const statuses = params
    .getAll('status')
    .flatMap((s) => s.split(','))
    .filter((s) => meta.statuses.includes(s));
  const k = params.get('kind') || '';
  const limit = Number(params.get('limit')) || 20;
  const sort = `${params.get('sort') || 'created'}:${params.get('order') || 'desc'}`;
  return {
    statuses: [...new Set(statuses)],
    kind: meta.kinds.includes(k) ? k : '',
    q: (params.get('q') || '').trim(),
    sort: SORTS[sort] ? sort : 'created:desc',
    limit: LIMITS.includes(limit) ? limit : 20,
    page: Math.max(1, Number(params.get('page')) || 1),
    cursor: params.get('cursor') || '',
    // A chart bar's link: by last change, from the end of this UTC minute (kept only with that sort).
    until: sort === 'updated:desc' && /^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(params.get('updated_until') || '') ? params.get('updated_until') : '',
  };
}

function hashOf(s) {
  const q = new URLSearchParams();
  if (s.statuses.length) q.set('status', s.statuses.join(','));
  if (s.kind) q.set('kind', s.kind);
  if (s.q) q.set('q', s.q);
  if (s.sort !== 'created:desc') {
    const [sort, order] = s.sort.split(':');
    q.set('sort', sort);
    q.set('order', order);
  }
  if (s.limit !== 20) q.set('limit', String(s.limit));
  if (s.until) q.set('updated_until', s.until);
  if (s.page > 1 && s.cursor) {
    q.set('page', String(s.page));
    q.set('cursor', s.cursor);
  }
  const qs = q.toString();
  return `#/jobs${qs ? `?${qs}` : ''}`;
}

function apiQuery(s) {
  const q = new URLSearchParams({ view: 'summary' });
  for (const st of s.statuses) q.append('status', st);
  if (s.kind) q.set('kind', s.kind);
  if (s.q) q.set('q', s.q);
  const [sort, order] = s.sort.split(':');
  q.set('sort', sort);
  q.set('order', order);
  q.set('limit', String(s.limit));
  if (s.cursor) q.set('next', s.cursor);
  else if (s.until) q.set('updated_until', s.until);
  return `jobs?${q}`;
}

/** The first page, asked for by app.js before the view exists (while it reads who is signed in). */
let early = null;

/** Starts the list's first request for these parameters now; the view's first load takes it. */
export function prefetch(params) {
  const path = apiQuery(read(params));
  const answer = api(path, { what: 'Listing jobs' });
  answer.catch(() => {}); // the view's load shows the error
  early = { path, answer };
}

function takeEarly(path) {
  const e = early;
  early = null;
  return e?.path === path ? e.answer : null;
}

/** Cursors of the pages seen for one filter (page n -> its cursor), so Previous works. */
function cursors(s) {
  const key = `cursors:${JSON.stringify([s.statuses, s.kind, s.q, s.sort, s.limit, s.until])}`;
  return {
    get: () => JSON.parse(sessionStorage.getItem(key) || '[""]'),
    set: (list) => sessionStorage.setItem(key, JSON.stringify(list)),
  };
}

export async function jobsList(el, params) {
  let state = read(params);
  let page = null;
  /** Ids of the selected rows (kept across refreshes and pages of one filter). */
  const selected = new Set();

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
  const search = h('input', {
    type: 'search',
    class: 'inline',
    id: 'job-search',
    placeholder: 'id, short id, asset, file, store',
    'aria-label': 'Find a job by id, short id, asset id, file name or store id',
  });
  const searchForm = h(
    'form',
    {
      class: 'search',
      role: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        go({ q: search.value.trim() });
      },
    },
    search,
    h('button', { class: 'btn', type: 'submit', id: 'job-search-go' }, 'Find'),
  );
  const sortSelect = h(
    'select',
    { class: 'inline', id: 'sort', 'aria-label': 'Sort', onchange: () => go({ sort: sortSelect.value }) },
    Object.entries(SORTS).map(([v, label]) => h('option', { value: v }, label)),
  );
  const total = h('span', { class: 'muted', id: 'list-total' });
  const selectionBar = h('div', { class: 'actions selection', id: 'selection-bar', hidden: true });
  const groupsPanel = h('div', { id: 'failure-groups' });
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
      h('div', { class: 'filters' }, searchForm, chips, kindSelect, sortSelect, limitSelect, h('span', { class: 'spacer' }), bulk),
      h('div', { class: 'actions' }, total),
      groupsPanel,
      selectionBar,
      table,
      h('div', { class: 'actions' }, prev, pageLabel, next, h('span', { class: 'spacer' }), summary),
    ),
  );

  function go(change) {
    const s = { ...state, until: '', ...change, page: 1, cursor: '' };
    selected.clear();
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
    sortSelect.value = state.sort;
    if (document.activeElement !== search) search.value = state.q;
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

  // Loads overlap (a pushed change's refresh still on its way when the filter or page changes):
  // only the latest one started may draw, else an older answer would put back the old rows.
  let loads = 0;
  async function load() {
    const mine = ++loads;
    table.setAttribute('aria-busy', 'true');
    try {
      const path = apiQuery(state);
      const answer = await (takeEarly(path) || api(path, { what: 'Listing jobs' }));
      if (mine !== loads) return;
      page = answer;
    } catch (e) {
      if (mine !== loads) return;
      page = null;
      renderIfChanged(table, `err:${e.message}`, () => [
        errorBox(e),
        state.cursor ? h('a', { href: hashOf({ ...state, page: 1, cursor: '' }) }, 'Back to the first page') : null,
      ]);
      prev.disabled = state.page <= 1;
      next.disabled = true;
      throw e;
    } finally {
      if (mine === loads) {
        table.removeAttribute('aria-busy');
        table.classList.remove('stale');
      }
    }
    const jobs = page.jobs || [];
    renderIfChanged(table, JSON.stringify([jobs.map((j) => [j.id, j.version, j.past_bound]), tick30()]), () => jobTable(jobs));
    syncSelection();
    prev.disabled = state.page <= 1;
    next.disabled = !page.next;
    const pages = Math.max(1, Math.ceil((page.total || 0) / state.limit));
    pageLabel.textContent = `page ${state.page}`;
    const filtered = [state.statuses.length ? state.statuses.join(' or ') : '', state.kind, state.q ? `“${state.q}”` : ''].filter(Boolean).join(', ');
    total.textContent = `${page.total_estimated ? 'about ' : ''}${fmtNumber(page.total)} job${page.total === 1 ? '' : 's'}${filtered ? ` · ${filtered}` : ''}`;
    summary.textContent = `${jobs.length} on this page of ${page.total_estimated ? 'about ' : ''}${fmtNumber(pages)} · ${SORTS[state.sort]}${state.until ? `, changed by the end of ${new Date(`${state.until}:00Z`).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' })} (the chart's minute)` : ''}`;
    if (state.statuses.length === 1 && state.statuses[0] === 'failed' && !state.q) await loadGroups();
    else {
      groupsPanel.replaceChildren();
      delete groupsPanel.dataset.key; // drawn again when failed is the filter again
    }
  }

  /** Failed jobs grouped by their reason, each with "Retry these". */
  async function loadGroups() {
    let data;
    try {
      data = await api(`jobs/failures${state.kind ? `?kind=${state.kind}` : ''}`, { what: 'Grouping failures' });
    } catch (e) {
      renderIfChanged(groupsPanel, `err:${e.message}`, () => errorBox(e));
      return;
    }
    renderIfChanged(groupsPanel, JSON.stringify(data), () => {
      if (!data.groups.length) return [];
      const of = data.failed !== null && data.failed > data.read ? ` (the latest ${fmtNumber(data.read)} of ${fmtNumber(data.failed)})` : '';
      return h(
        'details',
        { class: 'groups', open: true },
        h('summary', {}, `Failures by reason${of}`),
        h(
          'table',
          { id: 'failure-groups-table' },
          h('thead', {}, h('tr', {}, ['Reason', 'Jobs', 'Kinds', 'Last failed', ''].map((t) => h('th', {}, t)))),
          h(
            'tbody',
            {},
            data.groups.map((g) =>
              h(
                'tr',
                { 'data-reason': g.reason },
                h('td', { class: 'msg', title: g.example }, g.reason),
                h('td', { class: 'num' }, fmtNumber(g.count)),
                h('td', {}, g.kinds.join(', ')),
                h('td', {}, time(g.last_failed_at)),
                h(
                  'td',
                  { class: 'right' },
                  h('button', { class: 'btn small', onclick: (e) => selectionAction(e.currentTarget, 'retry', g.job_ids, `with “${g.reason}”`) }, 'Retry these'),
                ),
              ),
            ),
          ),
        ),
      );
    });
  }

  /** The selection bar: how many are selected, and what can be done with them. */
  function syncSelection() {
    const n = selected.size;
    selectionBar.hidden = n === 0;
    renderIfChanged(selectionBar, String(n), () => [
      h('span', { id: 'selection-count' }, `${n} selected`),
      h('button', { class: 'btn', id: 'retry-selected', onclick: (e) => selectionAction(e.currentTarget, 'retry', [...selected]) }, 'Retry selected…'),
      h('button', { class: 'btn danger', id: 'cancel-selected', onclick: (e) => selectionAction(e.currentTarget, 'cancel', [...selected]) }, 'Cancel selected…'),
      h('button', { class: 'btn', id: 'clear-selection', onclick: () => { selected.clear(); table.querySelectorAll('input[data-select]').forEach((c) => (c.checked = false)); syncSelection(); } }, 'Clear'),
    ]);
  }

  /**
   * Retry or cancel jobs by id on the server (at most 100 a call), after a dry-run count and the
   * same confirmation as everywhere.
   */
  async function selectionAction(button, action, ids, what = 'selected') {
    await act(button, async () => {
      const [path, counted, doneKey, verb] =
        action === 'retry' ? ['jobs/retry', 'would_retry', 'retried', 'Retry'] : ['jobs/cancel', 'would_cancel', 'cancelled', 'Cancel'];
      let n = 0;
      for (let i = 0; i < ids.length; i += 100) {
        const dry = await api(path, { method: 'POST', body: { ids: ids.slice(i, i + 100), dry_run: true }, what: 'Counting' });
        n += dry[counted] ?? 0;
      }
      const able = action === 'retry' ? 'failed' : 'pending or queued';
      if (!n) {
        toast(`None of the ${ids.length} ${what} job${ids.length === 1 ? ' is' : 's are'} ${able}.`);
        return;
      }
      const text =
        action === 'retry'
          ? `${n} failed job${n === 1 ? '' : 's'} ${what} will be queued again, each with a fresh set of attempts.`
          : `${n} job${n === 1 ? '' : 's'} ${what} will never run. This cannot be undone.`;
      const skipped = ids.length - n;
      const ok = await confirmDialog(
        `${verb} ${n} job${n === 1 ? '' : 's'}?`,
        skipped > 0 ? `${text} ${skipped} of the ${ids.length} are not ${able} and are left alone.` : text,
        `${verb} ${n}`,
      );
      if (!ok) return;
      let done = 0;
      for (let i = 0; i < ids.length; i += 100) {
        const r = await api(path, { method: 'POST', body: { ids: ids.slice(i, i + 100) }, what: `${verb} of the selection` });
        done += r[doneKey] ?? 0;
      }
      toast(done === n ? `${verb === 'Retry' ? 'Retried' : 'Cancelled'} ${done}.` : `${verb === 'Retry' ? 'Retried' : 'Cancelled'} ${done} of ${n} (the others changed meanwhile).`);
      selected.clear();
      await load();
    });
  }

  function jobTable(jobs) {
    if (!jobs.length) {
      return h(
        'div',
        { class: 'empty' },
        state.q ? `No job found for “${state.q}”. ` : state.statuses.length || state.kind ? 'No jobs match these filters. ' : 'No jobs yet. ',
        state.q || state.statuses.length || state.kind ? h('a', { href: '#/jobs' }, 'Clear the filters') : h('a', { href: '#/new' }, 'Create one'),
      );
    }
    return h(
      'table',
      { id: 'jobs' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h(
            'th',
            {},
            h('input', {
              type: 'checkbox',
              id: 'select-all',
              'aria-label': 'Select every job on this page',
              onchange: (e) => {
                for (const j of jobs) (e.target.checked ? selected.add(j.id) : selected.delete(j.id));
                table.querySelectorAll('input[data-select]').forEach((c) => (c.checked = e.target.checked));
                syncSelection();
              },
            }),
          ),
          ['Job', 'Kind', 'Status', 'Priority', 'Progress', 'Error', 'Attempts', 'Created', 'Updated', ''].map((t) => h('th', {}, t)),
        ),
      ),
      h('tbody', {}, jobs.map(row)),
    );
  }

  function row(j) {
    const finished = ['completed', 'failed', 'cancelled'].includes(j.status);
    const canCancel = (meta.transitions[j.status] || []).includes('cancelled');
    const showProgress = (!finished && (j.progress?.percent > 0 || j.status === 'processing')) || (j.status === 'failed' && j.progress?.percent > 0);
    const scheduled = ['pending', 'queued'].includes(j.status) && j.scheduled_for && Date.parse(j.scheduled_for) > Date.now();
    return h(
      'tr',
      {
        class: 'clickable',
        'data-job': j.id,
        'data-status': j.status,
        onclick: (e) => {
          if (!e.target.closest('a,button,input')) location.hash = `#/jobs/${j.id}`;
        },
      },
      h(
        'td',
        {},
        h('input', {
          type: 'checkbox',
          'data-select': j.id,
          checked: selected.has(j.id) || undefined,
          'aria-label': `Select job ${shortId(j.id)}`,
          onchange: (e) => {
            if (e.target.checked) selected.add(j.id);
            else selected.delete(j.id);
            syncSelection();
          },
        }),
      ),
      h('td', {}, jobLink(j.id), j.key ? h('div', { class: 'small muted', title: 'asset, file or store' }, j.key) : null),
      h('td', {}, kind(j.kind)),
      h('td', {}, badge(j.status), j.past_bound ? h('span', { class: 'flag past-bound', 'data-past-bound': j.id, title: j.past_bound }, 'past its bound') : null),
      h('td', { class: 'num' }, String(j.priority)),
      h(
        'td',
        {},
        showProgress
          ? h('div', { class: 'progress-line', title: j.progress?.stage || '' }, progressBar(j.progress?.percent, { status: j.status }), h('span', { class: 'small muted nowrap' }, `${j.progress?.percent ?? 0}%`))
          : scheduled
            ? h('span', { class: 'muted small', 'data-scheduled': j.id }, 'scheduled ', h('time', { datetime: j.scheduled_for, class: 'nowrap' }, new Date(j.scheduled_for).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })), ' (', time(j.scheduled_for), ')')
            : h('span', { class: 'muted small' }, '–'),
      ),
      h('td', { class: 'msg small', title: j.error || '' }, j.error ? truncate(j.error, 90) : ''),
      h('td', { class: 'num' }, `${j.attempts}/${j.max_attempts}`),
      h('td', {}, time(j.created_at)),
      h('td', {}, time(j.updated_at)),
      h(
        'td',
        { class: 'right nowrap' },
        canCancel ? h('button', { class: 'btn small danger', onclick: (e) => rowAction(e, j, 'cancel') }, 'Cancel job') : null,
        j.status === 'failed' ? h('button', { class: 'btn small', onclick: (e) => rowAction(e, j, 'retry') }, 'Retry…') : null,
        scheduled ? h('button', { class: 'btn small', 'data-run-now': j.id, onclick: (e) => rowAction(e, j, 'run') }, 'Run now…') : null,
      ),
    );
  }

  async function rowAction(e, j, action) {
    const button = e.currentTarget; // gone from the event once we await
    // The same questions as the job's own page.
    const ask =
      action === 'cancel'
        ? [`Cancel job ${shortId(j.id)}?`, 'A cancelled job is never run. This cannot be undone.', 'Cancel job', { dismiss: 'Keep job', danger: true }]
        : action === 'run'
          ? [`Run job ${shortId(j.id)} now?`, `It was scheduled for ${new Date(j.scheduled_for).toLocaleString()}; it runs as soon as a worker takes it.`, 'Run now', { dismiss: 'Keep the schedule' }]
          : [`Retry job ${shortId(j.id)}?`, 'The job is queued again with a fresh set of attempts.', 'Retry job', { dismiss: "Don't retry" }];
    if (!(await confirmDialog(...ask))) return;
    await act(button, async () => {
      if (action === 'cancel') {
        await api(`jobs/${j.id}`, { method: 'DELETE', what: 'Cancelling' });
        toast(`Job ${shortId(j.id)} cancelled`);
      } else if (action === 'run') {
        await api(`jobs/${j.id}/run`, { method: 'POST', what: 'Run now' });
        toast(`Job ${shortId(j.id)} runs now`);
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
