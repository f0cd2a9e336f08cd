// Metrics (#/metrics): the last hour from CloudWatch (GET /metrics, admins): throughput and
// failures by kind, run and queue time, the ingest's lines per second, bytes per image.
// Also the overview's alarms panel (GET /alarms: alarms in the ALARM state).

import { api } from './api.js';
import { errorBox, fmtBytes, fmtDuration, fmtNumber, h, kind, renderIfChanged } from './ui.js';

const num = (v, digits = 0) => (v == null ? '–' : fmtNumber(Number(v.toFixed(digits))));
const ms = (v) => (v == null ? '–' : fmtDuration(v));

export async function metricsPage(el) {
  const head = h('p', { class: 'muted small', id: 'metrics-head' });
  const totals = h('div', { class: 'grid cards', id: 'metrics-totals' });
  const byKind = h('div', { id: 'metrics-kinds' });
  const ingest = h('div', { class: 'grid cards', id: 'metrics-ingest' });
  const images = h('div', { class: 'grid cards', id: 'metrics-images' });
  el.append(
    h('h1', {}, 'Metrics'),
    head,
    h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Last hour')), totals),
    h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'By kind'), h('span', { class: 'muted small' }, 'completed and failed per 5 minutes; run and queue time')), byKind),
    h(
      'div',
      { class: 'grid cols-2' },
      h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Ingest')), ingest),
      h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Images')), images),
    ),
  );

  async function refresh() {
    let m;
    try {
      m = await api('metrics');
    } catch (e) {
      renderIfChanged(totals, `err:${e.message}`, () => errorBox(e));
      return;
    }
    head.textContent = `CloudWatch namespace ${m.namespace}, ${new Date(m.start).toLocaleTimeString()} – ${new Date(m.end).toLocaleTimeString()}${m.percentiles_note ? ` · ${m.percentiles_note}` : ''}`;
    const sum = (f) => m.kinds.reduce((a, k) => a + f(k), 0);
    renderIfChanged(totals, JSON.stringify(m.kinds.map((k) => [k.created, k.completed, k.failed, k.retried])), () => [
      card('created', sum((k) => k.created), 'metric-created'),
      card('completed', sum((k) => k.completed), 'metric-completed'),
      card('failed', sum((k) => k.failed), 'metric-failed', sum((k) => k.failed) > 0 ? 'warn' : ''),
      card('retried', sum((k) => k.retried), 'metric-retried'),
      card('sweeper actions', Object.values(m.sweeper || {}).reduce((a, n) => a + n, 0), 'metric-sweeper'),
    ]);
    renderIfChanged(byKind, JSON.stringify(m.kinds), () => kindTable(m.kinds));
    const lps = m.ingest.lines_per_second;
    renderIfChanged(ingest, JSON.stringify(m.ingest), () => [
      card('lines read', m.ingest.lines_read, 'metric-lines-read'),
      card('stored', m.ingest.lines_stored, 'metric-lines-stored'),
      card('rejected', m.ingest.lines_rejected, 'metric-lines-rejected'),
      h('div', { class: 'card', 'data-metric': 'metric-lines-per-second' }, h('div', { class: 'label' }, 'lines/s'), h('div', { class: 'value' }, num(lps.average)),
        h('div', { class: 'sub' }, `max ${num(lps.maximum)} · p95 ${num(lps.p95)} · ${num(lps.count)} runs`)),
    ]);
    const bpi = m.images.bytes_per_image;
    renderIfChanged(images, JSON.stringify(m.images), () => [
      card('URLs measured', m.images.urls_measured, 'metric-urls-measured'),
      card('URLs failed', m.images.urls_failed, 'metric-urls-failed', m.images.urls_failed > 0 ? 'warn' : ''),
      card('fetch retries', m.images.fetch_retries, 'metric-fetch-retries'),
      h('div', { class: 'card', 'data-metric': 'metric-bytes-per-image' }, h('div', { class: 'label' }, 'bytes per image'), h('div', { class: 'value' }, bpi.average == null ? "–" : fmtBytes(Math.round(bpi.average))),
        h('div', { class: 'sub' }, `max ${bpi.maximum == null ? "–" : fmtBytes(Math.round(bpi.maximum))} · p95 ${bpi.p95 == null ? "–" : fmtBytes(Math.round(bpi.p95))}`)),
    ]);
  }
  await refresh();
  // CloudWatch's figures move by the minute: no need to ask every few seconds. No job change
  // pushes them, so they are asked for on this interval also while the page is live.
  return { unpushed: { refresh, interval: 30000 } };
}

function card(label, value, id, cls = '') {
  return h('div', { class: `card ${cls}`.trim(), 'data-metric': id }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, fmtNumber(value)));
}

function kindTable(kinds) {
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, ...['Kind', 'Created', 'Completed', 'Failed', 'Retried', 'Per 5 min (completed / failed)', 'Run time p50 / p95 (avg, max)', 'Queue time p50 / p95 (avg, max)'].map((t) => h('th', {}, t)))),
    h(
      'tbody',
      {},
      kinds.map((k) =>
        h(
          'tr',
          { 'data-kind': k.kind },
          h('td', {}, kind(k.kind)),
          h('td', { class: 'num' }, fmtNumber(k.created)),
          h('td', { class: 'num', 'data-completed': k.completed }, fmtNumber(k.completed)),
          h('td', { class: 'num' }, fmtNumber(k.failed)),
          h('td', { class: 'num' }, fmtNumber(k.retried)),
          h('td', {}, spark(k.completed_series, k.failed_series)),
          h('td', {}, timing(k.run_time_ms)),
          h('td', {}, timing(k.queue_time_ms)),
        ),
      ),
    ),
  );
}

function timing(d) {
  if (!d.count) return h('span', { class: 'muted' }, '–');
  return h('span', { title: `${fmtNumber(d.count)} values` }, `${ms(d.p50)} / ${ms(d.p95)} (${ms(d.average)}, ${ms(d.maximum)})`);
}

/** Two rows of small bars: completed (up) and failed (down) per bucket. */
function spark(done, failed) {
  const W = 120;
  const H = 28;
  const max = Math.max(1, ...done, ...failed);
  const bw = W / Math.max(1, done.length);
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': `completed ${done.join(', ')}; failed ${failed.join(', ')}` });
  done.forEach((v, i) => {
    if (v > 0) svg.append(h('svg:rect', { class: 'bar', x: i * bw + 1, y: H / 2 - (v / max) * (H / 2), width: Math.max(1, bw - 2), height: (v / max) * (H / 2) }));
  });
  failed.forEach((v, i) => {
    if (v > 0) svg.append(h('svg:rect', { class: 'bar failed', x: i * bw + 1, y: H / 2, width: Math.max(1, bw - 2), height: (v / max) * (H / 2) }));
  });
  return svg;
}

/** The overview's panel of alarms in the ALARM state; hidden for callers who may not see them. */
export function alarmsPanel() {
  const body = h('div', { id: 'alarms' });
  const panel = h('section', { class: 'panel', id: 'alarms-panel', hidden: true }, h('div', { class: 'panel-head' }, h('h2', {}, 'Alarms'), h('span', { class: 'spacer' }), h('a', { href: '#/metrics' }, 'metrics →')), body);
  async function refresh() {
    try {
      const { alarms } = await api('alarms');
      panel.hidden = false;
      renderIfChanged(body, JSON.stringify(alarms), () =>
        alarms.length
          ? h('ul', { class: 'alarms' }, alarms.map((a) => h('li', { class: 'warn', 'data-alarm': a.name }, h('strong', {}, a.name), a.reason ? ` – ${a.reason}` : '')))
          : h('p', { class: 'empty' }, 'No alarm is in the ALARM state.'),
      );
    } catch (e) {
      if (e.status === 403) {
        panel.hidden = true;
        return;
      }
      panel.hidden = false;
      renderIfChanged(body, `err:${e.message}`, () => errorBox(e));
    }
  }
  return { panel, refresh };
}
