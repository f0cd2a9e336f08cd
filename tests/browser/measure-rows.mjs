// Opt-in: how long the jobs list takes until its rows are visible, in headless Chromium against
// the running stack (not part of tests/browser/run). Fill the table first, e.g.
// `infra/bench/list-latency --jobs 100000` (the lead's), then:
//   tests/browser/measure-rows                 # 20 rows, 15 samples: p50/p90/max in ms
//   ROWS=100 SAMPLES=30 tests/browser/measure-rows
// A sample is a fresh load of `#/jobs?limit=ROWS` (sorted newest first), timed from navigation
// to ROWS rows in the table. The token is the dev user admin's (infra/token), put where the page
// keeps it (sessionStorage), so sign-in is not timed.
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const API = (process.env.API_URL || 'http://127.0.0.1:3000').replace(/\/$/, '');
const ROWS = Number(process.env.ROWS || 20);
const SAMPLES = Number(process.env.SAMPLES || 15);

const token = execFileSync(join(ROOT, 'infra/token'), ['admin', '--group', 'admin'], { encoding: 'utf8', timeout: 300000 }).trim();
const stats = await (await fetch(`${API}/stats`, { headers: { authorization: `Bearer ${token}` } })).json();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
await context.addInitScript((t) => sessionStorage.setItem('jobs.auth.token', t), token);
const page = await context.newPage();
const times = [];
let bytes = 0;
page.on('response', async (r) => {
  if (/\/jobs\?view=summary/.test(r.url())) bytes = (await r.body().catch(() => Buffer.alloc(0))).length;
});
for (let i = 0; i <= SAMPLES; i++) {
  await page.goto('about:blank');
  const t0 = Date.now();
  await page.goto(`${API}/?polling=off#/jobs?limit=${ROWS}`);
  await page.waitForFunction((n) => document.querySelectorAll('#jobs tbody tr').length === n, ROWS, { timeout: 60000 });
  if (i > 0) times.push(Date.now() - t0); // the first load warms the functions
}
await browser.close();
times.sort((a, b) => a - b);
const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
console.log(
  `${fmt(stats.total)} jobs in the table; ${ROWS} rows visible after p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${times.at(-1)} ms ` +
    `(${SAMPLES} page loads; the list answer ${fmt(bytes)} bytes, ${fmt(Math.round(bytes / ROWS))} a row)`,
);

function fmt(n) {
  return Number(n).toLocaleString('en-US');
}
