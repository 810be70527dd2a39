// The API Access Keys page in a real browser: Debian's headless Chromium
// driven by playwright-core (scripts/test-browser.sh builds the example
// server and runs this with its path).
//
//   node test.mjs SERVER_BINARY [SCREENSHOT.png]
//
// The scenario of docs/management.md: create a key and read it once; reload
// and find it nowhere in the page or its storage; disable and see who and
// when; enable; remove after confirming; an observer sees no create button;
// a rotation shows both keys until its end. Also: the dialogs trap focus
// and close on Escape; nothing is fetched from another host; no console
// errors (a CSP violation is one).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const [server, screenshot] = process.argv.slice(2);
if (!server) {
  console.error('usage: node test.mjs SERVER_BINARY [SCREENSHOT.png]');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 15_000;

// -- the example server ----------------------------------------------------
const child = spawn(server, ['0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const origin = await new Promise((resolve, reject) => {
  let out = '';
  const timer = setTimeout(() => reject(new Error('the server did not start')), 30_000);
  child.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/listening on (http:\/\/[^\s]+)/);
    if (m) { clearTimeout(timer); resolve(m[1]); }
  });
  child.on('exit', (code) => reject(new Error('the server exited: ' + code)));
});
const host = new URL(origin).host;

const profile = mkdtempSync(join(tmpdir(), 'apikeys-browser-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1360, height: 900 },
});
context.setDefaultTimeout(TIMEOUT);
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });

let failures = 0;
const problems = [];
async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    console.log(`ok - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failures++;
    console.log(`not ok - ${name}\n  ${String(e && e.stack || e).split('\n').join('\n  ')}`);
  }
}

const page = context.pages()[0] || await context.newPage();
page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
page.on('request', (r) => {
  const u = new URL(r.url());
  if (u.protocol.startsWith('http') && u.host !== host) problems.push('fetched from another host: ' + r.url());
});

const row = (description) => page.locator('tr', { has: page.getByText(description, { exact: true }) });
const general = page.locator('#general-table tbody');

async function signIn(user) {
  await page.goto(`${origin}/login?user=${user}`);
  await page.waitForURL(`${origin}/keys`);
  await page.waitForSelector('body[data-ready="true"]');
}

/// Everything the page keeps: its markup, its storage, its cookies.
async function everywhere() {
  const inPage = await page.evaluate(() => {
    const all = (s) => { const o = {}; for (let i = 0; i < s.length; i++) o[s.key(i)] = s.getItem(s.key(i)); return o; };
    const values = [...document.querySelectorAll('input, textarea')].map((i) => i.value).join('\n');
    return [document.documentElement.outerHTML, values, JSON.stringify(all(localStorage)),
      JSON.stringify(all(sessionStorage)), document.cookie, location.href].join('\n');
  });
  const cookies = JSON.stringify(await context.cookies());
  return inPage + '\n' + cookies;
}

let key = null;
let keyId = null;

await step('an admin creates a key and reads it once, with a copy button and the warning', async () => {
  await signIn('PADMIN');
  assert.match(await page.locator('#who').innerText(), /PADMIN/);
  await row('Terraform').waitFor();
  // Open the dialog from the keyboard.
  await page.locator('#create-general').focus();
  await page.keyboard.press('Enter');
  const dialog = page.locator('#create-dialog');
  await dialog.waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => document.activeElement.id), 'create-description');
  await page.getByLabel('Description').fill('Browser CI');
  await page.getByLabel('Read-only API Key').check();
  await page.getByRole('button', { name: 'Create Key' }).click();
  const shown = page.locator('#key-dialog');
  await shown.waitFor({ state: 'visible' });
  key = await page.locator('#key-value').inputValue();
  assert.match(key, /^[A-Za-z0-9_-]{20}$/);
  assert.match(await shown.innerText(), /only time the key is shown/);
  await page.getByRole('button', { name: 'Copy' }).click();
  await page.getByText('Copied to the clipboard.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
  // Focus stays in the dialog, both ways round.
  for (const k of ['Tab', 'Tab', 'Tab', 'Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab', 'Shift+Tab']) {
    await page.keyboard.press(k);
    assert.ok(await page.evaluate(() => !!document.activeElement.closest('#key-dialog')), 'focus left the dialog after ' + k);
  }
  // Escape closes it and wipes the key.
  await page.keyboard.press('Escape');
  await shown.waitFor({ state: 'hidden' });
  // The dialog's 'close' event is a task after it hides: wait for the wipe (bounded).
  await page.waitForFunction(() => document.getElementById('key-value').value === '', null, { timeout: 5000 });
  await row('Browser CI').waitFor();
  assert.ok(!(await everywhere()).includes(key), 'the key is still in the page after the dialog closed');
  keyId = await row('Browser CI').getAttribute('data-key-id');
  assert.match(keyId, /^P[0-9A-Z]{13}$/);
  assert.match(await row('Browser CI').innerText(), /Read-only/);
});

await step('after a reload the key is nowhere in the page, its storage or its cookies', async () => {
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  await row('Browser CI').waitFor();
  const all = await everywhere();
  assert.ok(!all.includes(key), 'the key came back after a reload');
  assert.ok(!all.includes(key.slice(0, 16)), 'most of the key came back after a reload');
  // The API never says it again either.
  const answers = await page.evaluate(async (id) => {
    const base = document.documentElement.dataset.base;
    const get = async (p) => (await fetch(base + p)).text();
    return [await get('/api_keys'), await get('/api_keys/' + id), await get('/audit/records'), await get('/me')].join('\n');
  }, keyId);
  assert.ok(!answers.includes(key), 'an API answer holds the key');
});

await step('disable after confirming, and see who disabled it and when', async () => {
  await row('Browser CI').getByRole('button', { name: 'Disable Browser CI' }).click();
  const confirm = page.locator('#confirm-dialog');
  await confirm.waitFor({ state: 'visible' });
  assert.match(await confirm.innerText(), /Disable/);
  await confirm.getByRole('button', { name: 'Disable' }).click();
  await row('Browser CI').locator('td.disabled .by').waitFor();
  const cell = row('Browser CI').locator('td.disabled');
  assert.match(await cell.innerText(), /Disabled by PADMIN on /);
  const when = await cell.locator('time').getAttribute('datetime');
  assert.ok(Math.abs(Date.parse(when) - Date.now()) < 120_000, 'disabled just now: ' + when);
  await page.getByText('disabled.', { exact: false }).first().waitFor();
});

await step('enable it again', async () => {
  await row('Browser CI').getByRole('button', { name: 'Enable Browser CI' }).click();
  await row('Browser CI').getByRole('button', { name: 'Disable Browser CI' }).waitFor();
  assert.equal((await row('Browser CI').locator('td.disabled').innerText()).trim(), 'No');
});

let newKey = null;
await step('a rotation shows both keys, with the overlap, until its end', async () => {
  await row('Browser CI').getByRole('button', { name: 'Rotate Browser CI' }).click();
  const dialog = page.locator('#rotate-dialog');
  await dialog.waitFor({ state: 'visible' });
  await page.getByLabel('Overlap').selectOption('3600');
  await dialog.getByRole('button', { name: 'Rotate' }).click();
  await page.locator('#key-dialog').waitFor({ state: 'visible' });
  newKey = await page.locator('#key-value').inputValue();
  assert.match(newKey, /^[A-Za-z0-9_-]{20}$/);
  assert.notEqual(newKey, key);
  assert.match(await page.locator('#key-rotated').innerText(), /old key keeps working until/);
  await page.locator('#key-dialog').getByRole('button', { name: 'Close' }).click();
  await page.locator('#key-dialog').waitFor({ state: 'hidden' });
  const rows = general.locator('tr', { has: page.getByText('Browser CI', { exact: true }) });
  await page.waitForFunction(() => document.querySelectorAll('#general-table tbody tr').length >= 4);
  assert.equal(await rows.count(), 2);
  const old = general.locator(`tr[data-key-id="${keyId}"]`);
  assert.match(await old.locator('td.rotation').innerText(), /Rotating\s+replaced by P[0-9A-Z]{13}; works until /);
  const newId = (await old.locator('td.rotation code').first().innerText()).trim();
  const fresh = general.locator(`tr[data-key-id="${newId}"]`);
  assert.match(await fresh.locator('td.rotation').innerText(), new RegExp('Replaces ' + keyId));
  if (screenshot) {
    await page.locator('#who').focus();
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  // End it: the old key stops working, both records stay until removed.
  await old.getByRole('button', { name: 'End the rotation of Browser CI' }).click();
  await page.locator('#confirm-dialog').getByRole('button', { name: 'End rotation' }).click();
  await old.locator('td.rotation', { hasText: 'no longer works' }).waitFor();
  assert.equal(await old.getByRole('button', { name: /End the rotation/ }).count(), 0);
  const all = await everywhere();
  assert.ok(!all.includes(newKey), 'the rotated key is still in the page');
});

await step('remove asks first: cancel keeps the key, confirm removes it', async () => {
  const old = general.locator(`tr[data-key-id="${keyId}"]`);
  await old.getByRole('button', { name: 'Remove Browser CI' }).click();
  const confirm = page.locator('#confirm-dialog');
  await confirm.waitFor({ state: 'visible' });
  assert.match(await confirm.innerText(), /cannot be undone/);
  await page.keyboard.press('Escape');
  await confirm.waitFor({ state: 'hidden' });
  assert.equal(await old.count(), 1);
  await old.getByRole('button', { name: 'Remove Browser CI' }).click();
  await confirm.getByRole('button', { name: 'Remove' }).click();
  await old.waitFor({ state: 'detached' });
  assert.equal(await general.locator('tr', { has: page.getByText('Browser CI', { exact: true }) }).count(), 1);
});

await step('the audit records show the calls, newest first', async () => {
  await page.locator('#audit-refresh').click();
  const audit = page.locator('#audit-table tbody');
  await audit.locator('tr').first().waitFor();
  const text = await audit.innerText();
  for (const a of ['create', 'disable', 'enable', 'rotate', 'end_rotation', 'delete']) {
    assert.match(text, new RegExp('\\b' + a + '\\b'), a);
  }
  assert.ok(!text.includes(key) && !text.includes(newKey));
});

await step('a user token of one\'s own, shown once and removable', async () => {
  await page.getByRole('button', { name: 'Create API User Token' }).click();
  await page.getByLabel('Description').fill('My laptop');
  assert.ok(!(await page.locator('#create-readonly-row').isVisible()), 'no read-only box for a user token');
  await page.getByRole('button', { name: 'Create Key' }).click();
  await page.locator('#key-dialog').waitFor({ state: 'visible' });
  const token = await page.locator('#key-value').inputValue();
  assert.match(token, /^u\+[A-Za-z0-9_-]{18}$/);
  await page.keyboard.press('Escape');
  const mine = page.locator('#tokens-table tbody tr', { has: page.getByText('My laptop', { exact: true }) });
  await mine.waitFor();
  assert.ok(!(await everywhere()).includes(token));
  await mine.getByRole('button', { name: 'Remove My laptop' }).click();
  await page.locator('#confirm-dialog').getByRole('button', { name: 'Remove' }).click();
  await mine.waitFor({ state: 'detached' });
});

await step('an admin sees other users\' tokens; the responder sees only their own', async () => {
  await signIn('PRESP');
  await page.getByRole('button', { name: 'Create API User Token' }).click();
  await page.getByLabel('Description').fill('Responder laptop');
  await page.getByRole('button', { name: 'Create Key' }).click();
  await page.locator('#key-dialog').waitFor({ state: 'visible' });
  const token = await page.locator('#key-value').inputValue();
  await page.keyboard.press('Escape');
  await page.locator('#tokens-table tbody tr', { has: page.getByText('Responder laptop', { exact: true }) }).waitFor();
  assert.ok(!(await page.locator('#others').isVisible()), 'a responder sees no one else\'s tokens');
  assert.ok(!(await page.locator('#create-general').isVisible()));
  await signIn('PADMIN');
  const theirs = page.locator('#others-table tbody tr', { has: page.getByText('Responder laptop', { exact: true }) });
  await theirs.waitFor();
  assert.match(await theirs.innerText(), /PRESP/);
  assert.ok(!(await everywhere()).includes(token));
});

await step('an observer sees no create button and no general keys, but may make their own token', async () => {
  await signIn('POBS');
  assert.match(await page.locator('#who').innerText(), /POBS \(observer\)/);
  assert.equal(await page.getByRole('button', { name: 'Create New API Key' }).count(), 0);
  assert.ok(!(await page.locator('#create-general').isVisible()));
  assert.ok(!(await page.locator('#general-table').isVisible()));
  assert.ok(await page.locator('#general-none').isVisible());
  assert.ok(await page.getByRole('button', { name: 'Create API User Token' }).isVisible());
  assert.equal(await page.getByRole('button', { name: /^(Disable|Enable|Rotate|Remove) / }).count(), 0);
  assert.ok(!(await page.locator('#audit').isVisible()), 'no audit records for an observer');
  // The API refuses what the page does not offer, from the page's own origin.
  const status = await page.evaluate(async () => {
    const base = document.documentElement.dataset.base;
    const r = await fetch(base + '/api_keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"api_key":{"description":"x"}}' });
    return r.status;
  });
  assert.equal(status, 403);
  // That refusal is the one console message this test expects.
  await page.waitForTimeout(100);
  const expected = problems.findIndex((p) => p.includes('status of 403'));
  if (expected >= 0) problems.splice(expected, 1);
});

await step('every field has a label, every button a name; Escape closes the create dialog', async () => {
  await signIn('PADMIN');
  const unnamed = await page.evaluate(() => {
    const out = [];
    for (const i of document.querySelectorAll('input, select, textarea')) {
      if (!i.labels || i.labels.length === 0) out.push('field ' + i.id);
    }
    for (const b of document.querySelectorAll('button')) {
      const name = (b.getAttribute('aria-label') || b.textContent || '').trim();
      if (!name) out.push('button ' + b.outerHTML);
    }
    for (const d of document.querySelectorAll('dialog')) {
      if (!d.getAttribute('aria-labelledby')) out.push('dialog ' + d.id);
    }
    return out;
  });
  assert.deepEqual(unnamed, []);
  await page.locator('#create-general').focus();
  await page.keyboard.press('Enter');
  await page.locator('#create-dialog').waitFor({ state: 'visible' });
  await page.keyboard.type('never made');
  await page.keyboard.press('Escape');
  await page.locator('#create-dialog').waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => document.activeElement.id), 'create-general', 'focus goes back to the opener');
  assert.equal(await general.locator('tr', { has: page.getByText('never made', { exact: true }) }).count(), 0);
});

await step('no console errors, no CSP violations, nothing from another host', async () => {
  assert.deepEqual(problems, []);
});

await context.close();
child.kill();
rmSync(profile, { recursive: true, force: true });
console.log(failures ? `${failures} browser step(s) failed` : 'browser test: all steps passed');
process.exit(failures ? 1 : 0);
