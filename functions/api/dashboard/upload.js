// Upload a .jsonl / .jsonl.gz file (directly through the API, or to a presigned S3 URL for big
// files) with a progress bar, then follow the ingest: stages, counts, rejected lines, entries.

import { api, meta, url, xhrUpload } from './api.js';
import { badge, errorBox, fmtBytes, fmtNumber, h, jobLink, progressBar, renderIfChanged, time } from './ui.js';
import { throttle } from './live.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

function checkFile(file, mode) {
  if (!file) return 'Choose a file first.';
  if (!/\.jsonl(\.gz)?$/.test(file.name)) return `${file.name}: only .jsonl or .jsonl.gz files are accepted.`;
  if (!file.size) return `${file.name} is empty.`;
  if (mode === 'direct' && meta.max_upload_bytes && file.size > meta.max_upload_bytes) {
    return `${file.name} is ${fmtBytes(file.size)}; direct uploads take up to ${fmtBytes(meta.max_upload_bytes)}. Use the presigned upload.`;
  }
  return '';
}

export async function upload(el) {
  const input = h('input', { type: 'file', id: 'file-input', accept: '.jsonl,.gz,application/x-ndjson,application/gzip' });
  const chosen = h('div', { class: 'muted', id: 'file-chosen' }, 'No file chosen.');
  const zone = h('div', { class: 'dropzone', id: 'dropzone' },
    h('p', {}, 'Drop a .jsonl or .jsonl.gz file here, or ', h('label', {}, h('a', { href: '#', onclick: (e) => { e.preventDefault(); input.click(); } }, 'choose one')), '.'),
    input, chosen);
  input.hidden = true;
  const modes = [
    ['auto', `Automatic (direct up to ${fmtBytes(meta.max_upload_bytes)}, presigned above)`],
    ['direct', 'Direct: through the API (POST /api/v1/files/upload)'],
    ['presigned', 'Presigned: straight to S3 (POST /api/v1/files, then PUT)'],
  ];
  const modeGroup = h('fieldset', { class: 'field' },
    h('legend', {}, 'How'),
    modes.map(([v, label], i) => h('label', { class: 'nowrap' }, h('input', { type: 'radio', name: 'mode', value: v, checked: i === 0 }), ' ', label, h('br'))));
  const go = h('button', { class: 'btn primary', id: 'upload-submit', disabled: true }, 'Upload');
  const bar = h('div', { id: 'upload-progress', hidden: true });
  const message = h('div', { id: 'upload-message' });
  let file = null;

  const pick = (f) => {
    file = f || null;
    chosen.textContent = file ? `${file.name} · ${fmtBytes(file.size)}` : 'No file chosen.';
    const problem = file ? checkFile(file, 'auto') : '';
    message.replaceChildren(problem ? errorBox(problem) : '');
    go.disabled = !file || !!problem;
  };
  input.addEventListener('change', () => pick(input.files[0]));
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => { e.preventDefault(); zone.classList.remove('over'); pick(e.dataTransfer.files[0]); });

  go.addEventListener('click', async () => {
    const picked = modeGroup.querySelector('input[name=mode]:checked').value;
    const mode = picked === 'auto' ? (file.size <= meta.max_upload_bytes ? 'direct' : 'presigned') : picked;
    const problem = checkFile(file, mode);
    if (problem) return message.replaceChildren(errorBox(problem));
    go.disabled = true;
    bar.hidden = false;
    const started = Date.now();
    const show = (loaded, total, stage) => {
      const pct = total ? Math.round((100 * loaded) / total) : 0;
      const secs = (Date.now() - started) / 1000;
      bar.replaceChildren(
        h('div', { class: 'progress-line' }, progressBar(pct, { big: true }), h('span', { class: 'nowrap', id: 'upload-percent' }, `${pct}%`)),
        h('div', { class: 'small muted' }, `${stage} · ${fmtBytes(loaded)} of ${fmtBytes(total)}${secs > 0.5 ? ` · ${fmtBytes(loaded / secs)}/s` : ''}`),
      );
    };
    try {
      let jobId;
      show(0, file.size, mode === 'direct' ? 'Uploading through the API' : 'Asking for an upload URL');
      if (mode === 'direct') {
        const form = new FormData();
        form.append('file', file, file.name);
        const res = await xhrUpload({ method: 'POST', target: url('api/v1/files/upload'), body: form, onProgress: (l, t) => show(l, t || file.size, 'Uploading through the API') });
        jobId = res.body.job_id;
      } else {
        const grant = await api('api/v1/files', { method: 'POST', body: { file_name: file.name, size: file.size }, what: 'The upload request' });
        jobId = grant.job_id;
        // Browsers set Content-Length and Host themselves and refuse to be told.
        const headers = Object.fromEntries(Object.entries(grant.headers || {}).filter(([k]) => !['content-length', 'host'].includes(k.toLowerCase())));
        await xhrUpload({ method: grant.method || 'PUT', target: grant.upload_url, body: file, headers, what: 'The upload to S3', onProgress: (l, t) => show(l, t || file.size, 'Uploading to S3 (presigned)') });
      }
      show(file.size, file.size, 'Uploaded; the ingest starts');
      location.hash = `#/ingest/${jobId}`;
    } catch (e) {
      message.replaceChildren(errorBox(e));
      go.disabled = false;
    }
  });

  el.append(
    h('h1', {}, 'Upload a log file'),
    h('section', { class: 'panel' },
      h('p', { class: 'muted' }, 'Each line is a JSON object with timestamp (RFC 3339 or epoch), level and message; service and trace_id are optional and other fields are kept as attributes. Invalid lines are rejected with their line number.'),
      zone, h('br'), modeGroup, h('div', { class: 'actions' }, go), bar, message),
  );
  return null;
}

const STAGES = [
  ['uploaded', 'Uploaded'],
  ['queued', 'Waiting for the ingest'],
  ['processing', 'Reading lines'],
  ['completed', 'Done'],
];

export async function ingest(el, id) {
  const head = h('div', { class: 'panel-head', id: 'ingest-head' });
  const stages = h('section', { class: 'panel', id: 'ingest-stages' });
  const counts = h('div', { class: 'grid cards', id: 'ingest-counts' });
  const rejected = h('section', { class: 'panel', id: 'ingest-rejected' });
  const entriesHead = h('div', { class: 'panel-head' });
  const levelChips = h('div', { class: 'chips', id: 'level-filter' });
  const entries = h('div', { class: 'table-wrap', id: 'entries' });
  const more = h('button', { class: 'btn', id: 'entries-more', hidden: true, onclick: () => loadEntries(true) }, 'Load more');
  el.append(
    h('p', { class: 'small' }, h('a', { href: '#/upload' }, '← upload another file')),
    head, stages,
    h('section', { class: 'panel' }, h('h2', {}, 'Counts'), counts),
    rejected,
    h('section', { class: 'panel' }, entriesHead, levelChips, h('br'), entries, more),
  );

  let status = null;
  let level = '';
  let next = null;
  let loadedEntries = [];
  let entriesFor = null; // lines_stored when the entries were last loaded

  async function loadStatus() {
    status = await api(`api/v1/jobs/${encodeURIComponent(id)}`, { what: 'Loading the ingest' });
  }

  async function loadEntries(append = false) {
    const q = new URLSearchParams({ limit: '50' });
    if (level) q.set('level', level);
    if (append && next) q.set('next', next);
    const page = await api(`api/v1/jobs/${encodeURIComponent(id)}/entries?${q}`, { what: 'Loading the entries' });
    loadedEntries = append ? [...loadedEntries, ...page.entries] : page.entries;
    next = page.next;
    entriesFor = status?.lines_stored;
    renderEntries();
  }

  function renderChips() {
    const byLevel = status?.levels || {};
    renderIfChanged(levelChips, JSON.stringify([byLevel, level]), () => [
      h('button', { class: 'chip', 'aria-pressed': String(!level), onclick: () => setLevel('') }, 'all'),
      ...LEVELS.map((l) => h('button', { class: 'chip', 'data-level': l, 'aria-pressed': String(level === l), onclick: () => setLevel(l) },
        l, h('span', { class: 'count' }, fmtNumber(byLevel[l] || 0)))),
    ]);
  }

  function renderEntries() {
    entriesHead.replaceChildren(h('h2', {}, 'Entries'), h('span', { class: 'muted small' }, `${loadedEntries.length} shown${level ? ` · level ${level}` : ''} · in line order`));
    renderChips();
    renderIfChanged(entries, JSON.stringify([loadedEntries.length, loadedEntries[0]?.line, loadedEntries.at(-1)?.line, level]), () =>
      loadedEntries.length
        ? h('table', { id: 'entries-table' },
            h('thead', {}, h('tr', {}, ['Line', 'Time', 'Level', 'Service', 'Message', 'Trace'].map((t) => h('th', {}, t)))),
            h('tbody', {}, loadedEntries.map((e) => h('tr', { 'data-level': e.level },
              h('td', { class: 'num' }, String(e.line)),
              h('td', { class: 'nowrap small' }, e.timestamp),
              h('td', {}, h('span', { class: `level l-${e.level}` }, e.level)),
              h('td', { class: 'mono small' }, e.service || ''),
              h('td', { class: 'msg', title: Object.keys(e.attributes || {}).length ? JSON.stringify(e.attributes) : '' }, e.message),
              h('td', { class: 'mono small' }, e.trace_id || '')))))
        : h('p', { class: 'empty' }, status?.status === 'completed' ? 'No entries at this level.' : 'No entries stored yet.'));
    more.hidden = !next;
  }

  async function setLevel(l) {
    level = l;
    next = null;
    await loadEntries(false);
  }

  function render() {
    const s = status;
    head.replaceChildren(
      h('h1', {}, 'Ingest ', h('span', { class: 'mono' }, s.file_name || '')),
      badge(s.status),
      h('span', { class: 'spacer' }),
      h('span', { class: 'small' }, 'job ', jobLink(s.job_id), ' · ', h('a', { href: `#/jobs/${s.job_id}` }, 'timeline and JSON')),
    );
    const at = s.status === 'failed' ? 'failed' : s.status;
    const idx = STAGES.findIndex(([k]) => k === at);
    const pct = s.status === 'completed' ? 100 : s.status === 'processing' ? s.progress || 0 : 0;
    renderIfChanged(stages, JSON.stringify([s.status, s.progress, s.stage, s.error]), () => [
      h('h2', {}, 'Progress'),
      h('ol', { class: 'stepper' },
        STAGES.map(([k, label], i) => {
          let cls = '';
          if (s.status === 'failed') cls = i === 0 ? 'done' : i === STAGES.length - 1 ? 'bad' : '';
          else if (i < idx || s.status === 'completed') cls = 'done';
          else if (i === idx) cls = 'current';
          const text = s.status === 'failed' && i === STAGES.length - 1 ? 'Failed' : label;
          return h('li', { class: cls, 'data-stage': k }, text, k === 'processing' && s.status === 'processing' ? ` · ${pct}%` : '');
        })),
      h('div', { class: 'progress-line', id: 'ingest-progress' }, progressBar(pct, { status: s.status === 'failed' ? 'failed' : s.status, big: true }), h('span', { class: 'nowrap' }, `${pct}%`)),
      h('div', { class: 'small muted', id: 'ingest-stage' }, s.stage || '', ' · ', fmtBytes(s.size), ' · started ', time(s.created_at), s.completed_at ? [' · finished ', time(s.completed_at)] : ''),
      s.error ? errorBox(`The ingest failed: ${s.error}`) : null,
    ]);
    renderChips();
    renderIfChanged(counts, JSON.stringify([s.lines_read, s.lines_stored, s.lines_rejected]), () =>
      [['lines read', s.lines_read, ''], ['stored', s.lines_stored, 's-completed'], ['rejected', s.lines_rejected, s.lines_rejected ? 's-failed' : '']].map(([k, v, cls]) =>
        h('div', { class: `card ${cls}`, 'data-count': k.replace(' ', '_') }, h('div', { class: 'label' }, k), h('div', { class: 'value' }, fmtNumber(v)))));
    renderIfChanged(rejected, JSON.stringify(s.rejected), () => [
      h('div', { class: 'panel-head' }, h('h2', {}, 'Rejected lines'), h('span', { class: 'muted small' }, s.lines_rejected > (s.rejected || []).length ? `first ${(s.rejected || []).length} of ${fmtNumber(s.lines_rejected)} kept` : '')),
      (s.rejected || []).length
        ? h('table', { id: 'rejected-table' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Line'), h('th', {}, 'Reason'))),
            h('tbody', {}, s.rejected.map((r) => h('tr', {}, h('td', { class: 'num' }, String(r.line)), h('td', { class: 'msg' }, r.reason)))))
        : h('p', { class: 'muted' }, s.status === 'completed' ? 'Every line was valid.' : 'None so far.'),
    ]);
  }

  async function refresh() {
    await loadStatus();
    render();
    // New entries while the ingest runs: reload the first page unless the user paged further.
    if (status.lines_stored !== entriesFor && loadedEntries.length <= 50) await loadEntries(false);
    else renderEntries();
  }

  try {
    await loadStatus();
  } catch (e) {
    el.append(errorBox(e));
    return null;
  }
  // A pushed change (live.js): status, progress, stage, counts and error as the message carries
  // them; the stored entries' first page again when the count moved. A finished ingest is
  // fetched once (its rejected lines, entries by level) and then shown whole.
  const entriesSoon = throttle(async () => {
    if (loadedEntries.length <= 50) await loadEntries(false);
  }, 2000);
  async function onPush(msg) {
    if (msg.job_id !== status.job_id) return;
    const names = { pending: 'queued', queued: 'queued', processing: 'processing', completed: 'completed', failed: 'failed', cancelled: 'failed' };
    const next = names[msg.status] || msg.status;
    if (['completed', 'failed'].includes(next)) return refresh();
    status = { ...status, status: next, progress: msg.progress, stage: msg.stage, error: msg.error ?? null };
    if (msg.counts) {
      status = { ...status, lines_read: msg.counts.read, lines_stored: msg.counts.stored, lines_rejected: msg.counts.rejected };
    }
    render();
    if (status.lines_stored !== entriesFor) entriesSoon();
  }

  render();
  await loadEntries(false);
  const instance = { refresh, onPush };
  Object.defineProperty(instance, 'interval', { get: () => (['completed', 'failed'].includes(status?.status) ? 10000 : 1000) });
  return instance;
}
