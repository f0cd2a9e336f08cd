// Job detail: facts, progress, error and attempts, the actions the state machine allows, the
// per-kind results (images table, ingest counts), the timeline, payload and result as JSON.

import { api, meta } from './api.js';
import { stopButton } from './overview.js';
import { session } from './auth.js';
import { throttle } from './live.js';
import {
  act, badge, confirmDialog, errorBox, fmtBytes, fmtDuration, fmtNumber, h, jsonTree, kind, progressBar, renderIfChanged, shortId,
  time, toast,
} from './ui.js';

const FINISHED = ['completed', 'failed', 'cancelled'];

// SQS delays a message 15 minutes at most: a job due later than that after it was made is
// parked, and the sweeper sends its message 15 minutes before its time.
const PARKED_MS = 15 * 60e3;

// What a job that no worker holds is waiting for: a new job stays `pending` until a worker
// takes it (`enqueued_at`: its message is sent); `queued` is waiting again (a retry).
function waitingText(job) {
  if (job.status === 'pending') {
    if (job.enqueued_at) return 'waiting for a worker';
    const parked = job.scheduled_for && Date.parse(job.scheduled_for) - Date.parse(job.created_at) > PARKED_MS;
    return parked ? 'scheduled: queued 15 min before its time' : 'being submitted';
  }
  if (job.status === 'queued') return 'waiting in the queue';
  return '';
}

export async function jobDetail(el, id) {
  const open = { payload: new Set(['$']), result: new Set(['$']) };
  let job;
  try {
    job = await api(`jobs/${encodeURIComponent(id)}`, { what: 'Loading the job' });
  } catch (e) {
    el.append(h('h1', {}, 'Job'), errorBox(e), h('p', {}, h('a', { href: '#/jobs' }, '← all jobs')));
    if (e.status === 404 || e.status === 400) return null;
    throw e;
  }
  let images = null; // GET /jobs/{id}/images, for image jobs

  const head = h('div', { class: 'panel-head', id: 'job-head' });
  const facts = h('section', { class: 'panel', id: 'job-facts' });
  const problem = h('div', { id: 'job-error' });
  const actions = h('section', { class: 'panel', id: 'job-actions' });
  const kindSection = h('div', { id: 'job-kind' });
  const timeline = h('section', { class: 'panel', id: 'job-timeline' });
  const payload = h('section', { class: 'panel', id: 'job-payload' });
  const result = h('section', { class: 'panel', id: 'job-result' });
  el.append(
    h('p', { class: 'small' }, h('a', { href: '#/jobs' }, '← all jobs')),
    head,
    problem,
    h('div', { class: 'grid cols-2' }, h('div', {}, facts, actions), timeline),
    kindSection,
    h('div', { class: 'grid cols-2' }, payload, result),
  );

  // GET /jobs/{id}/images is paged in whole parts (1,000 images a page by default): the first
  // page loads with the job, "more" follows `next`, and a refresh reloads as many pages as shown.
  let pagesShown = 1;

  function imagesPath(next) {
    return `jobs/${job.id}/images${next ? `?next=${encodeURIComponent(next)}` : ''}`;
  }

  function addPage(data, got) {
    if (!data) return { ...got, images: got.images || [], errors: got.errors || [] };
    return { ...got, images: data.images.concat(got.images || []), errors: data.errors.concat(got.errors || []) };
  }

  async function loadImages() {
    if (job.kind !== 'image') return;
    if (images && images.final) return;
    try {
      let data = null;
      for (let n = 0; n < pagesShown && (n === 0 || data.next); n += 1) {
        data = addPage(data, await api(imagesPath(data?.next), { what: 'Loading the image results' }));
      }
      images = { data, final: FINISHED.includes(job.status) };
    } catch (e) {
      images = { error: e, final: e.status === 404 && FINISHED.includes(job.status) };
    }
  }

  async function moreImages(e) {
    await act(e.currentTarget, async () => {
      const got = await api(imagesPath(images.data.next), { what: 'Loading more images' });
      images = { ...images, data: addPage(images.data, got) };
      pagesShown += 1;
      render();
    });
  }

  function render() {
    // A pushed change carries part of the job (no result, no timeline): the fetch of the same
    // version that follows must still redraw.
    const v = `${job.version}${job.pushed ? ':pushed' : ''}`;
    const flagged = `${v}:${job.past_bound || ''}`;
    renderIfChanged(head, flagged, () => [
      h('h1', { class: 'mono' }, `Job ${job.id}`),
      kind(job.kind),
      badge(job.status),
      job.past_bound ? h('span', { class: 'flag past-bound', id: 'job-past-bound', title: job.past_bound }, 'past its bound') : null,
      h('span', { class: 'spacer' }),
      h('button', { class: 'btn small', onclick: () => navigator.clipboard?.writeText(job.id).then(() => toast('Job id copied')) }, 'Copy id'),
    ]);
    renderIfChanged(facts, `${v}:${Math.floor(Date.now() / 1000)}`, factsPanel);
    renderIfChanged(problem, v, errorPanel);
    renderIfChanged(actions, flagged, actionsPanel);
    renderIfChanged(kindSection, JSON.stringify([v, images?.data, images?.error?.message]), kindPanel);
    renderIfChanged(timeline, v, timelinePanel);
    renderIfChanged(payload, v, () => [h('h2', {}, 'Payload'), jsonTree(job.payload, open.payload)]);
    renderIfChanged(result, v, () => [
      h('h2', {}, 'Result'),
      job.result === undefined ? h('p', { class: 'muted' }, FINISHED.includes(job.status) ? 'No result.' : 'Not finished yet.') : jsonTree(job.result, open.result),
    ]);
  }

  function factsPanel() {
    const started = job.started_at ? Date.parse(job.started_at) : null;
    const ended = job.completed_at ? Date.parse(job.completed_at) : Date.now();
    const queue = job.priority >= 4 ? 'high-priority queue' : 'normal queue';
    const rows = [
      ['Status', badge(job.status)],
      ['Priority', `${job.priority} (${queue})`],
      ['Attempts', `${job.attempts} of ${job.max_attempts}`],
      ['Created', time(job.created_at)],
      job.scheduled_for
        ? ['Scheduled for', [new Date(job.scheduled_for).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' }), ' (', time(job.scheduled_for), ')']]
        : null,
      ['Started', time(job.started_at)],
      ['Finished', time(job.completed_at)],
      ['Run time', started && !['pending', 'queued'].includes(job.status) ? fmtDuration(ended - started) : '–'],
      ['Updated', time(job.updated_at)],
    ].filter(Boolean);
    const out = [h('h2', {}, 'Details'), h('dl', { class: 'facts' }, rows.map(([k, val]) => [h('dt', {}, k), h('dd', {}, val)]))];
    if (!FINISHED.includes(job.status) || job.progress?.percent) {
      const pct = job.progress?.percent ?? 0;
      out.push(
        h('h3', {}, 'Progress'),
        h('div', { class: 'progress-line', id: 'job-progress' }, progressBar(pct, { status: job.status, big: true }), h('span', { class: 'nowrap' }, `${pct}%`)),
        h('div', { class: 'small muted', id: 'job-stage' }, job.progress?.stage || waitingText(job)),
      );
    }
    return out;
  }

  function errorPanel() {
    if (!job.error) return null;
    let title;
    // A failed job is final: its attempts are used up, or its error is one no retry can fix.
    if (job.status === 'failed') {
      title = job.attempts >= job.max_attempts
        ? `Failed permanently, not retried (all ${job.max_attempts} attempt${job.max_attempts === 1 ? '' : 's'} used)`
        : `Failed permanently, not retried (after attempt ${job.attempts} of ${job.max_attempts})`;
    }
    else if (job.status === 'completed') return null;
    else title = `Attempt ${job.attempts} of ${job.max_attempts} failed; it will be retried`;
    return h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, `${title}: `), job.error);
  }

  function actionsPanel() {
    const allowed = meta.transitions[job.status] || [];
    const buttons = [];
    if (allowed.includes('cancelled')) {
      buttons.push(h('button', { class: 'btn danger', id: 'action-cancel', onclick: (e) => run(e, 'cancel') }, 'Cancel job'));
    }
    if (job.status === 'failed' && allowed.includes('queued')) {
      buttons.push(h('button', { class: 'btn primary', id: 'action-retry', onclick: (e) => run(e, 'retry') }, 'Retry'));
    }
    // Scheduled for later: run it now (POST /jobs/{id}/run; the status stays waiting).
    if (['pending', 'queued'].includes(job.status) && job.scheduled_for && Date.parse(job.scheduled_for) > Date.now()) {
      buttons.push(h('button', { class: 'btn primary', id: 'action-run-now', onclick: (e) => run(e, 'run') }, 'Run now'));
    }
    // Past its bound (the sweeper's rule): a running job cannot be cancelled, so an admin fails
    // it now as the sweeper would (POST /jobs/{id}/stop); a waiting one has Cancel above.
    let pastBound = null;
    if (job.past_bound) {
      pastBound = h('p', { class: 'small', id: 'past-bound-why' }, h('strong', {}, 'Past its bound: '), job.past_bound, '. The sweeper acts on it at its next run. ');
      if (session.me?.admin && job.status === 'processing') {
        buttons.push(stopButton(job, async (done) => {
          job = done;
          render();
        }));
      }
    }
    // Status moves by hand are the admins' (the API refuses others), and only an operator's.
    // A pending job whose message is sent waits for a worker: sending it again is refused.
    const manual = (session.me?.admin ? meta.operator_moves[job.status] || [] : []).filter(
      (s) => !(s === 'queued' && job.status === 'pending' && job.enqueued_at),
    );
    let manualRow = null;
    if (manual.length) {
      const select = h('select', { class: 'inline', id: 'manual-status', 'aria-label': 'New status' }, manual.map((s) => h('option', { value: s }, s)));
      manualRow = h(
        'div',
        { class: 'actions' },
        h('span', { class: 'muted small' }, 'Set by hand:'),
        select,
        h('button', { class: 'btn', id: 'action-set-status', onclick: (e) => run(e, 'status', select.value) }, 'Set status'),
      );
    }
    return [
      h('h2', {}, 'Actions'),
      pastBound,
      buttons.length || manualRow
        ? [h('div', { class: 'actions' }, buttons), manualRow]
        : h('p', { class: 'muted', id: 'no-actions' }, `A ${job.status} job is final: no action applies.`),
      h('p', { class: 'hint' }, `Allowed from ${job.status}: ${allowed.length ? allowed.join(', ') : 'nothing'}.`),
    ];
  }

  async function run(e, action, to) {
    const button = e.currentTarget; // gone from the event once we await
    const short = shortId(job.id);
    const questions = {
      cancel: [`Cancel job ${short}?`, 'A cancelled job is never run. This cannot be undone.', 'Cancel job', { dismiss: 'Keep job', danger: true }],
      retry: [`Retry job ${short}?`, 'The job is queued again with a fresh set of attempts.', 'Retry job', { dismiss: "Don't retry" }],
      run: [`Run job ${short} now?`, `It was scheduled for ${new Date(job.scheduled_for).toLocaleString()}; it runs as soon as a worker takes it.`, 'Run now', { dismiss: 'Keep the schedule' }],
      status: [`Set job ${short} to ${to}?`, `A manual change from ${job.status} to ${to}, through the same state machine the workers use.`, `Set ${to}`,
        { dismiss: `Keep ${job.status}`, danger: ['failed', 'cancelled'].includes(to) }],
    };
    const [title, text, ok, opts] = questions[action];
    if (!(await confirmDialog(title, text, ok, opts))) return;
    await act(button, async () => {
      if (action === 'cancel') job = await api(`jobs/${job.id}`, { method: 'DELETE', what: 'Cancelling' });
      if (action === 'retry') job = await api(`jobs/${job.id}/retry`, { method: 'POST', what: 'The retry' });
      if (action === 'run') job = await api(`jobs/${job.id}/run`, { method: 'POST', what: 'Run now' });
      if (action === 'status') job = await api(`jobs/${job.id}/status`, { method: 'PUT', body: { status: to }, what: 'The status change' });
      toast(`Job ${short} is now ${job.status}`);
      if (images) images.final = false;
      render();
    });
  }

  function kindPanel() {
    if (job.kind === 'image') return imagePanel();
    if (job.kind === 'log_ingest') return ingestPanel();
    if (job.kind === 'archive' && job.result) {
      const r = job.result;
      return h(
        'section',
        { class: 'panel' },
        h('h2', {}, 'Archive'),
        h('dl', { class: 'facts' },
          Object.entries(r).map(([k, val]) => [h('dt', {}, k.replaceAll('_', ' ')), h('dd', { class: 'mono' }, k === 'size' ? `${fmtBytes(val)} (${fmtNumber(val)} bytes)` : typeof val === 'object' ? JSON.stringify(val) : String(val))])),
      );
    }
    return null;
  }

  function ingestPanel() {
    const r = job.result || {};
    const file = job.payload?.file_name || job.payload?.key;
    return h(
      'section',
      { class: 'panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Log ingest'), h('span', { class: 'muted small' }, file || ''), h('span', { class: 'spacer' }), h('a', { href: `#/ingest/${job.id}`, id: 'follow-ingest' }, 'Entries and rejected lines →')),
      h('div', { class: 'grid cards' },
        [['lines read', r.lines_read], ['stored', r.lines_stored], ['rejected', r.lines_rejected], ['file size', job.payload?.size ? fmtBytes(job.payload.size) : undefined]].map(([k, val]) =>
          h('div', { class: 'card' }, h('div', { class: 'label' }, k), h('div', { class: 'value' }, typeof val === 'string' ? val : fmtNumber(val))))),
    );
  }

  function imagePanel() {
    const r = job.result || {};
    const data = images?.data;
    const parts = [];
    const summary = [
      ['images measured', r.images_ok],
      ['images failed', r.images_failed],
      ['stores', r.stores ?? new Set((job.payload?.visits || []).map((v) => v.store_id)).size],
      ['bytes read', r.bytes_read !== undefined ? fmtBytes(r.bytes_read) : undefined],
    ];
    parts.push(
      h('div', { class: 'grid cards' },
        summary.map(([k, val]) => h('div', { class: 'card', 'data-metric': k }, h('div', { class: 'label' }, k), h('div', { class: 'value' }, typeof val === 'string' ? val : fmtNumber(val))))),
    );
    if (data && data.parts_total) {
      const pct = Math.round((100 * (data.parts_done || 0)) / data.parts_total);
      parts.push(h('div', { class: 'progress-line', id: 'image-parts' }, progressBar(pct, { status: job.status }), h('span', { class: 'small nowrap' }, `${data.parts_done}/${data.parts_total} parts`)));
    }
    if (data) {
      const rows = data.images || [];
      const shown = rows.length + (data.errors || []).length;
      parts.push(
        h('h3', {}, `Images (${rows.length})`),
        h('div', { class: 'actions', id: 'images-paging' },
          h('span', { class: 'small muted', id: 'images-shown' }, `${fmtNumber(shown)} of ${fmtNumber(data.images_total ?? shown)} images`),
          data.next ? h('button', { class: 'btn small', id: 'images-more', onclick: moreImages }, 'More') : null),
        rows.length
          ? h('div', { class: 'table-wrap' }, h('table', { id: 'images' },
              h('thead', {}, h('tr', {}, ['Store', 'URL', 'Width', 'Height', 'Perimeter', 'Bytes'].map((t) => h('th', {}, t)))),
              // Image URLs are anyone's: links to open on purpose, never loaded by the console
              // (its CSP allows images from its own origin only).
              h('tbody', {}, rows.map((im) => h('tr', {},
                h('td', { class: 'mono' }, im.store_id),
                h('td', { class: 'msg mono small' }, h('a', { href: im.url, target: '_blank', rel: 'noreferrer noopener' }, im.url)),
                h('td', { class: 'num' }, fmtNumber(im.width)),
                h('td', { class: 'num' }, fmtNumber(im.height)),
                h('td', { class: 'num perimeter' }, fmtNumber(im.perimeter)),
                h('td', { class: 'num' }, fmtBytes(im.bytes_read)),
              )))))
          : h('p', { class: 'muted' }, FINISHED.includes(job.status) ? 'No image was measured.' : 'No image measured yet.'),
      );
    }
    const errors = data?.errors || r.errors || [];
    if (errors.length) {
      parts.push(
        h('h3', {}, `Errors (${errors.length})`),
        h('table', { id: 'image-errors' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Store'), h('th', {}, 'URL'), h('th', {}, 'Error'))),
          h('tbody', {}, errors.map((er) => h('tr', {}, h('td', { class: 'mono' }, er.store_id), h('td', { class: 'msg mono small' }, er.url || '–'), h('td', { class: 'msg' }, er.error))))),
      );
    }
    if (images?.error) {
      parts.push(
        images.error.status === 404
          ? h('p', { class: 'muted small' }, 'Per-image results are not available from this API (GET /jobs/{id}/images answered 404).')
          : errorBox(images.error),
      );
    }
    return h('section', { class: 'panel', id: 'image-results' }, h('h2', {}, 'Retail Pulse images'), parts);
  }

  function timelinePanel() {
    const items = job.timeline || [];
    let prev = null;
    return [
      h('h2', {}, `Timeline (${items.length})`),
      h('ol', { class: 'timeline', id: 'timeline' },
        items.map((t) => {
          const at = Date.parse(t.at);
          const delta = prev === null ? '' : ` · +${fmtDuration(at - prev)}`;
          prev = at;
          return h('li', { class: `s-${t.status}` },
            h('div', {}, badge(t.status), ' ', t.message),
            h('div', { class: 'when' }, h('time', { datetime: t.at, title: t.at }, new Date(at).toLocaleString()), delta, t.attempt ? ` · attempt ${t.attempt}` : ''));
        })),
    ];
  }

  async function refresh() {
    job = await api(`jobs/${job.id}`, { what: 'Refreshing the job' });
    await loadImages();
    render();
  }

  // A pushed change (live.js): what the message carries is applied as is; a finished job is
  // fetched once more for what it does not carry (result, timeline, finish time).
  const imagesSoon = throttle(async () => {
    await loadImages();
    render();
  }, 2000);
  async function onPush(msg) {
    if (msg.job_id !== job.id || msg.job_version <= job.version) return;
    job = {
      ...job,
      status: msg.status,
      attempts: msg.attempts,
      error: msg.error ?? null,
      updated_at: msg.updated_at,
      version: msg.job_version,
      pushed: true,
      progress: { ...(job.progress || {}), percent: msg.progress, stage: msg.stage },
    };
    if (msg.counts) {
      job.result = { ...(job.result || {}), lines_read: msg.counts.read, lines_stored: msg.counts.stored, lines_rejected: msg.counts.rejected };
    }
    render();
    if (FINISHED.includes(msg.status)) {
      if (images) images.final = false;
      await refresh();
    } else if (job.kind === 'image') {
      imagesSoon(); // the parts done so far
    }
  }

  await loadImages();
  render();
  const instance = { refresh, onPush };
  Object.defineProperty(instance, 'interval', { get: () => (FINISHED.includes(job.status) ? 5000 : 1000) });
  return instance;
}
