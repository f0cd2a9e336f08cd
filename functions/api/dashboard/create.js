// Create a job: one form per kind (archive, Retail Pulse images, email, notification, report,
// any kind as JSON). Fields are
// checked before sending; when the server still refuses, its message is shown and the field it
// names (payload.visits[0].store_id, ...) is marked.

import { api, meta } from './api.js';
import { session } from './auth.js';

/** Where the signed-in user's files live in the bucket (archive sources must be there). */
const ownPrefix = () => `uploads/${session.me?.owner || 'anonymous'}/`;
import { h, shortId, toast, uuid } from './ui.js';

const TABS = [
  ['archive', 'Archive an asset'],
  ['image', 'Retail Pulse images'],
  ['email', 'Email'],
  ['notification', 'Notification'],
  ['report', 'Report'],
  ['json', 'Any kind (JSON)'],
];

/** The signed-in user's newest files (GET /uploads), read when the archive form or the JSON tab opens. */
let ownFiles = [];
async function loadOwnFiles() {
  try {
    ownFiles = (await api('uploads?limit=5', { what: 'Listing your files' })).objects || [];
  } catch {
    ownFiles = []; // the form works without the suggestions
  }
  return ownFiles;
}

/** An asset id from a file's name: clip.mp4 -> clip-mp4. */
const assetIdOf = (key) => (key.split('/').pop().replace(/[^A-Za-z0-9._-]+/g, '-').replace(/\./g, '-') || 'asset').slice(0, 64);

const EXAMPLES = {
  // An archive's source must exist and be the user's own: the newest of their files.
  archive: () =>
    ownFiles[0]
      ? { asset_id: assetIdOf(ownFiles[0].key), source: ownFiles[0].source }
      : { asset_id: 'clip-001', source: `s3://${meta.uploads_bucket || 'bucket'}/${ownPrefix()}<one of your files>` },
  image: () => ({
    count: 1,
    visits: [{ store_id: 'S00339218', image_url: ['https://example.com/shelf-1.jpg', 'https://example.com/shelf-2.jpg'], visit_time: '2026-11-23T10:00:00' }],
  }),
  log_ingest: () => ({ bucket: meta.uploads_bucket || 'bucket', key: `${ownPrefix()}app-logs.jsonl` }),
  email: () => ({ to: 'user@example.com', subject: 'Welcome!', body: 'Thanks for signing up.' }),
  notification: () => ({ user_id: 'user-1', channel: 'push', message: 'Your order shipped' }),
  report: () => ({ report_type: 'weekly', format: 'csv', date_range: { start: daysAgo(6), end: daysAgo(0) }, scope: 'own' }),
};

/** The UTC date `n` days ago, as 2026-11-30. */
const daysAgo = (n) => new Date(Date.now() - n * 864e5).toISOString().slice(0, 10);

/** Each check returns '' when the value is fine, else what is wrong. */
const checks = {
  required: (v) => (v.trim() ? '' : 'Required.'),
  assetId: (v) => (!v.trim() ? 'Required.' : /^[A-Za-z0-9._-]+$/.test(v) ? '' : "Only letters, digits, '-', '_' and '.'."),
  s3: (v) => (/^s3:\/\/[^/\s]+\/.+/.test(v.trim()) ? '' : 'Must look like s3://bucket/key.'),
  urls: (v) => {
    const lines = v.split('\n').map((l) => l.trim()).filter(Boolean);
    if (!lines.length) return 'List at least one image URL.';
    for (const [i, l] of lines.entries()) {
      let u;
      try {
        u = new URL(l);
      } catch {
        return `Line ${i + 1} is not a URL.`;
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return `Line ${i + 1} must be an http(s) URL.`;
    }
    return '';
  },
  jsonObject: (v) => {
    try {
      const parsed = JSON.parse(v);
      return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? '' : 'The payload must be a JSON object.';
    } catch (e) {
      return `Not valid JSON: ${e.message}`;
    }
  },
  when: (v) => (!v || !Number.isNaN(Date.parse(v)) ? '' : 'Not a date and time.'),
  email: (v) => (/^[^\s@,;<>"]+@[^\s@,;<>"]+$/.test(v.trim()) ? '' : 'One address, like name@example.com.'),
  reportType: (v) => (/^[a-z0-9_-]{1,64}$/.test(v) ? '' : "1 to 64 of a-z, 0-9, '_' and '-'."),
  day: (v) => (/^\d{4}-\d{2}-\d{2}$/.test(v) ? '' : 'Required.'),
};

/** A labelled input with its check; the error shows under it, on blur and on submit. */
function field(label, input, { check, hint } = {}) {
  // The error line keeps its height when empty: a message appearing on blur must not move the
  // button the user is clicking (the click would be lost).
  const err = h('div', { class: 'field-error' });
  input.check = () => {
    const msg = check ? check(input.value) : '';
    setInvalid(input, msg);
    return !msg;
  };
  input.showError = (msg) => setInvalid(input, msg);
  input.errorEl = err;
  input.addEventListener('blur', () => input.value && input.check());
  input.addEventListener('input', () => input.getAttribute('aria-invalid') === 'true' && input.check());
  return h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('div', { class: 'hint' }, hint) : null, err);
}

function setInvalid(input, msg) {
  input.setAttribute('aria-invalid', msg ? 'true' : 'false');
  input.errorEl.textContent = msg || '';
}

export async function createJob(el, params) {
  const tab = TABS.some(([k]) => k === params.get('kind')) ? params.get('kind') : 'archive';
  el.append(
    h('h1', {}, 'New job'),
    h('nav', { class: 'tabs' }, TABS.map(([k, label]) => h('a', { href: `#/new?kind=${k}`, class: k === tab ? 'active' : null, 'data-tab': k }, label))),
  );
  const form = h('form', { class: 'panel', id: 'create-form', novalidate: true });
  const formError = h('div', { class: 'form-error', id: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { class: 'btn primary', type: 'submit', id: 'create-submit' }, 'Create job');

  const priority = h('select', { class: 'inline', name: 'priority', 'data-path': 'priority', value: '3' },
    [1, 2, 3, 4, 5].map((p) => h('option', { value: String(p) }, String(p))));
  const runAt = h('input', { type: 'datetime-local', name: 'scheduled_for', 'data-path': 'scheduled_for', step: 1 });
  const common = [
    field('Priority', priority, { hint: '4-5 go to the high-priority queue, 1-3 to the normal one.' }),
    field('Run at (optional)', runAt, { check: checks.when, hint: 'Leave empty to run now. Later times wait in SQS.' }),
  ];

  let kindOf;
  let payloadOf;
  let inputs = [priority, runAt];

  if (tab === 'archive') {
    const assetId = h('input', { type: 'text', name: 'asset_id', 'data-path': 'payload.asset_id', placeholder: 'clip-001', autocomplete: 'off' });
    const source = h('input', { type: 'text', name: 'source', 'data-path': 'payload.source', placeholder: `s3://${meta.uploads_bucket || 'bucket'}/${ownPrefix()}…` });
    // Examples that work: the user's own newest files (an archive reads nothing else), one click each.
    const files = h('div', { class: 'hint', id: 'own-files' }, 'Looking for your files…');
    form.append(
      h('p', { class: 'muted' }, 'Copies an S3 object to archive/<asset id>/ with the GLACIER_IR storage class.'),
      field('Asset id', assetId, { check: checks.assetId }),
      field('Source object', source, { check: checks.s3, hint: meta.uploads_bucket ? `One of your files: s3://${meta.uploads_bucket}/${ownPrefix()}...` : null }),
      files,
    );
    loadOwnFiles().then((list) => {
      if (!list.length) {
        files.replaceChildren('You have no files yet: an archive copies one of yours. ', h('a', { href: '#/upload' }, 'Upload a log file first'), '.');
        return;
      }
      source.placeholder = list[0].source;
      files.replaceChildren(
        'Your newest files: ',
        ...list.map((o) =>
          h('button', {
            type: 'button',
            class: 'btn small',
            'data-source': o.source,
            title: o.source,
            onclick: () => {
              source.value = o.source;
              if (!assetId.value.trim()) assetId.value = assetIdOf(o.key);
              source.check();
              assetId.check();
            },
          }, `use ${o.key.split('/').pop()}`)),
      );
    });
    inputs.push(assetId, source);
    kindOf = () => 'archive';
    payloadOf = () => ({ asset_id: assetId.value.trim(), source: source.value.trim() });
  } else if (tab === 'image') {
    const visits = h('div', { id: 'visits' });
    const count = h('span', { class: 'muted', id: 'visit-count' });
    const visitInputs = [];
    const renumber = () => {
      [...visits.children].forEach((fs, i) => {
        fs.querySelector('legend').textContent = `Visit ${i + 1}`;
        for (const inp of fs.querySelectorAll('[data-field]')) inp.dataset.path = `payload.visits[${i}].${inp.dataset.field}`;
      });
      count.textContent = `count: ${visits.children.length}`;
    };
    const addVisit = (preset = {}) => {
      const store = h('input', { type: 'text', 'data-field': 'store_id', placeholder: 'S00339218', value: preset.store_id || '' });
      const now = new Date(Date.now() - new Date().getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
      const when = h('input', { type: 'datetime-local', 'data-field': 'visit_time', step: 1, value: now });
      const urls = h('textarea', { 'data-field': 'image_url', rows: 3, placeholder: 'https://example.com/shelf-1.jpg\nhttps://example.com/shelf-2.jpg' });
      const entry = { store, when, urls };
      visitInputs.push(entry);
      const fs = h('fieldset', { class: 'visit' },
        h('legend', {}),
        h('div', { class: 'visit-row' },
          field('Store id', store, { check: checks.required }),
          field('Visit time', when, { check: (v) => checks.required(v) || checks.when(v) })),
        field('Image URLs, one per line', urls, { check: checks.urls }),
        h('button', {
          type: 'button', class: 'btn small danger', onclick: () => {
            if (visits.children.length === 1) return toast('A job needs at least one visit.');
            visitInputs.splice(visitInputs.indexOf(entry), 1);
            fs.remove();
            renumber();
          },
        }, 'Remove visit'));
      visits.append(fs);
      renumber();
    };
    addVisit();
    form.append(
      h('p', { class: 'muted' }, 'Fetches every image of every store visit and records its width, height and perimeter (2 × (width + height)).'),
      visits,
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn', id: 'add-visit', onclick: () => addVisit() }, '+ Add a visit'), count),
      h('br'),
    );
    inputs = null; // computed at submit: visits can be added and removed
    const allInputs = () => [priority, runAt, ...visitInputs.flatMap((v) => [v.store, v.when, v.urls])];
    form.allInputs = allInputs;
    kindOf = () => 'image';
    payloadOf = () => ({
      count: visitInputs.length,
      visits: visitInputs.map((v) => ({
        store_id: v.store.value.trim(),
        image_url: v.urls.value.split('\n').map((l) => l.trim()).filter(Boolean),
        visit_time: v.when.value.length === 16 ? `${v.when.value}:00` : v.when.value,
      })),
    });
  } else if (tab === 'email') {
    const to = h('input', { type: 'email', name: 'to', 'data-path': 'payload.to', placeholder: 'user@example.com', autocomplete: 'off' });
    const subject = h('input', { type: 'text', name: 'subject', 'data-path': 'payload.subject', maxlength: 200, placeholder: '(no subject)' });
    const body = h('textarea', { name: 'body', 'data-path': 'payload.body', rows: 6 });
    form.append(
      h('p', { class: 'muted' }, `Sends one plain-text mail through SES${meta.email_from ? ` from ${meta.email_from}` : ''}. At least once: a crash after sending may send it again.`),
      field('To', to, { check: checks.email }),
      field('Subject', subject),
      field('Body', body),
    );
    inputs.push(to, subject, body);
    kindOf = () => 'email';
    payloadOf = () => ({ to: to.value.trim(), ...(subject.value.trim() ? { subject: subject.value.trim() } : {}), body: body.value });
  } else if (tab === 'notification') {
    const user = h('input', { type: 'text', name: 'user_id', 'data-path': 'payload.user_id', placeholder: 'user-1', autocomplete: 'off' });
    const channel = h('select', { class: 'inline', name: 'channel', 'data-path': 'payload.channel' },
      ['push', 'sms', 'email'].map((c) => h('option', { value: c }, c)));
    const message = h('textarea', { name: 'message', 'data-path': 'payload.message', rows: 4, maxlength: 2048 });
    form.append(
      h('p', { class: 'muted' }, "Publishes the message to the stack's SNS topic, with channel, user_id and job_id as attributes. At least once."),
      field('User id', user, { check: checks.required }),
      field('Channel', channel),
      field('Message', message, { check: checks.required }),
    );
    inputs.push(user, channel, message);
    kindOf = () => 'notification';
    payloadOf = () => ({ user_id: user.value.trim(), channel: channel.value, message: message.value });
  } else if (tab === 'report') {
    const type = h('input', { type: 'text', name: 'report_type', 'data-path': 'payload.report_type', value: 'weekly', autocomplete: 'off' });
    const format = h('select', { class: 'inline', name: 'format', 'data-path': 'payload.format' }, ['csv', 'json'].map((f) => h('option', { value: f }, f)));
    const start = h('input', { type: 'date', name: 'start', 'data-path': 'payload.date_range.start', value: daysAgo(6) });
    const end = h('input', { type: 'date', name: 'end', 'data-path': 'payload.date_range.end', value: daysAgo(0) });
    const scope = h('select', { class: 'inline', name: 'scope', 'data-path': 'payload.scope' },
      [['own', 'My jobs'], ['all', "Everyone's jobs (admins)"]].map(([v, l]) => h('option', { value: v }, l)));
    form.append(
      h('p', { class: 'muted' }, 'Counts the jobs created in the period by status and kind, with turnaround and run times; CSV and JSON in S3, and a download link in the result.'),
      field('Report type', type, { check: checks.reportType, hint: 'Its title.' }),
      field('Link to', format),
      h('div', { class: 'visit-row' }, field('From (UTC)', start, { check: checks.day }), field('To (UTC, inclusive)', end, { check: checks.day })),
      field('Scope', scope),
    );
    inputs.push(type, format, start, end, scope);
    kindOf = () => 'report';
    payloadOf = () => ({ report_type: type.value, format: format.value, date_range: { start: start.value, end: end.value }, scope: scope.value });
  } else {
    const kindSelect = h('select', { class: 'inline', name: 'kind', id: 'json-kind' }, meta.kinds.map((k) => h('option', { value: k }, k)));
    const text = h('textarea', { name: 'payload', 'data-path': 'payload', rows: 12, spellcheck: 'false' });
    const example = () => {
      text.value = JSON.stringify((EXAMPLES[kindSelect.value] || (() => ({})))(), null, 2);
    };
    kindSelect.addEventListener('change', example);
    example();
    loadOwnFiles().then(() => kindSelect.value === 'archive' && !text.dataset.edited && example());
    text.addEventListener('input', () => (text.dataset.edited = '1'));
    form.append(
      h('p', { class: 'muted' }, 'Any kind with a hand-written payload; the server checks it and names the field it refuses.'),
      h('label', { class: 'field' }, h('span', {}, 'Kind'), kindSelect),
      field('Payload', text, { check: checks.jsonObject }),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'btn small', onclick: example }, 'Reset to the example')),
      h('br'),
    );
    inputs.push(text);
    kindOf = () => kindSelect.value;
    payloadOf = () => JSON.parse(text.value);
  }

  form.append(...common, formError, h('div', { class: 'actions' }, submit, h('a', { href: '#/jobs', class: 'btn' }, 'Back to the list')));
  el.append(form);

  // One key per filled-in form: a double submit or a resend after a lost answer gives the same job.
  let idempotencyKey = null;
  form.addEventListener('input', () => (idempotencyKey = null));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    formError.hidden = true;
    const all = inputs || form.allInputs();
    const bad = all.filter((i) => i.check && !i.check());
    if (bad.length) {
      formError.textContent = `Fix the ${bad.length === 1 ? 'highlighted field' : `${bad.length} highlighted fields`} first.`;
      formError.hidden = false;
      bad[0].focus();
      return;
    }
    const body = { kind: kindOf(), priority: Number(priority.value), payload: payloadOf() };
    if (runAt.value) body.scheduled_for = new Date(runAt.value).toISOString();
    idempotencyKey ||= uuid();
    submit.disabled = true;
    submit.textContent = 'Creating…';
    try {
      const job = await api('jobs', { method: 'POST', body, headers: { 'idempotency-key': idempotencyKey }, what: 'The new job' });
      toast(`Job ${shortId(job.id)} created (${job.status})`);
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      formError.textContent = err.message;
      formError.hidden = false;
      markServerField(form, err.detail || '');
    } finally {
      submit.disabled = false;
      submit.textContent = 'Create job';
    }
  });
  return null;
}

/** "payload.visits[0].image_url[1]: must be an http(s) URL" -> mark that input. */
function markServerField(form, message) {
  const path = /^([A-Za-z_][\w.[\]]*):/.exec(message)?.[1];
  if (!path) return;
  let target = null;
  for (let p = path; p && !target; p = p.replace(/(\[\d+\]|\.[A-Za-z_]\w*)$/, '')) {
    target = form.querySelector(`[data-path="${CSS.escape(p)}"]`);
    if (p === p.replace(/(\[\d+\]|\.[A-Za-z_]\w*)$/, '')) break;
  }
  if (target?.showError) {
    target.showError(message.slice(path.length + 1).trim());
    target.focus();
  }
}
