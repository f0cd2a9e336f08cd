// Overview: counts by status (scheduled apart), jobs past their bound, queue depths, completions
// and failures per minute (each bar a link to its jobs), recent failures.

import { api, meta } from './api.js';
import { session } from './auth.js';
import { throttle } from './live.js';
import { act, badge, confirmDialog, errorBox, fmtNumber, h, jobLink, kind, renderIfChanged, shortId, time, toast } from './ui.js';
import { alarmsPanel } from './metrics.js';

const QUEUE_LABELS = {
  high: 'High priority (4-5)',
  normal: 'Normal priority (1-3)',
  ingest_continue: 'Ingest continuations',
  high_dead_letter: 'High dead letters',
  normal_dead_letter: 'Normal dead letters',
  ingest_dead_letter: 'Ingest dead letters',
};

export async function overview(el) {
  const statusCards = h('div', { class: 'grid cards', id: 'status-cards' });
  const kindLine = h('p', { class: 'muted small', id: 'kind-line' });
  // Waiting jobs split into due and scheduled for later (GET /stats' `scheduled`).
  const waitingLine = h('p', { class: 'small', id: 'waiting-line' });
  // Jobs past their bound (GET /jobs/stuck: the sweeper's rule), each with Stop for admins.
  const stuck = h('section', { class: 'panel', id: 'past-bound', hidden: true });
  const queueCards = h('div', { class: 'grid cards wide', id: 'queue-cards' });
  const chart = h('div', { class: 'chart', id: 'chart' });
  const chartHead = h('span', { class: 'muted small', id: 'chart-head' });
  const failures = h('div', { id: 'failures' });
  const deadLetters = h('div', { id: 'dead-letters' });
  const alarms = alarmsPanel();
  el.append(
    h('h1', {}, 'Overview'),
    alarms.panel,
    // First steps: what this system does, and the first thing to do with it.
    h('p', { class: 'intro', id: 'intro' },
      h('span', {}, 'Runs background jobs on AWS Lambda: archives S3 files, measures Retail Pulse shelf images, sends emails and notifications, builds reports and ingests JSONL logs, each queued, retried and tracked to its end. '),
      h('span', { class: 'intro-actions' },
        h('a', { class: 'btn primary', href: '#/new', id: 'first-action' }, 'Create a job'),
        h('a', { class: 'btn', href: '#/upload' }, 'Upload a log file'))),
    h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Jobs by status')), statusCards, waitingLine, kindLine),
    stuck,
    h(
      'section',
      { class: 'panel' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Queue depth'), h('span', { class: 'muted small' }, 'approximate, as SQS reports it')),
      queueCards,
      deadLetters,
    ),
    h(
      'div',
      { class: 'grid cols-2' },
      h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', {}, 'Completed and failed per minute'), chartHead), chart),
      h(
        'section',
        { class: 'panel' },
        h('div', { class: 'panel-head' }, h('h2', {}, 'Recent failures'), h('span', { class: 'spacer' }), h('a', { href: '#/jobs?status=failed' }, 'all failed jobs →')),
        failures,
      ),
    ),
  );

  // Jobs past their bound cost a sweep's reads (pending, queued, processing: the oldest 20 of
  // each shard, merged), so they are read at most every 15 s, not at every pushed change.
  let stuckAt = 0;
  let stuckLast = null;
  const stuckNow = () => {
    if (stuckLast && Date.now() - stuckAt < 15000) return stuckLast;
    stuckAt = Date.now();
    stuckLast = api('jobs/stuck?limit=20');
    stuckLast.catch(() => (stuckAt = 0));
    return stuckLast;
  };
  const afterStop = () => {
    stuckAt = 0;
    return refresh();
  };

  function drawQueues(queues) {
    if (queues.status === 'fulfilled') {
      const qs = queues.value.queues || [];
      renderIfChanged(queueCards, JSON.stringify(qs), () =>
        qs.length ? qs.map((q) => queueCard(q, (name) => showDeadLetters(deadLetters, name, refresh), refresh)) : h('p', { class: 'muted' }, 'Queue depths are not available in this deployment.'),
      );
    } else {
      renderIfChanged(queueCards, `err:${queues.reason.message}`, () => errorBox(queues.reason));
    }
  }

  /** What no job change pushes: the queues' depths and the alarms (see `unpushed` below). */
  async function refreshUnpushed() {
    const [queues] = await Promise.allSettled([api('queues'), alarms.refresh()]);
    drawQueues(queues);
  }

  async function refresh() {
    const [stats, queues, failed, past] = await Promise.allSettled([
      api('stats'),
      api('queues'),
      // Latest failures first (the failed index by last change), summary rows.
      api('jobs?view=summary&status=failed&sort=updated&limit=6'),
      stuckNow(),
      alarms.refresh(),
    ]);
    if (stats.status === 'fulfilled') {
      const s = stats.value;
      renderIfChanged(statusCards, JSON.stringify([s.total, s.by_status]), () => [
        h('a', { class: 'card', href: '#/jobs' }, h('div', { class: 'label' }, 'all jobs'), h('div', { class: 'value' }, fmtNumber(s.total))),
        ...meta.statuses.map((st) =>
          h(
            'a',
            { class: `card s-${st}`, href: `#/jobs?status=${st}`, 'data-status': st },
            h('div', { class: 'label' }, st),
            h('div', { class: 'value' }, fmtNumber(s.by_status?.[st] ?? 0)),
          ),
        ),
      ]);
      kindLine.textContent = `By kind: ${Object.entries(s.by_kind || {})
        .map(([k, n]) => `${k} ${fmtNumber(n)}`)
        .join(' · ')}`;
      renderIfChanged(waitingLine, JSON.stringify([s.by_status, s.scheduled]), () => waitingParts(s));
      renderIfChanged(chart, JSON.stringify(s.completed_per_minute), () => barChart(s.completed_per_minute || []));
      const series = s.completed_per_minute || [];
      const total = series.reduce((a, m) => a + m.completed, 0);
      const failedTotal = series.reduce((a, m) => a + (m.failed || 0), 0);
      const peak = series.reduce((a, m) => Math.max(a, m.completed), 0);
      chartHead.textContent = `last 60 min: ${fmtNumber(total)} completed, ${fmtNumber(failedTotal)} failed, peak ${fmtNumber(peak)}/min`;
    } else {
      renderIfChanged(statusCards, `err:${stats.reason.message}`, () => errorBox(stats.reason));
    }
    drawQueues(queues);
    if (past.status === 'fulfilled') {
      const p = past.value;
      stuck.hidden = !p.jobs.length;
      renderIfChanged(stuck, JSON.stringify([p.jobs.map((j) => [j.id, j.version, j.past_bound]), p.more, tick30()]), () => stuckPanel(p, afterStop));
    } else {
      stuck.hidden = false;
      renderIfChanged(stuck, `err:${past.reason.message}`, () => errorBox(past.reason));
    }
    if (failed.status === 'fulfilled') {
      const jobs = failed.value.jobs || [];
      renderIfChanged(failures, JSON.stringify([jobs.map((j) => [j.id, j.version]), tick30()]), () => failureTable(jobs, refresh));
    } else {
      renderIfChanged(failures, `err:${failed.reason.message}`, () => errorBox(failed.reason));
    }
  }
  await refresh();
  // A pushed change moves the counts, queues and failures: all three again, at most every 2 s.
  // What is no job change is asked for every 5 s also while pushes keep the rest current: the
  // alarms, and the queues' depths (a job is written before its message is sent, so the push of a
  // new job can come before SQS counts the message; a dead letter or a redrive moves messages and
  // no job).
  return { refresh, onPush: throttle(refresh, 2000), unpushed: { refresh: refreshUnpushed, interval: 5000 } };
}

/**
 * "Waiting: N due · M scheduled for later": the waiting jobs (pending + queued) with those that
 * wait for their time counted apart, so 1,100 jobs scheduled for next year do not read as a
 * backlog beside queues with nothing waiting. Each number links to the waiting jobs (the list
 * shows a scheduled job's time and Run now).
 */
function waitingParts(s) {
  const waiting = (s.by_status?.pending ?? 0) + (s.by_status?.queued ?? 0);
  const scheduled = Math.min(waiting, Math.max(0, s.scheduled ?? 0));
  const href = '#/jobs?status=pending,queued';
  return [
    h('span', { class: 'muted' }, 'Waiting: '),
    h('a', { href, id: 'waiting-due', 'data-count': waiting - scheduled }, `${fmtNumber(waiting - scheduled)} due`),
    h('span', { class: 'muted' }, ' (for a worker) · '),
    h('a', { href, id: 'waiting-scheduled', 'data-count': scheduled }, `${fmtNumber(scheduled)} scheduled`),
    h('span', { class: 'muted' }, ' for later (each shows its time and Run now in the list)'),
  ];
}

/** Jobs past their bound (the sweeper's rule, GET /jobs/stuck), each linked, with Stop for admins. */
function stuckPanel(p, refresh) {
  const n = p.jobs.length;
  const admin = session.me?.admin;
  return [
    h(
      'div',
      { class: 'panel-head' },
      h('h2', { id: 'past-bound-head', 'data-count': n }, `${fmtNumber(n)}${p.more ? '+' : ''} job${n === 1 ? '' : 's'} past their bound`),
      h('span', { class: 'muted small' }, 'waiting or running longer than the sweeper allows; it acts on each at its next run (every minute)'),
    ),
    h(
      'table',
      { id: 'past-bound-table' },
      h('thead', {}, h('tr', {}, ['Job', 'Kind', 'Status', 'Why', 'Updated', ''].map((t) => h('th', {}, t)))),
      h(
        'tbody',
        {},
        p.jobs.slice(0, 20).map((j) =>
          h(
            'tr',
            { 'data-job': j.id },
            h('td', {}, jobLink(j.id), j.key ? h('div', { class: 'small muted' }, j.key) : null),
            h('td', {}, kind(j.kind)),
            h('td', {}, badge(j.status)),
            h('td', { class: 'msg small' }, j.past_bound),
            h('td', {}, time(j.updated_at)),
            h('td', { class: 'right' }, admin ? stopButton(j, refresh) : null),
          ),
        ),
      ),
    ),
    n > 20 ? h('p', { class: 'muted small' }, `${fmtNumber(n - 20)} more not shown; the sweeper takes them in turn.`) : null,
  ];
}

/**
 * Stop a job past its bound (POST /jobs/{id}/stop, admins): a waiting one is cancelled; a running
 * one fails now, as the sweeper fails it (a running job cannot be cancelled: its worker may be
 * half way). Shared by the overview and the job's page.
 */
export function stopButton(j, after) {
  const running = j.status === 'processing';
  return h('button', {
    class: 'btn small danger',
    'data-stop': j.id,
    onclick: (e) =>
      act(e.currentTarget, async () => {
        const ok = await confirmDialog(
          `Stop job ${shortId(j.id)}?`,
          running
            ? `It is past its bound (${j.past_bound}). It fails now, as the sweeper would fail it; a late result of its worker is dropped. Retry runs it again.`
            : 'It has not started: it is cancelled and never run. This cannot be undone.',
          running ? 'Fail job now' : 'Cancel job',
          { dismiss: 'Keep job', danger: true },
        );
        if (!ok) return;
        const done = await api(`jobs/${j.id}/stop`, { method: 'POST', what: 'Stopping the job' });
        toast(`Job ${shortId(j.id)} is now ${done.status}`);
        await after(done);
      }),
  }, running ? 'Fail now…' : 'Cancel job…');
}

/** Changes every 30 s, so that relative times ("2 min ago") are redrawn now and then. */
export const tick30 = () => Math.floor(Date.now() / 30000);

/** The jobs a queue card counts: a work queue's waiting jobs (of its priority band), your own. */
const QUEUE_JOBS = {
  high: '#/jobs?status=pending,queued,processing&sort=priority&order=desc',
  normal: '#/jobs?status=pending,queued,processing&sort=priority&order=asc',
  ingest_continue: '#/jobs?status=processing&kind=log_ingest',
  'your jobs': '#/jobs?status=pending,queued,processing',
};

function queueCard(q, openDeadLetters, refresh) {
  const card = queueCardBody(q, openDeadLetters);
  // Admins see whether its function receives from it (the event source mapping), and switch it.
  if (q.paused == null) return card;
  return h('div', { class: `queue-card${q.paused ? ' paused' : ''}`, 'data-queue-card': q.name }, card, pauseControl(q, refresh));
}

/** Running or paused, and the button that pauses (disables the event source mapping) or resumes. */
function pauseControl(q, refresh) {
  const label = QUEUE_LABELS[q.name] || q.name;
  const reader = q.consumer ? `The ${q.consumer} function` : 'Its function';
  const toggle = (button) =>
    act(button, async () => {
      const ok = q.paused
        ? await confirmDialog(`Resume ${label}?`, `${reader} receives its messages again (its event source mapping is enabled).`, 'Resume queue', { dismiss: 'Keep paused' })
        : await confirmDialog(
            `Pause ${label}?`,
            `${reader} stops receiving from it (its event source mapping is disabled). Messages wait in the queue, new ones too, until you resume it.`,
            'Pause queue',
            { dismiss: 'Keep running', danger: true },
          );
      if (!ok) return;
      await api(`queues/${q.name}/${q.paused ? 'resume' : 'pause'}`, { method: 'POST', what: q.paused ? 'Resuming the queue' : 'Pausing the queue' });
      toast(q.paused ? `${label}: running again` : `${label}: paused, messages wait in it`);
      await refresh();
    });
  return h(
    'div',
    { class: 'queue-state' },
    h('span', { class: `badge ${q.paused ? 'q-paused' : 'q-running'}`, 'data-queue-state': q.name, title: q.mapping_state ? `event source mapping: ${q.mapping_state}` : '' }, q.paused ? 'paused' : 'running'),
    h('button', { class: 'btn small', type: 'button', 'data-pause': q.name, 'aria-label': `${q.paused ? 'Resume' : 'Pause'} ${label}`, onclick: (e) => toggle(e.currentTarget) }, q.paused ? 'Resume…' : 'Pause…'),
  );
}

function queueCardBody(q, openDeadLetters) {
  const label = QUEUE_LABELS[q.name] || q.name;
  if (q.error) {
    return h('div', { class: 'card', 'data-queue': q.name }, h('div', { class: 'label' }, label), h('div', { class: 'value muted' }, '?'), h('div', { class: 'sub' }, q.error));
  }
  const dead = q.role === 'dead_letter';
  const body = [
    h('div', { class: 'label' }, label),
    h('div', { class: 'value' }, fmtNumber(q.visible)),
    h('div', { class: 'sub' }, dead ? 'messages' : `waiting · ${fmtNumber(q.in_flight)} in flight · ${fmtNumber(q.delayed)} delayed`),
  ];
  const attrs = { class: `card${dead && q.visible > 0 ? ' warn' : ''}`, 'data-queue': q.name, title: `${q.name}: waiting / in flight / delayed` };
  if (dead) {
    // A dead-letter queue's card opens its messages, with their jobs and redrive.
    return h('button', { ...attrs, type: 'button', 'aria-label': `${label}: show the messages`, onclick: () => openDeadLetters(q.name) }, body);
  }
  return QUEUE_JOBS[q.name] ? h('a', { ...attrs, href: QUEUE_JOBS[q.name] }, body) : h('div', attrs, body);
}

/** A dead-letter queue's messages (a peek), each with its job, redriven one by one or all. */
async function showDeadLetters(el, name, refresh) {
  let data;
  try {
    data = await api(`queues/${name}/messages?max=50`, { what: 'Reading the dead letters' });
  } catch (e) {
    el.replaceChildren(errorBox(e));
    return;
  }
  const redrive = (button, body, title, text, ok) =>
    act(button, async () => {
      if (!(await confirmDialog(title, text, ok))) return;
      const r = await api(`queues/${name}/redrive`, { method: 'POST', body, what: 'The redrive' });
      toast(r.method === 'StartMessageMoveTask' ? `Moving ${fmtNumber(r.moved ?? 0)} message(s) back to ${data.redrives_to} (SQS message move task)` : `1 message back on ${data.redrives_to}`);
      await showDeadLetters(el, name, refresh);
      await refresh();
    });
  const label = QUEUE_LABELS[name] || name;
  el.replaceChildren(
    h(
      'div',
      { class: 'panel-head', id: 'dead-letter-head', 'data-queue': name },
      h('h3', {}, `${label}: ${data.messages.length ? `${data.messages.length} message${data.messages.length === 1 ? '' : 's'} shown` : 'empty'}`),
      h('span', { class: 'spacer' }),
      data.messages.length
        ? h('button', { class: 'btn', id: 'redrive-all', onclick: (e) => redrive(e.currentTarget, {}, `Redrive every message of ${label}?`, `Each goes back to ${data.redrives_to} and its job runs again (an SQS message move task).`, 'Redrive all') }, 'Redrive all…')
        : null,
      h('button', { class: 'btn', onclick: () => el.replaceChildren() }, 'Close'),
    ),
    data.messages.length
      ? h(
          'table',
          { id: 'dead-letter-table' },
          h('thead', {}, h('tr', {}, ['Message', 'Job', 'Status', 'Error', 'Receives', 'Sent', ''].map((t) => h('th', {}, t)))),
          h(
            'tbody',
            {},
            data.messages.map((m) =>
              h(
                'tr',
                { 'data-message': m.message_id, 'data-job': m.job_id || '' },
                h('td', { class: 'mono small' }, m.message_id.slice(0, 8)),
                h('td', {}, m.job_id ? jobLink(m.job_id) : h('span', { class: 'muted' }, 'not a job message')),
                h('td', {}, m.job ? m.job.status : '–'),
                h('td', { class: 'msg small' }, m.job?.error ? truncate(m.job.error, 120) : ''),
                h('td', { class: 'num' }, String(m.receives)),
                h('td', {}, m.sent_at_ms ? time(new Date(m.sent_at_ms).toISOString()) : '–'),
                h('td', { class: 'right' }, h('button', { class: 'btn small', 'data-redrive': m.message_id, onclick: (e) => redrive(e.currentTarget, { message_id: m.message_id }, 'Redrive this message?', `It goes back to ${data.redrives_to}${m.job_id ? ` and job ${shortId(m.job_id)} runs again` : ''}.`, 'Redrive') }, 'Redrive…')),
              ),
            ),
          ),
        )
      : h('p', { class: 'muted' }, 'No messages in this dead-letter queue.'),
  );
}

/**
 * An SVG bar chart of {minute, completed, failed}, oldest first (minutes are UTC
 * "YYYY-MM-DDTHH:MM"): completions in green, failures in red stacked on them. Each bar links to
 * the jobs it counts: that status's list by last change, starting at the end of that minute
 * (`updated_until`), so its first rows are the jobs that ended then.
 */
export function barChart(series) {
  const W = 600;
  const H = 180;
  const pad = { l: 30, r: 6, t: 8, b: 22 };
  const max = Math.max(1, ...series.map((m) => m.completed + (m.failed || 0)));
  const step = niceStep(max);
  const top = Math.ceil(max / step) * step;
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const bw = series.length ? iw / series.length : iw;
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Jobs completed and failed per minute over the last hour', preserveAspectRatio: 'none' });
  for (let v = 0; v <= top; v += step) {
    const y = pad.t + ih - (v / top) * ih;
    svg.append(h('svg:line', { class: 'grid-line', x1: pad.l, x2: W - pad.r, y1: y, y2: y }));
    svg.append(h('svg:text', { x: pad.l - 4, y: y + 3, 'text-anchor': 'end' }, String(v)));
  }
  const bar = (status, n, x, base, m) => {
    const bh = (n / top) * ih;
    const href = `#/jobs?status=${status}&sort=updated&order=desc&updated_until=${encodeURIComponent(m.minute)}`;
    return h('svg:a', { href, 'data-minute': m.minute, 'data-series': status, 'aria-label': `${localMinute(m.minute)}: ${n} ${status}` },
      h('svg:rect', { class: `bar ${status}`, x: x + 1, y: pad.t + ih - base - bh, width: Math.max(1, bw - 2), height: bh, 'data-minute': m.minute },
        h('svg:title', {}, `${localMinute(m.minute)}: ${n} ${status} (open them)`)));
  };
  series.forEach((m, i) => {
    const x = pad.l + i * bw;
    const failed = m.failed || 0;
    if (m.completed > 0) svg.append(bar('completed', m.completed, x, 0, m));
    if (failed > 0) svg.append(bar('failed', failed, x, (m.completed / top) * ih, m));
    const ago = series.length - 1 - i;
    if (ago % 10 === 0) {
      svg.append(h('svg:text', { x: x + bw / 2, y: H - 6, 'text-anchor': 'middle' }, ago === 0 ? 'now' : `-${ago}m`));
    }
  });
  svg.append(h('svg:line', { class: 'axis', x1: pad.l, x2: W - pad.r, y1: pad.t + ih, y2: pad.t + ih }));
  return [
    svg,
    h('p', { class: 'legend small muted' }, h('span', { class: 'swatch completed' }), ' completed ', h('span', { class: 'swatch failed' }), ' failed · a bar opens the jobs it counts'),
  ];
}

function niceStep(max) {
  for (const s of [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]) if (max / s <= 5) return s;
  return Math.ceil(max / 5);
}

function localMinute(minute) {
  const d = new Date(`${minute}:00Z`);
  return Number.isNaN(d.getTime()) ? minute : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function failureTable(jobs, refresh) {
  if (!jobs.length) return h('p', { class: 'empty' }, 'No failed jobs. ');
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, h('th', {}, 'Job'), h('th', {}, 'Kind'), h('th', {}, 'Error'), h('th', {}, 'Failed'), h('th', {}))),
    h(
      'tbody',
      {},
      jobs.map((j) =>
        h(
          'tr',
          { 'data-job': j.id },
          h('td', {}, jobLink(j.id)),
          h('td', {}, kind(j.kind)),
          h('td', { class: 'msg', title: j.error || '' }, truncate(j.error || '(no error recorded)', 140)),
          h('td', {}, time(j.completed_at || j.updated_at)),
          h(
            'td',
            {},
            h('button', {
              class: 'btn small',
              onclick: (e) =>
                act(e.currentTarget, async () => {
                  // The same question as the list's and the job page's.
                  if (!(await confirmDialog(`Retry job ${shortId(j.id)}?`, 'The job is queued again with a fresh set of attempts.', 'Retry job', { dismiss: "Don't retry" }))) return;
                  await api(`jobs/${j.id}/retry`, { method: 'POST', what: 'The retry' });
                  toast(`Job ${shortId(j.id)} queued again`);
                  await refresh();
                }),
            }, 'Retry…'),
          ),
        ),
      ),
    ),
  );
}

export function truncate(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}
