// /docs in a real browser: headless Chromium against the running local stack (infra/up), without
// a token (the page is public). Swagger UI must load under its CSP (crate::docs::CSP) with no
// console error, and show every operation of /openapi.json.
// Environment: API_URL, CHROMIUM (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { chromium } from 'playwright-core';

const API = (process.env.API_URL || 'http://127.0.0.1:3000').replace(/\/$/, '');
let browser;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
});

describe('/docs', () => {
  it('shows every operation of the document, loads nothing from elsewhere, and logs no error', async () => {
    const page = await browser.newPage();
    const problems = [];
    const foreign = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('request', (r) => {
      if (!r.url().startsWith(API) && !r.url().startsWith('data:')) foreign.push(r.url());
    });
    // The dashboard's header links to it.
    assert.match(await (await fetch(`${API}/`)).text(), /<a href="docs" id="nav-docs">API docs<\/a>/);
    const resp = await page.goto(`${API}/docs`);
    assert.equal(resp.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/docs/index.html');
    assert.match(resp.headers()['content-security-policy'], /script-src 'self';/);

    const doc = await (await fetch(`${API}/openapi.json`)).json();
    const expected = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).filter((k) => k !== 'parameters').map((m) => `${m.toUpperCase()} ${path}`),
    );
    await page.waitForSelector('.opblock', { timeout: 30000 });
    const shown = await page.$$eval('.opblock', (blocks) =>
      blocks.map((b) => `${b.querySelector('.opblock-summary-method').textContent.trim()} ${b.querySelector('.opblock-summary-path').getAttribute('data-path')}`),
    );
    assert.deepEqual([...shown].sort(), [...expected].sort());
    assert.deepEqual(foreign, [], 'every request stays on this origin');
    assert.deepEqual(problems, [], 'no console error or warning');
  });
});
